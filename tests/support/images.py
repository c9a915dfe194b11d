"""Pushed images read back from the registry: manifest, config (with history), every layer and the files they hold."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Any

import httpx

from starforge_dag.buildkit.registry import MANIFEST_ACCEPT
from starforge_dag.core.models import ImageRef

MANIFESTS = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)


@dataclass
class PulledImage:
    """The raw bytes of an image as the registry serves them, layers unpacked to their files."""

    manifest: bytes
    config: bytes
    layers: list[bytes] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)

    def every_byte(self) -> bytes:
        """All of it in one buffer, to search for a value that must not be there."""
        return b"\n".join([self.manifest, self.config, *self.layers, *self.files.values()])

    @property
    def history(self) -> list[dict]:
        return json.loads(self.config).get("history", [])


def pull_image(host: str, repository: str, reference: str, auth: tuple[str, str] | None = None) -> PulledImage:
    """Fetch manifest, config and layers of `host/repository:reference` (or @digest) over the registry API."""
    with httpx.Client(base_url=f"http://{host}/v2/{repository}", auth=auth, timeout=30, follow_redirects=True) as http:
        manifest = http.get(f"/manifests/{reference}", headers={"Accept": MANIFESTS})
        manifest.raise_for_status()
        body = manifest.json()
        if "manifests" in body:  # an index: take the first platform's manifest
            digest = body["manifests"][0]["digest"]
            manifest = http.get(f"/manifests/{digest}", headers={"Accept": MANIFESTS})
            manifest.raise_for_status()
            body = manifest.json()
        config = http.get(f"/blobs/{body['config']['digest']}")
        config.raise_for_status()
        image = PulledImage(manifest=manifest.content, config=config.content)
        for layer in body["layers"]:
            blob = http.get(f"/blobs/{layer['digest']}")
            blob.raise_for_status()
            raw = blob.content
            data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
            image.layers.append(data)
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                for member in tar.getmembers():
                    if member.isfile():
                        extracted = tar.extractfile(member)
                        if extracted is not None:
                            image.files[member.name.lstrip("./")] = extracted.read()
        return image


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
