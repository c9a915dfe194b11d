"""Pushed images read back from the registry: manifest, config (with history), every layer and the files they hold."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from typing import Any

import httpx

from starforge_dag.buildkit.registry import MANIFEST_ACCEPT
from starforge_dag.core.models import ImageRef


def registry_manifest(image: str) -> tuple[dict[str, Any], bytes, str]:
    """The manifest of a tag as the registry serves it: parsed, raw bytes, Docker-Content-Digest."""
    ref = ImageRef.parse(image)
    response = httpx.get(
        f"http://{ref.registry}/v2/{ref.repository}/manifests/{ref.digest or ref.tag}",
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=30,
    )
    response.raise_for_status()
    return response.json(), response.content, response.headers["Docker-Content-Digest"]


def _blob(image: str, digest: str) -> bytes:
    ref = ImageRef.parse(image)
    response = httpx.get(f"http://{ref.registry}/v2/{ref.repository}/blobs/{digest}", timeout=60)
    response.raise_for_status()
    return response.content


def image_config(image: str) -> dict[str, Any]:
    manifest, _, _ = registry_manifest(image)
    return json.loads(_blob(image, manifest["config"]["digest"]))


def image_files(image: str) -> dict[str, bytes]:
    """Regular files of the pushed image, layers applied in order (whiteouts remove)."""
    manifest, _, _ = registry_manifest(image)
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        data = _blob(image, layer["digest"])
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar:
                name = "/" + member.name.lstrip("./")
                base = name.rsplit("/", 1)[-1]
                if base.startswith(".wh."):
                    gone = name.rsplit("/", 1)[0] + "/" + base[4:]
                    files = {k: v for k, v in files.items() if k != gone and not k.startswith(gone + "/")}
                elif member.isfile():
                    files[name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    return files


def every_byte(image: str) -> bytes:
    """Manifest, config and every layer (compressed and unpacked) in one buffer: to search for what must not be there."""
    manifest, raw, _ = registry_manifest(image)
    parts = [raw, _blob(image, manifest["config"]["digest"])]
    for layer in manifest["layers"]:
        data = _blob(image, layer["digest"])
        parts.append(data)
        if data[:2] == b"\x1f\x8b":
            parts.append(gzip.decompress(data))
    return b"\n".join(parts)
