"""Builds through the Depot adapter (against the Depot emulator) vs the direct BuildKit adapter, same daemon.

    .venv/bin/python benchmarks/bench_depot.py [--reps 5] [--addr docker:///run/starforge/docker.sock]

Both sides build the same Dockerfile with the same context and push to the same registry; each
side's time is submit + run of its adapter in this process (baseline: BuildKitBuildService
straight on dockerd). Cold reps change a file the RUN steps depend on, so everything after the
base image is rebuilt (the shared daemon's cache is not pruned: other users of the daemon keep
theirs); warm reps rebuild an unchanged context. The Depot side goes through the emulator's
mTLS proxy, so its total also carries the emulator's own cost. The adapter's overhead is what
the Depot lifecycle adds around the solve: project lookup, CreateBuild, GetEndpoint, builder
ready (ListWorkers over mTLS), stop health + ReleaseEndpoint, FinishBuild. Goal: ≤ 300 ms median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starforge_dag.core.models import BuildSpec, ImageRef
from starforge_dag.depot.builder import DepotBuilder, DepotConfig
from starforge_dag.emulators.depot import DepotEmulator
from starforge_dag.resources.buildkit_service import BuildKitBuildService
from starforge_dag.store import open_store

GOAL_OVERHEAD_S = 0.300
OVERHEAD_PHASES = ("project", "create", "endpoint", "connect", "release", "finish")
DOCKERFILE = """\
FROM {base}
WORKDIR /app
COPY . .
RUN find . -type f | wc -l && cat src/*.txt | wc -c > /app/size
RUN sha256sum src/* > /app/checksums
CMD ["cat", "/app/size"]
"""


def make_context(root: Path, base: str) -> Path:
    context = root / "app"
    (context / "src").mkdir(parents=True)
    (context / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    for i in range(200):
        (context / "src" / f"part{i:03}.txt").write_text(f"line {i}\n" * 50)
    return context


def bust(context: Path) -> None:
    """A new file the RUN steps read: everything after FROM misses the cache."""
    (context / "src" / "zz-bust.txt").write_text(uuid.uuid4().hex)


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.0f} ms" if values else "       -"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--addr", default=os.environ.get("STARFORGE_BUILDKIT_ADDR", "docker:///run/starforge/docker.sock")
    )
    parser.add_argument("--registry", default="127.0.0.1:5000/bench")
    parser.add_argument("--base", default="127.0.0.1:5000/base/busybox:latest")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-depot-"))
    context = make_context(root, args.base)
    direct = BuildKitBuildService(address=args.addr).builder()
    times: dict[tuple[str, str], list[float]] = {}
    overhead: list[float] = []
    phases: dict[str, list[float]] = {name: [] for name in (*OVERHEAD_PHASES, "solve")}
    store = open_store(f"sqlite:///{root / 'store.db'}")

    with DepotEmulator(docker_addr=args.addr) as emulator:
        config = DepotConfig(api_url=emulator.url, token=emulator.token)

        def build(side: str, image: ImageRef) -> None:
            spec = BuildSpec(build_id=1, context_dir=str(context), image=image, workspace="bench")
            if side == "buildkit":
                direct.run(direct.submit(spec), lambda line: None)
                return
            result = DepotBuilder(config, store).build(spec, "bench")
            overhead.append(sum(result.timings.get(name, 0.0) for name in OVERHEAD_PHASES))
            for name in phases:
                phases[name].append(result.timings.get(name, 0.0))

        for side in ("buildkit", "depot"):  # one unmeasured build each: base image pulled, project created
            build(side, ImageRef.parse(f"{args.registry}/{side}-warmup:{uuid.uuid4().hex[:8]}"))
        overhead.clear()
        for values in phases.values():
            values.clear()

        for rep in range(args.reps):
            order = ("buildkit", "depot") if rep % 2 == 0 else ("depot", "buildkit")
            for side in order:  # each side's cold build has content the daemon has never seen, then a warm rebuild
                bust(context)
                for temperature in ("cold", "warm"):
                    image = ImageRef.parse(f"{args.registry}/{side}:{temperature}-{rep}")
                    started = time.perf_counter()
                    build(side, image)
                    times.setdefault((side, temperature), []).append(time.perf_counter() - started)

    print(f"builds of the same context, {args.reps} reps each, medians (baseline: BuildKitBuildService on {args.addr})")
    print(f"{'':10}{'buildkit':>12}{'depot':>12}{'difference':>14}")
    for temperature in ("cold", "warm"):
        base, depot = times[("buildkit", temperature)], times[("depot", temperature)]
        diff = statistics.median(depot) - statistics.median(base)
        print(f"{temperature:10}{median_ms(base):>12}{median_ms(depot):>12}{diff * 1000:11.0f} ms")
    print("Depot adapter phases (median over all Depot builds):")
    for name, values in phases.items():
        print(f"  {name:10}{median_ms(values)}")
    med = statistics.median(overhead)
    verdict = "meets" if med <= GOAL_OVERHEAD_S else "MISSES"
    print(
        f"adapter overhead around the solve: {med * 1000:.0f} ms median ({verdict} the {GOAL_OVERHEAD_S * 1000:.0f} ms goal)"
    )
    return 0 if med <= GOAL_OVERHEAD_S else 1


if __name__ == "__main__":
    sys.exit(main())
