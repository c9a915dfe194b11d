"""What the Depot emulator adds to a build: the same Dockerfile build and push, direct on dockerd vs through the emulator.

    .venv/bin/python benchmarks/bench_depot_emulator.py [--reps 7] [--addr docker:///run/starforge/docker.sock]

Direct: our BuildKit client on the docker:// address (session attached with `POST /session`,
`moby` exporter, Engine API push). Through the emulator: CreateBuild, GetEndpoint until active
(no pending delay), an mTLS channel to the endpoint, the session over `Control.Session` (ended in
the emulator and handed to dockerd), the `image` exporter with push (rewritten to `moby` + push),
ReleaseEndpoint, FinishBuild. Every rep builds a fresh file in a warm context (the RUN step
re-runs, the base layers are cached) and pushes a new tag. Medians; the first rep of each side
is a warm-up and not counted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc

from starforge_dag.buildkit.client import BuildKitClient
from starforge_dag.buildkit.dockerfile import FRONTEND, dockerfile_build
from starforge_dag.buildkit.registry import manifest_digest
from starforge_dag.buildkit.session import Session
from starforge_dag.buildkit.transport import TLSConfig
from starforge_dag.depot.pb import (
    depot_build_pb2,
    depot_build_pb2_grpc,
    depot_buildkit_pb2,
    depot_buildkit_pb2_grpc,
    depot_project_pb2,
    depot_project_pb2_grpc,
)
from starforge_dag.emulators.depot import DepotEmulator

REGISTRY = "127.0.0.1:5000"
BASE = f"{REGISTRY}/base/busybox:latest"


def context(root: Path) -> Path:
    (root / "Dockerfile").write_text(f"FROM {BASE}\nCOPY stamp /stamp\nRUN cat /stamp > /copied\n")
    (root / "stamp").write_text(uuid.uuid4().hex)
    return root


def direct(addr: str, root: Path, image: str) -> tuple[float, str]:
    spec = dockerfile_build(context(root))
    started = time.perf_counter()
    with BuildKitClient(addr) as client, Session(addr, local_dirs=spec.local_dirs, owner=(0, 0)) as session:
        build = client.build_image(image, frontend=FRONTEND, frontend_attrs=spec.frontend_attrs, session=session.id)
    return time.perf_counter() - started, build.digest


def through_emulator(emulator: DepotEmulator, project_id: str, root: Path, image: str) -> tuple[float, float, str]:
    """(total seconds, seconds before the solve starts, digest)."""
    spec = dockerfile_build(context(root))
    org = [("authorization", f"Bearer {emulator.token}")]
    started = time.perf_counter()
    with grpc.insecure_channel(emulator.target) as channel:
        builds = depot_build_pb2_grpc.BuildServiceStub(channel)
        machines = depot_buildkit_pb2_grpc.BuildKitServiceStub(channel)
        created = builds.CreateBuild(depot_build_pb2.CreateBuildRequest(project_id=project_id), metadata=org)
        own = [("authorization", f"Bearer {created.build_token}")]
        request = depot_buildkit_pb2.GetEndpointRequest(build_id=created.build_id, platform=1)
        active = next(m.active for m in machines.GetEndpoint(request, metadata=own) if m.HasField("active"))
        tls = TLSConfig(
            ca_pem=active.ca_cert.cert.encode(),
            cert_pem=active.cert.cert.cert.encode(),
            key_pem=active.cert.key.key.encode(),
            server_name=active.server_name,
        )
        ready = time.perf_counter()
        with (
            BuildKitClient(active.endpoint, tls=tls, exporter="image") as client,
            Session(active.endpoint, tls, local_dirs=spec.local_dirs, owner=(0, 0)) as session,
        ):
            build = client.build_image(image, frontend=FRONTEND, frontend_attrs=spec.frontend_attrs, session=session.id)
        machines.ReleaseEndpoint(depot_buildkit_pb2.ReleaseEndpointRequest(build_id=created.build_id), metadata=own)
        success = depot_build_pb2.FinishBuildRequest.BuildSuccess()
        builds.FinishBuild(depot_build_pb2.FinishBuildRequest(build_id=created.build_id, success=success), metadata=own)
    return time.perf_counter() - started, ready - started, build.digest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--addr", default="docker:///run/starforge/docker.sock")
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    direct_s: list[float] = []
    emulated_s: list[float] = []
    acquire_s: list[float] = []
    with DepotEmulator(docker_addr=args.addr) as emulator, tempfile.TemporaryDirectory() as tmp:
        with grpc.insecure_channel(emulator.target) as channel:
            project = (
                depot_project_pb2_grpc.ProjectServiceStub(channel)
                .CreateProject(
                    depot_project_pb2.CreateProjectRequest(name="bench", region_id="us-east-1"),
                    metadata=[("authorization", f"Bearer {emulator.token}")],
                )
                .project
            )
        for rep in range(args.reps + 1):
            image = f"{REGISTRY}/bench-depot-emulator-{run}:direct-{rep}"
            seconds, digest = direct(args.addr, Path(tmp), image)
            assert digest == manifest_digest(image), "direct build reported a digest the registry does not have"
            image = f"{REGISTRY}/bench-depot-emulator-{run}:depot-{rep}"
            total, before_solve, digest = through_emulator(emulator, project.project_id, Path(tmp), image)
            assert digest == manifest_digest(image), "emulated build reported a digest the registry does not have"
            if rep:
                direct_s.append(seconds)
                emulated_s.append(total)
                acquire_s.append(before_solve)
    d, e, a = statistics.median(direct_s), statistics.median(emulated_s), statistics.median(acquire_s)
    print(f"warm Dockerfile build + push, {args.reps} reps, medians")
    print(f"  direct on dockerd (baseline): {d * 1000:7.0f} ms")
    print(f"  through the Depot emulator:   {e * 1000:7.0f} ms  ({(e - d) * 1000:+.0f} ms, x{e / d:.2f})")
    print(f"    of which create build + endpoint active: {a * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
