"""The build page while 10 builds stream at once: its first byte, and the live log's lag behind the build's output,
against reading the same logs through the API (`GET /builds/{id}/logs?follow=true`) in the same run.

    .venv/bin/python benchmarks/bench_build_page.py [--builds 10] [--lines 100] [--rate 20] [--postgres-url URL]

The API runs under uvicorn in its own process (SQLite under a scratch home, or the Postgres database given).
Each build gets a writer appending `--lines` lines at `--rate` lines per second to the log store, each line
carrying the moment it was written; one page event stream (`/page/{token}/events`) and one API follow stream
read every build's log at the same time, and a line's lag is when a reader got it minus when it was written.
While they stream, each build's page and its log through the API (`GET /builds/{id}/logs`) are fetched in
turn, and their times to first byte measured. Figures are p50 and p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from starforge_dag.core.models import LogLine, utcnow
from starforge_dag.core.states import BuildState
from starforge_dag.dev.stack import free_port
from starforge_dag.logs import open_log_store
from starforge_dag.settings import Settings
from starforge_dag.store import open_store

TOKEN = "bench-build-page-token"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def written_at(text: str) -> float:
    return float(text.rsplit(" t=", 1)[1])


def serve(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STARFORGE_HOME": str(settings.home),
        "STARFORGE_API_TOKEN": TOKEN,
        "STARFORGE_DATABASE_URL": settings.resolved_database_url,
    }
    argv = [sys.executable, "-m", "uvicorn", "starforge_dag.api:create_app", "--factory", "--port", str(port)]
    process = subprocess.Popen([*argv, "--log-level", "warning"], env=env)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1, trust_env=False).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit("the API did not start")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=10)
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0, help="lines per second per build")
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-build-page-") as tmp:
        settings = Settings(home=Path(tmp) / "home", database_url=args.postgres_url, api_token=TOKEN)
        store = open_store(settings.resolved_database_url)
        app = store.add_app("bench", f"web-{os.getpid()}", "https://github.com/bench/web.git", "main")
        builds = []
        for n in range(args.builds):
            build = store.enqueue(app, "main", f"{n + 1:040x}", trigger="manual", actor="bench").build
            for state in (BuildState.CLONING, BuildState.PLANNING, BuildState.BUILDING):
                store.transition(build.id, state, state.value, "bench")
            builds.append(build.id)
        links = settings.page_links()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = serve(settings, port)
        lags: dict[str, list[float]] = {"page events": [], "API follow": []}
        first_bytes: dict[str, list[float]] = {"page": [], "API logs": []}
        received: dict[str, int] = {"page events": 0, "API follow": 0}
        lock = threading.Lock()
        writing = threading.Event()

        def record(kind: str, text: str) -> None:
            lag = (time.time() - written_at(text)) * 1000
            with lock:
                lags[kind].append(lag)
                received[kind] += 1

        def page_events(build_id: int) -> None:
            url = f"{base}/page/{links.token(build_id, utcnow())}/events"
            with httpx.Client(timeout=120, trust_env=False) as client, client.stream("GET", url) as answer:
                event = ""
                for line in answer.iter_lines():
                    if line.startswith("event:"):
                        event = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and event == "line":
                        text = "".join(chunk[1] for chunk in json.loads(line[5:])["spans"])
                        record("page events", text)
                    elif line.startswith("data:") and event == "end":
                        return

        def api_follow(build_id: int) -> None:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            url = f"{base}/builds/{build_id}/logs?follow=true"
            with httpx.Client(timeout=120, trust_env=False, headers=headers) as client:
                with client.stream("GET", url) as answer:
                    for line in answer.iter_lines():
                        if line:
                            record("API follow", json.loads(line)["text"])

        def write(build_id: int) -> None:
            with open_log_store(settings.log_store_dsn, settings.resolved_database_url) as logs:
                writing.wait()
                for seq in range(args.lines):
                    text = f"\x1b[32mstep\x1b[0m output line {seq} of build {build_id} t={time.time():.6f}"
                    logs.append([LogLine(build_id=build_id, seq=seq, stream="stdout", text=text)])
                    time.sleep(1 / args.rate)

        def first_byte(client: httpx.Client, url: str, kind: str) -> None:
            started = time.perf_counter()
            with client.stream("GET", url) as answer:
                chunks = answer.iter_raw()
                next(chunks)
                first_bytes[kind].append((time.perf_counter() - started) * 1000)
                for _ in chunks:
                    pass

        def fetch_pages(stop: threading.Event) -> None:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(timeout=30, trust_env=False, headers=headers) as client:
                while not stop.is_set():
                    for build_id in builds:
                        first_byte(client, f"{base}/page/{links.token(build_id, utcnow())}", "page")
                        first_byte(client, f"{base}/builds/{build_id}/logs", "API logs")

        try:
            readers = [threading.Thread(target=page_events, args=(b,)) for b in builds]
            readers += [threading.Thread(target=api_follow, args=(b,)) for b in builds]
            writers = [threading.Thread(target=write, args=(b,)) for b in builds]
            stop_pages = threading.Event()
            pages = threading.Thread(target=fetch_pages, args=(stop_pages,))
            for thread in readers + writers:
                thread.start()
            time.sleep(1.0)  # every stream is open before the first line
            writing.set()
            pages.start()
            for thread in writers:
                thread.join()
            stop_pages.set()
            pages.join()
            for build_id in builds:
                store.transition(build_id, BuildState.PUSHING, "pushing", "bench")
                store.succeed(
                    build_id, f"127.0.0.1:5000/bench/web:{build_id}", f"sha256:{build_id:064x}", "ok", "bench"
                )
            for thread in readers:
                thread.join(timeout=60)
        finally:
            server.terminate()
            server.wait(timeout=30)

    expected = args.builds * args.lines
    print(
        f"{args.builds} builds x {args.lines} lines at {args.rate:g} lines/s each, "
        f"database {'postgres' if args.postgres_url else 'sqlite'}"
    )
    print(f"{'measure':<28}{'n':>7}{'p50 ms':>10}{'p95 ms':>10}")
    for kind, values in first_bytes.items():
        print(
            f"{'first byte: ' + kind:<28}{len(values):>7}{percentile(values, 0.5):>10.1f}{percentile(values, 0.95):>10.1f}"
        )
    for kind, values in lags.items():
        print(f"{'lag: ' + kind:<28}{len(values):>7}{percentile(values, 0.5):>10.1f}{percentile(values, 0.95):>10.1f}")
    for kind, count in received.items():
        print(f"{kind}: {count} of {expected} lines received" + ("" if count == expected else "  (LOST OR DOUBLED)"))
    if lags["page events"]:
        print(
            f"mean lag page events {statistics.mean(lags['page events']):.1f} ms, "
            f"API follow {statistics.mean(lags['API follow']):.1f} ms"
        )


if __name__ == "__main__":
    main()
