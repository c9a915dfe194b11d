"""Queue claims per second with concurrent claimers (BuildStore.claim_queued), and double claims, which must be 0.

Each claimer is a thread with its own pooled connection; 1 claimer is the baseline measured in the same run.
The same queued builds are claimed by every configuration (claims are reset in between), on Postgres and SQLite.

Run: .venv/bin/python benchmarks/bench_queue.py [--builds 2000] [--claimers 8] [--postgres-admin-url URL]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from starforge_dag.core.models import utcnow
from starforge_dag.core.states import BuildState
from starforge_dag.store import BuildStore
from starforge_dag.store import schema as t
from starforge_dag.store.db import dispose_all

BATCHES = (1, 25)  # 1: one build per claim; 25: the queue sensor's claims_per_tick


@dataclass
class Outcome:
    seconds: float
    claimed: list[int]
    latencies: list[float]


def fill_queue(store: BuildStore, builds: int) -> None:
    """`builds` queued builds of one app, each on its own ref so that none supersedes another."""
    app = store.add_app("bench", "queue", "file:///dev/null/queue.git", "main", repo_full_name="bench/queue")
    now = utcnow()
    rows = [
        {
            "app_id": app.id,
            "ref": f"branch-{i}",
            "commit_sha": f"{i:040x}",
            "status": BuildState.QUEUED.value,
            "trigger": "push",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(builds)
    ]
    with store.engine.begin() as conn:
        conn.execute(t.builds.insert(), rows)


def reset_claims(store: BuildStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(t.builds.update().values(claimed_at=None, claimed_by=None))


def drain(store: BuildStore, claimers: int, batch: int) -> Outcome:
    """Every claimer claims until the queue answers empty; returns every id handed out, duplicates included."""
    claimed: list[list[int]] = [[] for _ in range(claimers)]
    latencies: list[list[float]] = [[] for _ in range(claimers)]
    start = threading.Barrier(claimers + 1)

    def claimer(index: int) -> None:
        start.wait()
        while True:
            began = time.perf_counter()
            got = store.claim_queued(batch, claimer=f"bench-{index}")
            latencies[index].append(time.perf_counter() - began)
            if not got:
                return
            claimed[index].extend(b.id for b in got)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(claimers)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return Outcome(
        time.perf_counter() - began, [i for ids in claimed for i in ids], [x for xs in latencies for x in xs]
    )


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def run(name: str, url: str, builds: int, claimer_counts: list[int]) -> None:
    store = BuildStore(url)
    fill_queue(store, builds)
    for batch in BATCHES:
        for claimers in claimer_counts:
            reset_claims(store)
            outcome = drain(store, claimers, batch)
            counts = Counter(outcome.claimed)
            doubles = sum(n - 1 for n in counts.values() if n > 1)
            missing = builds - len(counts)
            print(
                f"{name:<10}{claimers:>9}{batch:>7}{builds / outcome.seconds:>12,.0f}"
                f"{len(outcome.latencies) / outcome.seconds:>12,.0f}"
                f"{percentile(outcome.latencies, 50) * 1000:>10.2f}{percentile(outcome.latencies, 95) * 1000:>10.2f}"
                f"{doubles:>9}{missing:>9}",
                flush=True,
            )
            if doubles or missing:
                raise AssertionError(f"{name}: {doubles} builds claimed twice, {missing} never claimed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--builds", type=int, default=2000, help="queued builds drained per configuration")
    parser.add_argument("--claimers", type=int, default=8, help="concurrent claimers (the baseline is 1)")
    parser.add_argument(
        "--postgres-admin-url",
        default="postgresql+psycopg2://postgres@127.0.0.1:5432/test",
        help="a database to connect to for CREATE/DROP DATABASE of a scratch database",
    )
    args = parser.parse_args()
    claimer_counts = [1, args.claimers]

    print(
        f"{'store':<10}{'claimers':>9}{'batch':>7}{'builds/s':>12}{'claims/s':>12}{'p50 ms':>10}{'p95 ms':>10}"
        f"{'doubles':>9}{'missing':>9}"
    )
    admin = sa.create_engine(args.postgres_admin_url, isolation_level="AUTOCOMMIT")
    name = f"starforge_bench_queue_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        run("postgres", admin.url.set(database=name).render_as_string(hide_password=False), args.builds, claimer_counts)
    finally:
        dispose_all()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", f"sqlite:///{Path(tmp) / 'starforge.db'}", args.builds, claimer_counts)
        dispose_all()


if __name__ == "__main__":
    main()
