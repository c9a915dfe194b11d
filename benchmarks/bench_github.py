"""Commit statuses delivered per second by the outbox sender to the GitHub emulator, and what faults cost.

Baseline, measured in the same run: one sender worker against a healthy emulator. Then 8 workers, then
8 workers while 30% of calls fail (5xx or rate limited with retry-after 1 s). Every status is delivered
(the run checks that nothing is lost and each commit ends on its newest state).

Run: .venv/bin/python benchmarks/bench_github.py [--apps 20] [--commits 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from starforge_dag.core.models import utcnow
from starforge_dag.emulators.github import GitHubEmulator
from starforge_dag.github.app import GitHubApp
from starforge_dag.github.statuses import StatusStyle, send_statuses
from starforge_dag.store import open_store
from starforge_dag.store.github import GitHubStore

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b.invalid", "GIT_COMMITTER_NAME": "b"}
GIT_ENV["GIT_COMMITTER_EMAIL"] = "b@b.invalid"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout


def make_repo(root: Path, commits: int) -> tuple[Path, list[str]]:
    bare, work = root / "r.git", root / "r"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    git(root, "clone", "-q", str(bare), str(work))
    shas = []
    for n in range(commits):
        (work / "f").write_text(str(n))
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", f"c{n}")
        shas.append(git(work, "rev-parse", "HEAD").strip())
    git(work, "push", "-q", "origin", "HEAD:main")
    return bare, shas


def run(label: str, apps: int, commits: int, workers: int, fail: float) -> float:
    with tempfile.TemporaryDirectory() as tmp, GitHubEmulator() as emulator:
        root = Path(tmp)
        bare, shas = make_repo(root, commits)
        inst = emulator.add_installation("bench")
        repo = emulator.add_repo("bench", "r", bare, installation_id=inst)
        store = open_store(f"sqlite:///{root / 'db.sqlite'}")
        gh = GitHubStore(store.engine)
        for a in range(apps):
            app = store.add_app("bench", f"a{a}", "https://github.com/bench/r", "main", repo_full_name="bench/r")
            gh.link_app(app.id, repo.id, repo.full_name, inst)
            for sha in shas:
                build = store.enqueue(app, f"b{sha[:6]}", sha).build
                store.request_cancel(build.id, "bench")  # two rows per build: queued (stale) and canceled
        expected = apps * commits
        app_client = GitHubApp(emulator.app_id, emulator.private_key, emulator.api_url)
        app_client.installation_token(inst)
        emulator.faults.fail_fraction = fail
        started = time.perf_counter()
        while gh.unsent(1):
            send_statuses(gh, app_client, StatusStyle(), utcnow, workers=workers)
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        finals = [s for s in emulator.statuses if s.state == "error"]
        assert len({(s.sha, s.context) for s in finals}) == expected, "a status was lost"
        assert all(s.state == "error" for s in emulator.statuses), "a stale pending was sent"
        calls = len(emulator.requests)
        store.engine.dispose()
    rate = expected / elapsed
    print(f"{label:<34} {expected:>5} statuses in {elapsed:6.2f} s = {rate:7.1f}/s  ({calls} API calls)")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--commits", type=int, default=10)
    args = parser.parse_args()
    base = run("baseline: 1 worker, healthy", args.apps, args.commits, 1, 0.0)
    fast = run("8 workers, healthy", args.apps, args.commits, 8, 0.0)
    faulty = run("8 workers, 30% 5xx/rate-limited", args.apps, args.commits, 8, 0.3)
    print(f"8 workers vs baseline: x{fast / base:.2f}; with 30% faults: x{faulty / base:.2f} of baseline")


if __name__ == "__main__":
    main()
