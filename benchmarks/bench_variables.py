"""Variables for a build: resolving and decrypting them, and masking secrets in its log against the unmasked write.

Run: .venv/bin/python benchmarks/bench_variables.py [--reps 5] [--lines 10000] [--postgres-url URL]

Resolution: an app with 100 variables (half secret, half of them set on its workspace) and a build queued
with them; timed is `build_variables` (read the build's versions, open the secrets). Masking: a log of
`--lines` lines, one in 50 carrying one of 50 secrets, written through the build's log writer (batches of 200) to the SQL log store,
once as is and once with the build's masker (the masking included in the time), in alternating reps.
The figures are medians; the requirement is masked <= 2x unmasked.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from starforge_dag.core.models import ProgressLine
from starforge_dag.logs import BufferedLogWriter, SqlLogStore
from starforge_dag.logs.masking import Masker
from starforge_dag.store import NewValue, open_store
from starforge_dag.variables.crypto import SecretBox, new_key

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = 200


def log_texts(n: int, values: list[str]) -> list[str]:
    texts = []
    for i in range(n):
        text = f"#{i % 40} [{i % 7}/7] RUN npm ci --prefer-offline  added {i} packages in {i % 13}.{i % 10}s"
        if i % 50 == 0:
            text += f" //registry.npmjs.org/:_authToken={values[(i // 50) % len(values)]}"
        texts.append(text)
    return texts


def write(logs: SqlLogStore, build_id: int, texts: list[str], masker: Masker | None) -> float:
    """Through the build's own log writer (which masks each line when given the build's masker), flushed at the end."""
    started = time.perf_counter()
    with BufferedLogWriter(logs, build_id, start_seq=0, batch_size=BATCH, masker=masker) as writer:
        for text in texts:
            writer.write(ProgressLine(stream="stdout", text=text, ts=T0))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--postgres-url", help="use this (empty) Postgres database instead of a SQLite file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-variables-") as tmp:
        url = args.postgres_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = open_store(url)
        box = SecretBox([new_key()])
        app = store.add_app("bench", f"app-{secrets.token_hex(3)}", "https://github.com/bench/app.git")
        values = [secrets.token_urlsafe(24) for _ in range(100)]
        store.set_variables(
            "bench", None, [NewValue(f"WS_{i}", values[i], secret=i % 2 == 0) for i in range(50)], "bench", box
        )
        store.set_variables(
            "bench",
            app.name,
            [NewValue(f"APP_{i}", values[i], secret=i % 2 == 0) for i in range(50, 100)],
            "bench",
            box,
        )
        build = store.enqueue(app, "main", "1" * 40).build
        resolve: list[float] = []
        for _ in range(args.reps + 1):
            started = time.perf_counter()
            resolved = store.build_variables(build.id, box)
            resolve.append(time.perf_counter() - started)
        assert len(resolved) == 100 and sum(v.secret for v in resolved) == 50
        secret_values = [v.value.get_secret_value() for v in resolved if v.secret]

        masker = Masker(secret_values)
        texts = log_texts(args.lines, secret_values)
        logs = SqlLogStore(url)
        plain: list[float] = []
        masked: list[float] = []
        mask_only: list[float] = []
        for rep in range(args.reps + 1):
            plain.append(write(logs, 1_000_000 + 2 * rep, texts, None))
            masked.append(write(logs, 1_000_001 + 2 * rep, texts, masker))
            started = time.perf_counter()
            for i in range(0, len(texts), BATCH):
                masker.mask_lines(texts[i : i + BATCH])
            mask_only.append(time.perf_counter() - started)
        stored = logs.read(1_000_001, limit=args.lines)
        assert not any(v in line.text for line in stored for v in secret_values), "a secret reached the log"
        assert sum("*****" in line.text for line in stored) == len(range(0, args.lines, 50))
        logs.close()

    def ms(xs: list[float]) -> float:
        return statistics.median(xs[1:]) * 1000

    engine = "postgres" if args.postgres_url else "sqlite"
    print(f"resolve+decrypt 100 variables (50 secret): {ms(resolve):.2f} ms")
    print(f"write {args.lines} lines to the SQL log store ({engine}), unmasked: {ms(plain):.1f} ms")
    print(f"write {args.lines} lines masked (50 secrets):                 {ms(masked):.1f} ms")
    print(f"masking alone:                                                {ms(mask_only):.1f} ms")
    ratio = ms(masked) / ms(plain)
    print(f"masked / unmasked: {ratio:.2f}x (requirement: <= 2x) {'OK' if ratio <= 2 else 'OVER'}")


if __name__ == "__main__":
    main()
