"""Where images go and how a pushed image is verified against the registry itself."""

from __future__ import annotations

import base64

import dagster as dg
from pydantic import Field

from ..core.errors import PermanentBuildError, TransientBuildError
from ..core.models import ImageRef

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


class RegistryResource(dg.ConfigurableResource):
    """Names images `<prefix>/<workspace>/<app>:<commit>` and checks pushed digests."""

    prefix: str = Field(description="Registry host and path prefix, e.g. 127.0.0.1:5000/apps.")
    verify_pushes: bool = Field(default=True, description="Ask the registry for the manifest digest after a push.")
    insecure: bool = Field(default=True, description="Talk plain HTTP to loopback registries.")
    username: str | None = Field(default=None, description="Registry user for verification reads.")
    password: str | None = Field(default=None, description="Registry password (set through an EnvVar).")

    def image_for(self, workspace: str, app: str, commit_sha: str) -> ImageRef:
        return ImageRef.for_build(self.prefix, workspace, app, commit_sha)

    def manifest_digest(self, image: ImageRef) -> str:
        """The registry's own digest for the image's tag (Docker-Content-Digest)."""
        import httpx  # only the publish step talks to the registry

        host = image.registry
        scheme = "http" if self.insecure and (host.startswith("127.") or host.startswith("localhost")) else "https"
        headers = {"Accept": MANIFEST_TYPES}
        if self.username:
            token = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        url = f"{scheme}://{host}/v2/{image.repository}/manifests/{image.tag}"
        try:
            response = httpx.head(url, headers=headers, timeout=10)
        except httpx.TransportError as exc:
            raise TransientBuildError(f"registry {host} unreachable: {exc}", step="verify") from None
        if response.status_code == 404:
            raise PermanentBuildError(f"{image.ref} is not in the registry after the push", step="verify")
        if response.status_code >= 400:
            raise TransientBuildError(f"registry answered {response.status_code} for {image.ref}", step="verify")
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            raise PermanentBuildError(f"registry gave no digest for {image.ref}", step="verify")
        return digest
