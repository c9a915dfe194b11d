"""Everything a pushed image holds, read back from the registry: manifest, config (with history) and every layer."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass, field

import httpx

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
