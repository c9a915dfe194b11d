"""Where images go and how a pushed image is verified against the registry itself."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from ..buildkit.registry import RegistryAuth, RegistryClient
from ..core.errors import BuildError, PermanentBuildError, TransientBuildError
from ..core.models import ImageRef


class ImageRegistry(dg.ConfigurableResource):
    """Names images `<prefix>/<workspace>/<app>:<commit>` and checks pushed digests."""

    prefix: str = Field(description="Registry host and path prefix, e.g. 127.0.0.1:5000/apps.")
    verify_pushes: bool = Field(default=True, description="Ask the registry for the manifest digest after a push.")
    insecure: bool = Field(default=True, description="Talk plain HTTP to loopback registries.")
    username: str | None = Field(default=None, description="Registry user for verification reads.")
    password: str | None = Field(default=None, description="Registry password (set through an EnvVar).")

    def image_for(self, workspace: str, app: str, commit_sha: str) -> ImageRef:
        return ImageRef.for_build(self.prefix, workspace, app, commit_sha)

    def manifest_digest(self, image: ImageRef) -> str:
        """The registry's own digest for the image's tag (Docker-Content-Digest), through Basic or Bearer auth."""
        auth = RegistryAuth(self.username, self.password or "", image.registry) if self.username else None
        client = RegistryClient(auth, insecure=None if self.insecure else False, timeout=10)
        try:
            return client.manifest_digest(image.model_copy(update={"digest": None}))
        except TransientBuildError as exc:
            raise TransientBuildError(exc.message, step="verify") from None
        except BuildError as exc:
            raise PermanentBuildError(exc.message, step="verify") from None
