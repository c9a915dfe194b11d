"""Settings become builder options here, once, for the Dagster resources and for `starforge build-dir` alike."""

from __future__ import annotations

import socket
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from ..depot.config import DepotConfig
from ..settings import Settings
from .fake import FakeBuilder, FakeOptions, Outcome
from .port import Builder

if TYPE_CHECKING:  # grpc, protobuf and httpx load when a build needs them, not with the definitions
    from ..buildkit.builder import BuildKitBuilder
    from ..buildkit.registry import RegistryAuth
    from ..core.models import BuildSpec
    from ..depot.builder import DepotBuilder, DepotBuildInfo
    from ..depot.projects import ProjectStore

Backend = Literal["buildkit", "depot", "fake"]
SecretLookup = Callable[[str], str | None]
Network = Literal["none", "host"]


@cache
def docker_reachable(addr: str) -> bool:
    """Asked once per process and address: `auto` builds with BuildKit only where a daemon's socket answers."""
    if not addr.startswith("docker://") and not addr.startswith("unix://"):
        return False
    path = addr.split("://", 1)[1]
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(1)
            sock.connect(path)
        return True
    except OSError:
        return False


def resolve_backend(settings: Settings) -> Backend:
    """The backend STARFORGE_BUILD_BACKEND names; `auto` is BuildKit where the daemon answers, else the fake."""
    backend = settings.build_backend
    if backend == "auto":
        return "buildkit" if docker_reachable(settings.buildkit_addr) else "fake"
    for known in get_args(Backend):
        if backend == known:
            return known
    raise ValueError(f"STARFORGE_BUILD_BACKEND={backend!r}: use buildkit, depot, fake or auto")


class BuildKitOptions(BaseModel):
    """How to reach one BuildKit endpoint and what its builds may do."""

    model_config = ConfigDict(frozen=True)

    address: str = Field(
        default="docker:///run/starforge/docker.sock",
        description="BuildKit endpoint: docker:///path/docker.sock, unix:///path/buildkitd.sock or tcp://host:port.",
    )
    tls_ca: str | None = Field(default=None, description="CA certificate file for a tcp:// endpoint.")
    tls_cert: str | None = Field(default=None, description="Client certificate file (mTLS).")
    tls_key: str | None = Field(default=None, description="Client key file (mTLS).")
    tls_server_name: str | None = Field(default=None, description="Server name to verify instead of the host.")
    insecure_registry: bool = Field(default=False, description="Push over plain HTTP (standalone buildkitd only).")
    network_mode: Network = Field(
        default="none", description="Network of RUN steps; host needs the network.host entitlement on the daemon."
    )
    connect_timeout_s: float = Field(default=30.0, description="How long submit waits for the endpoint to answer.")
    build_timeout_s: float | None = Field(default=None, description="Stop a solve running longer than this.")


def buildkit_options(settings: Settings) -> BuildKitOptions:
    return BuildKitOptions(
        address=settings.buildkit_addr,
        tls_ca=settings.buildkit_tls_ca,
        tls_cert=settings.buildkit_tls_cert,
        tls_key=settings.buildkit_tls_key,
        tls_server_name=settings.buildkit_tls_server_name,
        network_mode=settings.build_network,
    )


def depot_config(settings: Settings) -> DepotConfig:
    """Depot's options from settings; the token is the settings' value (resources replace it with an EnvVar)."""
    return DepotConfig(
        api_url=settings.depot_api_url,
        token=settings.depot_token.get_secret_value(),
        region=settings.depot_region,
        platform=settings.depot_platform,  # type: ignore[arg-type]  # validated by DepotConfig
        endpoint_timeout_s=settings.depot_endpoint_timeout_s,
        organization_id=settings.depot_org,
        cache_keep_gb=settings.depot_cache_keep_gb,
        network_mode=settings.build_network,
    )


def fake_options(settings: Settings) -> FakeOptions:
    return FakeOptions(
        outcome=Outcome(settings.fake_outcome),
        fail_until_file=settings.fake_fail_until_file,
        step_delay_s=settings.fake_step_delay_s,
    )


def registry_auth(settings: Settings) -> RegistryAuth | None:
    """The registry credentials of the settings, for pushes, verification and deletion."""
    from ..buildkit.registry import RegistryAuth

    if not settings.registry_username:
        return None
    return RegistryAuth(settings.registry_username, settings.registry_password.get_secret_value())


def buildkit_builder(
    options: BuildKitOptions,
    *,
    registry_auth: RegistryAuth | None = None,
    secret_lookup: SecretLookup | None = None,
    no_cache: bool = False,
) -> BuildKitBuilder:
    from ..buildkit.builder import BuildKitBuilder
    from ..buildkit.transport import TLSConfig

    tls = None
    if options.tls_ca or options.tls_cert or options.tls_key:
        tls = TLSConfig.from_files(options.tls_ca, options.tls_cert, options.tls_key, options.tls_server_name)
    return BuildKitBuilder(
        options.address,
        tls,
        registry_auth=registry_auth,
        insecure_registry=options.insecure_registry,
        network_mode=options.network_mode,
        secret_lookup=secret_lookup,
        connect_timeout_s=options.connect_timeout_s,
        build_timeout_s=options.build_timeout_s,
        no_cache=no_cache,
    )


def depot_builder(
    config: DepotConfig,
    projects: ProjectStore,
    *,
    default_workspace: str,
    registry_auth: RegistryAuth | None = None,
    secret_lookup: SecretLookup | None = None,
    on_started: Callable[[BuildSpec, DepotBuildInfo], None] | None = None,
) -> DepotBuilder:
    from ..depot.builder import DepotBuilder

    return DepotBuilder(
        config,
        projects,
        default_workspace=default_workspace,
        secret_lookup=secret_lookup,
        registry_credentials=(registry_auth.username, registry_auth.password) if registry_auth else None,
        on_started=on_started,
    )


def builder_for(settings: Settings, *, secret_lookup: SecretLookup, no_cache: bool = False) -> tuple[Builder, Network]:
    """The configured backend as a builder, and the network its RUN steps get (what a plan's LLB must ask for)."""
    backend = resolve_backend(settings)
    if backend == "buildkit":
        options = buildkit_options(settings)
        auth = registry_auth(settings)
        buildkit = buildkit_builder(options, registry_auth=auth, secret_lookup=secret_lookup, no_cache=no_cache)
        return buildkit, options.network_mode
    if backend == "depot":
        from ..store import open_store

        config = depot_config(settings)
        depot = depot_builder(
            config,
            open_store(settings.resolved_database_url),
            default_workspace=settings.default_workspace,
            registry_auth=registry_auth(settings),
            secret_lookup=secret_lookup,
        )
        return depot, config.network_mode
    return FakeBuilder(fake_options(settings)), "none"
