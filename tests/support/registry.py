"""Registries for tests: a real docker-registry with htpasswd auth on a free port, and tiny real images put into
the local registry on 127.0.0.1:5000."""

from __future__ import annotations

import hashlib
import json
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
REGISTRY = "127.0.0.1:5000"


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


def push_manifest(repository: str, salt: str) -> str:
    """Put a tiny real image (config blob + manifest) into the local registry; returns the manifest digest."""
    base = f"http://{REGISTRY}/v2/{repository}"
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {"salt": salt}},
        }
    ).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    with httpx.Client(trust_env=False, timeout=30) as client:
        start = client.post(f"{base}/blobs/uploads/")
        assert start.status_code == 202, start.text
        location = start.headers["Location"]
        location = location if location.startswith("http") else f"http://{REGISTRY}{location}"
        sep = "&" if "?" in location else "?"
        put = client.put(
            f"{location}{sep}digest={config_digest}",
            content=config,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert put.status_code == 201, put.text
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config),
                },
                "layers": [],
            }
        ).encode()
        response = client.put(
            f"{base}/manifests/{salt}",
            content=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert response.status_code == 201, response.text
        return response.headers["Docker-Content-Digest"]


def manifest_exists(repository: str, digest: str) -> bool:
    with httpx.Client(trust_env=False, timeout=30) as client:
        response = client.head(
            f"http://{REGISTRY}/v2/{repository}/manifests/{digest}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
    return response.status_code == 200
