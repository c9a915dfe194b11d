"""Which build backend the environment asks for, decided without importing Dagster (the CLI needs it too)."""

from __future__ import annotations

import socket
from functools import cache
from typing import TYPE_CHECKING, Literal

from .settings import Settings

if TYPE_CHECKING:
    from .buildkit.builder import BuildKitBuilder, SecretLookup
    from .depot.builder import DepotBuilder


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


def resolve_backend(settings: Settings) -> str:
    backend = settings.build_backend
    if backend == "auto":
        backend = "buildkit" if docker_reachable(settings.buildkit_addr) else "fake"
    if backend not in ("buildkit", "fake", "depot"):
        raise ValueError(f"STARFORGE_BUILD_BACKEND={backend!r}: use buildkit, depot, fake or auto")
    return backend


def buildkit_builder(
    settings: Settings, *, secret_lookup: SecretLookup | None = None, no_cache: bool = False
) -> BuildKitBuilder:
    """The BuildKit backend as settings describe it, for callers outside Dagster."""
    from .buildkit.builder import BuildKitBuilder  # grpc and protobuf load only when a build needs them
    from .buildkit.registry import RegistryAuth
    from .buildkit.transport import TLSConfig

    tls = None
    if settings.buildkit_tls_ca or settings.buildkit_tls_cert or settings.buildkit_tls_key:
        tls = TLSConfig.from_files(
            settings.buildkit_tls_ca,
            settings.buildkit_tls_cert,
            settings.buildkit_tls_key,
            settings.buildkit_tls_server_name,
        )
    password = settings.registry_password.get_secret_value()
    auth = RegistryAuth(settings.registry_username, password) if settings.registry_username else None
    network: Literal["none", "host"] = "host" if settings.build_network == "host" else "none"
    return BuildKitBuilder(
        settings.buildkit_addr,
        tls,
        registry_auth=auth,
        network_mode=network,
        secret_lookup=secret_lookup,
        no_cache=no_cache,
    )


def depot_builder(settings: Settings, *, secret_lookup: SecretLookup | None = None) -> DepotBuilder:
    """The Depot backend as settings describe it, for callers outside Dagster; projects live in the build store."""
    from .depot.builder import DepotBuilder, DepotConfig
    from .store import open_store

    platform: Literal["amd64", "arm64"] = "arm64" if settings.depot_platform == "arm64" else "amd64"
    network: Literal["none", "host"] = "host" if settings.build_network == "host" else "none"
    config = DepotConfig(
        api_url=settings.depot_api_url,
        token=settings.depot_token.get_secret_value(),
        region=settings.depot_region,
        platform=platform,
        endpoint_timeout_s=settings.depot_endpoint_timeout_s,
        cache_keep_gb=settings.depot_cache_keep_gb,
        organization_id=settings.depot_org,
        network_mode=network,
    )
    password = settings.registry_password.get_secret_value()
    return DepotBuilder(
        config,
        open_store(settings.resolved_database_url),
        default_workspace=settings.default_workspace,
        secret_lookup=secret_lookup,
        registry_credentials=(settings.registry_username, password) if settings.registry_username else None,
    )
