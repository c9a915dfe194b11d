"""Stopping a stack leaves no process behind: its services, their process groups and everything they started."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psutil

from starforge_dag.dev.stack import Service, stop_all

# A service that starts a worker in its own session (like a run worker leaving the group), ignores SIGTERM,
# and says when both are up (the worker speaks for itself once it has its own session).
STUBBORN = """
trap '' TERM
setsid bash -c 'echo "worker $$"; exec sleep 600' &
sleep 600 &
echo ready
wait
"""


def test_stop_all_ends_services_and_workers_outside_their_group(tmp_path: Path) -> None:
    service = Service("stubborn", ["bash", "-c", STUBBORN], tmp_path / "stubborn.log")
    service.process = subprocess.Popen(
        service.argv, stdout=subprocess.PIPE, text=True, start_new_session=True, stdin=subprocess.DEVNULL
    )
    assert service.process.stdout is not None
    said = dict(service.process.stdout.readline().strip().partition(" ")[::2] for _ in range(2))
    assert said.keys() == {"worker", "ready"}, said
    worker = psutil.Process(int(said["worker"]))
    below = psutil.Process(service.process.pid).children(recursive=True)
    assert worker in below and os.getpgid(worker.pid) != service.process.pid  # out of reach of killpg

    stop_all([service], grace_s=1.0)

    assert service.process.returncode is not None
    _, alive = psutil.wait_procs(below, timeout=5)
    assert not alive, [p.pid for p in alive]
