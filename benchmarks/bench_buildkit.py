"""Our BuildKit client vs `docker build` (BuildKit) on the same Dockerfile and daemon, cold and warm cache.

    .venv/bin/python benchmarks/bench_buildkit.py [--reps 5] [--size small|large] [--addr docker:///...]

Both sides export to the daemon's image store (`moby` exporter; `docker build -t`), so the
comparison is build against build; our push to the registry is timed on its own. Cold reps
run after `docker builder prune -af`; warm reps rebuild the unchanged context. Our time is a
library call (channel, session, solve), without Python's start-up; the docker CLI's time is
its process. Phases of ours: session attach, context transfer (the `load build context`
vertex, part of the solve), solve, session/channel close, push (not in the compared time).
The context transfer of both sides is the daemon's own timing of that vertex (docker's from
`--progress=plain`). `--size large` is 5,000 files and ~70 MB instead of 400 files and ~9 MB.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starforge_dag.buildkit.client import BuildEvent, BuildKitClient, VertexEvent
from starforge_dag.buildkit.dockerfile import FRONTEND, dockerfile_build
from starforge_dag.buildkit.registry import push_image
from starforge_dag.buildkit.session import Session

DOCKER = "/usr/bin/docker"
GOAL = 1.05
CONTEXT_VERTEX = "[internal] load build context"
DOCKERFILE = """\
FROM {base} AS build
WORKDIR /src
COPY . .
RUN find . -type f | wc -l && cat lib/*.txt | wc -c && sha256sum assets/* > /checksums

FROM {base}
WORKDIR /app
COPY --from=build /checksums /app/checksums
COPY lib ./lib
COPY assets ./assets
RUN ls -R /app | wc -l
CMD ["sh", "-c", "cat /app/checksums"]
"""


SIZES = {"small": (400, 4), "large": (5000, 32)}  # source files, 2 MB assets


def make_context(root: Path, base: str, size: str = "small") -> Path:
    """An app: source-sized files, binary assets, an ignored directory."""
    files, assets = SIZES[size]
    rng = random.Random(42)
    (root / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    (root / ".dockerignore").write_text("node_modules\n*.log\n")
    for i in range(files):
        path = root / "lib" / f"pkg{i % 20}" / f"mod{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(rng.choice("abcdefgh \n") for _ in range(rng.randint(200, 4000))))
    (root / "assets").mkdir()
    for i in range(assets):
        (root / "assets" / f"blob{i}.bin").write_bytes(rng.randbytes(2 * 1024 * 1024))
    (root / "node_modules" / "big").mkdir(parents=True)
    (root / "node_modules" / "big" / "dep.js").write_bytes(rng.randbytes(5 * 1024 * 1024))
    (root / "debug.log").write_text("noise\n" * 1000)
    return root


@dataclass
class Phases:
    session_s: float = 0.0
    context_s: float = 0.0
    solve_s: float = 0.0
    close_s: float = 0.0
    push_s: float = 0.0
    total_s: float = 0.0
    _context_started: datetime | None = field(default=None, repr=False)

    def on_event(self, event: BuildEvent) -> None:
        """The daemon's start/end times of the context transfer, as docker's plain progress shows them."""
        if not isinstance(event, VertexEvent) or event.name != CONTEXT_VERTEX:
            return
        if event.status == "started":
            self._context_started = event.ts
        elif event.status == "cached":
            self.context_s = float("nan")  # reported without a start time: nothing to measure
        elif self._context_started is not None:
            self.context_s = (event.ts - self._context_started).total_seconds()


def ours(addr: str, context: Path, image: str, push: bool) -> Phases:
    phases = Phases()
    build = dockerfile_build(context)
    started = time.perf_counter()
    with BuildKitClient(addr) as client:
        session = Session(addr, local_dirs=build.local_dirs, owner=(0, 0))
        with session:
            attached = time.perf_counter()
            phases.session_s = attached - started
            client.solve(
                frontend=FRONTEND,
                frontend_attrs=build.frontend_attrs,
                session=session.id,
                exporter="moby",
                exporter_attrs={"name": image},
                on_event=phases.on_event,
            )
            solved = time.perf_counter()
            phases.solve_s = solved - attached
    phases.total_s = time.perf_counter() - started
    phases.close_s = time.perf_counter() - solved
    if push and client.docker_socket:
        pushed = time.perf_counter()
        push_image(client.docker_socket, image)
        phases.push_s = time.perf_counter() - pushed
    return phases


def docker(sock: str, *args: str, timeout: float = 600) -> tuple[float, str]:
    env = {**os.environ, "DOCKER_BUILDKIT": "1", "DOCKER_HOST": f"unix://{sock}"}
    started = time.perf_counter()
    done = subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return elapsed, done.stderr


def docker_build(sock: str, context: Path, image: str) -> tuple[float, float]:
    """Wall time of `docker build` and its context transfer (the vertex's DONE time)."""
    elapsed, progress = docker(sock, "build", "--network", "none", "--progress=plain", "-t", image, str(context))
    vertex = re.search(rf"^#(\d+) {re.escape(CONTEXT_VERTEX)}$", progress, re.M)
    done = vertex and re.search(rf"^#{vertex.group(1)} DONE ([\d.]+)s$", progress, re.M)
    return elapsed, float(done.group(1)) if done else 0.0


def median(values: list[float]) -> float:
    """Median of the measured values; NaN (not measured) when there are none."""
    measured = [v for v in values if v == v]
    return statistics.median(measured) if measured else float("nan")


def bench(addr: str, base: str, registry: str, reps: int, size: str, say: Callable[[str], None]) -> int:
    sock = addr.removeprefix("docker://")
    results: dict[str, dict[str, list[float]]] = {"cold": {}, "warm": {}}
    phases: dict[str, list[Phases]] = {"cold": [], "warm": []}
    docker_context: dict[str, list[float]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory(prefix="bench-buildkit-") as tmp:
        context = make_context(Path(tmp), base, size)
        ours_image, docker_image = f"{registry}/bench-ours:latest", f"{registry}/bench-docker:latest"
        ours(addr, context, ours_image, push=False)  # pull the base and warm the daemon once
        docker_build(sock, context, docker_image)
        for mode in ("cold", "warm"):
            if mode == "warm":  # after the cold phase's prunes, fill the cache of both sides once
                ours(addr, context, ours_image, push=False)
                docker_build(sock, context, docker_image)
            for rep in range(reps):
                order = ["ours", "docker"] if rep % 2 == 0 else ["docker", "ours"]
                for who in order:
                    if mode == "cold":
                        docker(sock, "builder", "prune", "-af")
                    if who == "ours":
                        p = ours(addr, context, ours_image, push=True)
                        phases[mode].append(p)
                        results[mode].setdefault("ours", []).append(p.total_s)
                    else:
                        elapsed, transfer = docker_build(sock, context, docker_image)
                        results[mode].setdefault("docker", []).append(elapsed)
                        docker_context[mode].append(transfer)
                say(
                    f"{mode} rep {rep + 1}/{reps}: ours {results[mode]['ours'][-1]:.3f}s, docker {results[mode]['docker'][-1]:.3f}s"
                )

    print(f"\ncontext: {size} ({SIZES[size][0]} source files, {SIZES[size][1] * 2} MB of assets), {reps} reps")
    print(f"{'cache':6} {'ours median':>12} {'docker median':>14} {'ratio':>7}   ours reps / docker reps (s)")
    worst = 0.0
    for mode in ("cold", "warm"):
        o, d = median(results[mode]["ours"]), median(results[mode]["docker"])
        worst = max(worst, o / d)
        reps_text = (
            " ".join(f"{v:.2f}" for v in results[mode]["ours"])
            + " / "
            + " ".join(f"{v:.2f}" for v in results[mode]["docker"])
        )
        print(f"{mode:6} {o:>11.3f}s {d:>13.3f}s {o / d:>6.2f}x   {reps_text}")
    print(
        f"\nphases, medians (s)  {'session':>8} {'context':>8} {'solve':>8} {'close':>8} {'push':>8}   docker context"
    )
    for mode in ("cold", "warm"):
        ps = phases[mode]
        print(
            f"{mode:20} {median([p.session_s for p in ps]):>8.3f} {median([p.context_s for p in ps]):>8.3f} "
            f"{median([p.solve_s for p in ps]):>8.3f} {median([p.close_s for p in ps]):>8.3f} "
            f"{median([p.push_s for p in ps]):>8.3f}   {median(docker_context[mode]):>14.3f}"
        )
    verdict = "within" if worst <= GOAL else "above"
    print(f"\nworst ratio {worst:.2f}x: {verdict} the {GOAL:.2f}x goal")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--addr", default=os.environ.get("STARFORGE_BUILDKIT_ADDR", "docker:///run/starforge/docker.sock")
    )
    parser.add_argument("--base", default=os.environ.get("STARFORGE_BASE_IMAGE", "127.0.0.1:5000/base/busybox:latest"))
    parser.add_argument("--registry", default="127.0.0.1:5000/bench")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    args = parser.parse_args()
    if not args.addr.startswith("docker://"):
        parser.error("the comparison with `docker build` needs a docker:// address")
    return bench(
        args.addr, args.base, args.registry, args.reps, args.size, lambda text: print(text, file=sys.stderr, flush=True)
    )


if __name__ == "__main__":
    sys.exit(main())
