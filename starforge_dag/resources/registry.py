"""Where images go and how a pushed image is verified against the registry itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from ..core.errors import BuildError, PermanentBuildError, TransientBuildError
from ..core.models import ImageRef

if TYPE_CHECKING:  # httpx loads only for the steps that talk to the registry
    from ..buildkit.registry import RegistryAuth


class RegistryResource(dg.ConfigurableResource):
    """Names images `<prefix>/<workspace>/<app>:<commit>` and checks pushed digests."""

    prefix: str = Field(description="Registry host and path prefix, e.g. 127.0.0.1:5000/apps.")
    verify_pushes: bool = Field(default=True, description="Ask the registry for the manifest digest after a push.")
    insecure: bool = Field(default=True, description="Talk plain HTTP to loopback registries.")
    username: str | None = Field(default=None, description="Registry user for pushes, verification and deletion.")
    password: str | None = Field(default=None, description="Registry password (set through an EnvVar).")

    def auth(self, server: str = "") -> RegistryAuth | None:
        """The one place registry credentials are assembled; None when the registry takes anonymous calls."""
        from ..buildkit.registry import RegistryAuth

        return RegistryAuth(self.username, self.password or "", server) if self.username else None

    def image_for(self, workspace: str, app: str, commit_sha: str) -> ImageRef:
        return ImageRef.for_build(self.prefix, workspace, app, commit_sha)

    def manifest_digest(self, image: ImageRef) -> str:
        """The registry's own digest for the image's tag (Docker-Content-Digest), through Basic or Bearer auth."""
        from ..buildkit.registry import RegistryClient

        client = RegistryClient(self.auth(image.registry), insecure=None if self.insecure else False, timeout=10)
        try:
            return client.manifest_digest(image.model_copy(update={"digest": None}))
        except TransientBuildError as exc:
            raise TransientBuildError(exc.message, step="verify") from None
        except BuildError as exc:
            raise PermanentBuildError(exc.message, step="verify") from None
