"""A webhook storm through the real API (uvicorn, in process) on Postgres: deliveries/s and p50/p95 latency.

1,000 signed deliveries for 50 apps x 4 commits, 30% of them redeliveries, shuffled. The baseline is the same
storm sent one delivery at a time, measured in the same run on a fresh database; then `--concurrency` at a time.
The sender is a process of its own (GitHub's senders are not in the API's process); `--client-in-process` sends
from the server's process instead, whose interpreter lock the HTTP client then shares.
Each configuration must end with one build per distinct commit, no 5xx and every delivery answered.

Run: .venv/bin/python benchmarks/bench_storm.py [--deliveries 1000] [--concurrency 50] [--client-in-process]
     [--postgres-admin-url URL]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.storm import plan, register_apps, send, serve

from starforge_dag.settings import Settings
from starforge_dag.store import open_store
from starforge_dag.store.db import dispose_all

APPS, COMMITS = 50, 4


def one_storm(admin: sa.Engine, deliveries: int, concurrency: int, own_process: bool) -> None:
    name = f"starforge_bench_storm_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as home:
            settings = Settings(home=Path(home), database_url=url, github_webhook_secret="storm", api_token="t")
            store = open_store(url)
            register_apps(store, APPS)
            sent = plan(APPS, COMMITS, deliveries=deliveries, redelivered=0.3)
            with serve(settings) as base_url:
                result = send(base_url, "storm", sent, concurrency, own_process=own_process)
            builds = store.list_builds(limit=100_000)
            commits = {(d.app, d.commit) for d in sent}
            lost = sum(1 for a in result.answers if not a.get("builds"))
            print(
                f"{concurrency:>11}{len(sent):>11}{result.per_second:>14,.0f}{result.percentile_ms(0.5):>10.1f}"
                f"{result.percentile_ms(0.95):>10.1f}{len(builds):>8}{len(commits):>9}{result.server_errors:>6}{lost:>6}",
                flush=True,
            )
            if len(builds) != len(commits) or result.server_errors or lost:
                raise AssertionError(f"{len(builds)} builds for {len(commits)} commits, {result.server_errors} 5xx")
    finally:
        dispose_all()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50, help="deliveries in flight (the baseline is 1)")
    parser.add_argument(
        "--postgres-admin-url",
        default="postgresql+psycopg2://postgres@127.0.0.1:5432/test",
        help="a database to connect to for CREATE/DROP DATABASE of a scratch database",
    )
    parser.add_argument(
        "--client-in-process",
        action="store_true",
        help="send from the server's own process (its HTTP client then competes for the server's interpreter lock)",
    )
    args = parser.parse_args()
    admin = sa.create_engine(args.postgres_admin_url, isolation_level="AUTOCOMMIT")
    print(
        f"{'concurrency':>11}{'deliveries':>11}{'deliveries/s':>14}{'p50 ms':>10}{'p95 ms':>10}{'builds':>8}{'commits':>9}{'5xx':>6}{'lost':>6}"
    )
    try:
        for concurrency in (1, args.concurrency):
            one_storm(admin, args.deliveries, concurrency, own_process=not args.client_in_process)
    finally:
        admin.dispose()


if __name__ == "__main__":
    main()
