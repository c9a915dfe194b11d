"""BuildKitBuildService: builds on a self-hosted buildkitd or a Docker daemon's embedded BuildKit."""

from __future__ import annotations

import os
import tempfile
from typing import Literal

from pydantic import Field

from ..buildkit.builder import BuildKitBuilder
from ..buildkit.registry import RegistryAuth
from ..buildkit.transport import TLSConfig
from ..core.models import BuildResult, BuildSpec, BuildTicket
from .build_service import BuildService, CancelCheck, LogSink, _never


class BuildKitBuildService(BuildService):
    """Configuration for a BuildKitBuilder, opened per call: the build logic lives in `buildkit.builder`."""

    address: str = Field(
        default="docker:///run/starforge/docker.sock",
        description="BuildKit endpoint: docker:///path/docker.sock, unix:///path/buildkitd.sock or tcp://host:port.",
    )
    tls_ca: str | None = Field(default=None, description="CA certificate file for a tcp:// endpoint.")
    tls_cert: str | None = Field(default=None, description="Client certificate file (mTLS).")
    tls_key: str | None = Field(default=None, description="Client key file (mTLS).")
    tls_server_name: str | None = Field(default=None, description="Server name to verify instead of the host.")
    registry_username: str | None = Field(default=None, description="Registry user for pushes and private base images.")
    registry_password: str | None = Field(default=None, description="Registry password; set it with dg.EnvVar.")
    insecure_registry: bool = Field(default=False, description="Push over plain HTTP (standalone buildkitd only).")
    network_mode: Literal["none", "host"] = Field(
        default="none", description="Network of RUN steps; host needs the network.host entitlement on the daemon."
    )
    secret_env_prefix: str = Field(
        default="STARFORGE_BUILD_SECRET_", description="A build secret NAME is read from the variable PREFIX+NAME."
    )
    connect_timeout_s: float = Field(default=30.0, description="How long submit waits for the endpoint to answer.")
    build_timeout_s: float | None = Field(default=None, description="Stop a solve running longer than this.")
    cancel_dir: str = Field(
        default=os.path.join(tempfile.gettempdir(), "starforge-cancel"),
        description="Where cancel() leaves a marker that a run() on this machine stops at.",
    )

    def _builder(self) -> BuildKitBuilder:
        tls = None
        if self.tls_ca or self.tls_cert or self.tls_key:
            tls = TLSConfig.from_files(self.tls_ca, self.tls_cert, self.tls_key, self.tls_server_name)
        auth = RegistryAuth(self.registry_username, self.registry_password or "") if self.registry_username else None
        return BuildKitBuilder(
            self.address,
            tls,
            registry_auth=auth,
            insecure_registry=self.insecure_registry,
            network_mode=self.network_mode,
            secret_lookup=lambda name: os.environ.get(self.secret_env_prefix + name),
            connect_timeout_s=self.connect_timeout_s,
            build_timeout_s=self.build_timeout_s,
            cancel_dir=self.cancel_dir,
        )

    def submit(self, spec: BuildSpec) -> BuildTicket:
        return self._builder().submit(spec)

    def run(self, ticket: BuildTicket, on_progress: LogSink, should_cancel: CancelCheck = _never) -> BuildResult:
        return self._builder().run(ticket, on_progress, should_cancel)

    def cancel(self, ticket: BuildTicket) -> None:
        """Leave a marker the running solve checks; BuildKit's Control API has no cancel-by-ref."""
        self._builder().cancel(ticket)
