"""`starforge build-dir` vs `docker build` + `docker push`: one-off build wall time on the same tiny context and daemon.

    .venv/bin/python benchmarks/bench_build_dir.py [--reps 7] [--starforge .venv/bin/starforge]
                                                   [--baseline OTHER/.venv/bin/starforge]

Both sides are whole processes timed from the outside, as a user or a script sees them: a
two-step Dockerfile (FROM the base image, COPY one file, RUN one command) built and pushed
to the local registry under a fresh tag each rep. The first rep of each side warms the
daemon's cache and is not counted; the figures are medians of the rest. `--baseline` also
times another checkout's command in the same reps (interleaved), e.g. the previous release.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKER = "/usr/bin/docker"
SOCKET = "/run/starforge/docker.sock"


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--starforge", default=str(REPO / ".venv" / "bin" / "starforge"))
    parser.add_argument("--baseline", default=None, help="another starforge command to time the same way")
    parser.add_argument("--registry", default="127.0.0.1:5000")
    parser.add_argument("--base", default="127.0.0.1:5000/base/busybox:latest")
    args = parser.parse_args()

    env = {**os.environ, "DOCKER_HOST": f"unix://{SOCKET}", "STARFORGE_BUILD_BACKEND": "buildkit"}
    env["STARFORGE_BUILDKIT_ADDR"] = f"docker://{SOCKET}"
    repo = f"{args.registry}/bench-build-dir/{uuid.uuid4().hex[:8]}"
    ours: list[float] = []
    theirs: list[float] = []
    baseline: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-build-dir-") as tmp:
        context = Path(tmp)
        (context / "Dockerfile").write_text(f"FROM {args.base}\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt\n")
        (context / "hello.txt").write_text("hello\n")
        for rep in range(args.reps + 1):
            tag = f"{repo}:s{rep}"
            elapsed, done = _run([args.starforge, "build-dir", str(context), "--image", tag], env)
            report = json.loads(done.stdout)
            assert report["status"] == "succeeded" and report["digest"].startswith("sha256:"), report
            if rep:
                ours.append(elapsed)
            if args.baseline:
                elapsed, done = _run([args.baseline, "build-dir", str(context), "--image", f"{repo}:b{rep}"], env)
                assert json.loads(done.stdout)["status"] == "succeeded"
                if rep:
                    baseline.append(elapsed)
            tag = f"{repo}:d{rep}"
            built, _ = _run([DOCKER, "build", "-q", "-t", tag, str(context)], env)
            pushed, _ = _run([DOCKER, "push", "-q", tag], env)
            if rep:
                theirs.append(built + pushed)
    ours_p50, theirs_p50 = statistics.median(ours), statistics.median(theirs)
    print(f"reps={args.reps} (after one warm-up rep each), context: 2-step Dockerfile, push to {args.registry}")
    print(f"starforge build-dir     p50 {ours_p50:6.3f} s  min {min(ours):6.3f} s  max {max(ours):6.3f} s")
    print(f"docker build + push     p50 {theirs_p50:6.3f} s  min {min(theirs):6.3f} s  max {max(theirs):6.3f} s")
    print(f"ratio (build-dir / docker) {ours_p50 / theirs_p50:.2f}")
    if baseline:
        base_p50 = statistics.median(baseline)
        print(f"baseline build-dir      p50 {base_p50:6.3f} s  min {min(baseline):6.3f} s  max {max(baseline):6.3f} s")
        print(f"  ({args.baseline}); speed-up {base_p50 / ours_p50:.2f}x")


if __name__ == "__main__":
    main()
