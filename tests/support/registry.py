"""A registry that wants a password: a real docker-registry with htpasswd auth on a free port."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REGISTRY_BIN = "/usr/bin/docker-registry"


@dataclass(frozen=True)
class PasswordRegistry:
    host: str
    username: str
    password: str


@contextmanager
def password_registry(root: Path, startup_timeout_s: float = 30.0) -> Iterator[PasswordRegistry]:
    """Serve a registry under `root` that answers 401 to anyone without the password; stopped on exit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # bcrypt, which docker-registry's htpasswd wants, without another dependency

    registry = PasswordRegistry("", "robot", uuid.uuid4().hex)
    (root / "htpasswd").write_text(
        f"{registry.username}:{crypt.crypt(registry.password, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{probe.getsockname()[1]}"
    (root / "config.yml").write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\nhttp:\n  addr: {host}\n"
        f"auth:\n  htpasswd:\n    realm: starforge-test\n    path: {root}/htpasswd\n"
    )
    with (root / "registry.log").open("w") as log:
        process = subprocess.Popen([REGISTRY_BIN, "serve", str(root / "config.yml")], stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + startup_timeout_s
            while True:  # the registry has no readiness signal but its answer
                try:
                    if httpx.get(f"http://{host}/v2/", timeout=1).status_code == 401:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline and process.poll() is None, (root / "registry.log").read_text()
                time.sleep(0.1)
            yield PasswordRegistry(host, registry.username, registry.password)
        finally:
            process.terminate()
            process.wait(timeout=30)
