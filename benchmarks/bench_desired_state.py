"""Latency from a build's success to a waiting deployer seeing the change: long-poll vs a plain poll every second.

Runs a real API server (uvicorn, this process) over a fresh build store (SQLite, and Postgres when reachable),
succeeds builds at random moments and times each change's arrival at a consumer. Prints p50/p95 per mode.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
import uvicorn

from starforge_dag.api import create_app
from starforge_dag.core.states import BuildState
from starforge_dag.settings import Settings
from starforge_dag.store import open_store

TOKEN = "bench-token"
SAMPLES = 30


def serve(settings: Settings) -> tuple[uvicorn.Server, str]:
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def run(url: str, database_url: str, mode: str) -> list[float]:
    """Succeed SAMPLES builds at random moments; return each change's delay until the consumer had it."""
    store = open_store(database_url)
    app = store.add_app("bench", f"{mode}{time.monotonic_ns()}", "https://github.com/bench/app.git", "main")
    committed: dict[int, float] = {}
    received: dict[int, float] = {}
    stop = threading.Event()
    start_after = store.latest_revision()

    def consume() -> None:
        after = start_after
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as api:
            while not stop.is_set():
                if mode == "long-poll":
                    body = api.get("/desired-state", params={"after": after, "wait": 30}).json()
                else:
                    body = api.get("/desired-state", params={"after": after}).json()
                now = time.perf_counter()
                for change in body["changes"]:
                    received[change["revision"]] = now
                after = body["revision"]
                if mode == "poll-1s":
                    time.sleep(1.0)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    rng = random.Random(5)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(SAMPLES):
        build = store.enqueue(app, "main", f"{n + 1:040x}", commit_time=t0 + timedelta(minutes=n)).build
        for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING, BuildState.PUSHING):
            store.transition(build.id, state, state.value, "bench")
        time.sleep(rng.uniform(0.2, 1.2))
        outcome = store.succeed(build.id, f"127.0.0.1:5000/b/a:{n}", f"sha256:{build.id:064x}", "ok", "bench")
        committed[outcome.change.revision] = time.perf_counter()  # type: ignore[union-attr]
    deadline = time.monotonic() + 5
    while len(received.keys() & committed.keys()) < len(committed) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    missing = committed.keys() - received.keys()
    if missing:
        raise SystemExit(f"{mode}: {len(missing)} changes never arrived")
    return [received[r] - committed[r] for r in committed]


def report(label: str, delays: list[float]) -> None:
    q = statistics.quantiles(delays, n=20)
    print(f"{label:<28} n={len(delays):3d}  p50={statistics.median(delays) * 1000:7.1f} ms  p95={q[18] * 1000:7.1f} ms")


def postgres_url() -> str | None:
    admin = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    name = f"bench_desired_{time.monotonic_ns()}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        print(f"postgres: skipped ({type(exc).__name__})")
        return None
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}")]
        pg = postgres_url()
        if pg:
            targets.append(("postgres", pg))
        for label, database_url in targets:
            settings = Settings(home=Path(tmp), database_url=database_url, api_token=TOKEN)
            server, url = serve(settings)
            for mode in ("poll-1s", "long-poll"):
                report(f"{label} {mode}", run(url, database_url, mode))
            server.should_exit = True
        if pg:
            from starforge_dag.store.db import dispose_all

            dispose_all()
            admin = sa.create_engine(
                "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
            )
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{pg.rsplit("/", 1)[1]}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
