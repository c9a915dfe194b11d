"""A webhook storm: many apps, a few commits each, deliveries repeated and redelivered, sent concurrently to a real
API server; shared by the storm test and benchmarks/bench_storm.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import uvicorn

from starforge_dag.api import create_app
from starforge_dag.github.signature import sign
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    app: str
    commit: str
    body: bytes


@dataclass
class StormResult:
    seconds: float
    statuses: list[int] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    answers: list[dict] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return len(self.statuses) / self.seconds

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def server_errors(self) -> int:
        return sum(1 for s in self.statuses if s >= 500)


def commit_id(app: int, n: int) -> str:
    return hashlib.sha1(f"storm app {app} commit {n}".encode()).hexdigest()


def push_body(app: int, n: int) -> bytes:
    """GitHub's push payload for commit n of app-<app>: later commits have later timestamps."""
    sha = commit_id(app, n)
    stamp = (T0 + timedelta(minutes=n)).isoformat()
    head = {"id": sha, "message": f"change {n}", "timestamp": stamp, "added": [], "modified": ["a"], "removed": []}
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "before": "0" * 40,
            "after": sha,
            "forced": False,
            "repository": {"full_name": f"storm/app-{app}", "clone_url": f"https://github.com/storm/app-{app}.git"},
            "head_commit": head,
            "commits": [head],
            "pusher": {"name": "storm"},
            "sender": {"login": "storm"},
        }
    ).encode()


def plan(apps: int = 50, commits: int = 4, deliveries: int = 1000, redelivered: float = 0.3, seed: int = 7):
    """Deliveries in a shuffled order: every commit pushed at least once, some pushed again under new delivery ids
    (as repeated pushes are), and `redelivered` of all deliveries are exact redeliveries of an earlier one."""
    rng = random.Random(seed)
    redeliveries = int(deliveries * redelivered)
    originals = [(a, n) for a in range(apps) for n in range(commits)]
    originals += [rng.choice(originals) for _ in range(deliveries - redeliveries - len(originals))]
    sent = [
        Delivery(str(uuid.UUID(int=rng.getrandbits(128))), f"app-{a}", commit_id(a, n), push_body(a, n))
        for a, n in originals
    ]
    rng.shuffle(sent)
    for _ in range(redeliveries):
        at = rng.randrange(1, len(sent) + 1)
        sent.insert(at, sent[rng.randrange(at)])  # a redelivery comes after the delivery it repeats
    return sent


def register_apps(store: BuildStore, apps: int) -> None:
    for a in range(apps):
        store.add_app("storm", f"app-{a}", f"https://github.com/storm/app-{a}.git", "main")


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The real API under uvicorn on a free port, in this process; yields its base URL.

    Idle connections are kept long enough that a loaded machine's pauses never close one the sender is reusing.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", lifespan="off", timeout_keep_alive=120)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def send(
    base_url: str, secret: str, deliveries: list[Delivery], concurrency: int, *, own_process: bool = True
) -> StormResult:
    """POST every delivery signed, at most `concurrency` in flight; statuses and latencies in sending order.

    The sender runs in a process of its own, as GitHub's do: in the server's process its HTTP client's work would
    take the server's interpreter lock (`own_process=False` measures that way).
    """
    if not own_process:
        return _send(base_url, secret, deliveries, concurrency)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as sender:
        return sender.submit(_send, base_url, secret, deliveries, concurrency).result()


def _send(base_url: str, secret: str, deliveries: list[Delivery], concurrency: int) -> StormResult:
    async def run() -> StormResult:
        result = StormResult(seconds=0.0)
        result.statuses = [0] * len(deliveries)
        result.latencies_s = [0.0] * len(deliveries)
        result.answers = [{}] * len(deliveries)
        gate = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:

            async def one(i: int, d: Delivery) -> None:
                headers = {
                    "X-GitHub-Event": "push",
                    "X-GitHub-Delivery": d.delivery_id,
                    "X-Hub-Signature-256": sign(secret.encode(), d.body),
                    "Content-Type": "application/json",
                }
                async with gate:
                    started = time.perf_counter()
                    response = await client.post("/webhooks/github", content=d.body, headers=headers)
                    result.latencies_s[i] = time.perf_counter() - started
                result.statuses[i] = response.status_code
                result.answers[i] = response.json() if response.status_code < 500 else {}

            started = time.perf_counter()
            await asyncio.gather(*(one(i, d) for i, d in enumerate(deliveries)))
            result.seconds = time.perf_counter() - started
        return result

    return asyncio.run(run())
