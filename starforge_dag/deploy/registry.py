"""The two registry calls desired state needs: does a pinned image still exist, and delete a manifest."""

from __future__ import annotations

import base64

import httpx

from ..buildkit.registry import MANIFEST_ACCEPT, RegistryAuth, manifest_digest
from ..core.errors import PermanentBuildError, TransientBuildError
from ..core.models import ImageRef


class RegistryUnavailable(RuntimeError):
    """The registry could not be asked; nothing was decided."""


class DeleteRefused(RuntimeError):
    """The registry would not delete a manifest (deletion disabled, no permission)."""


def image_missing(pinned: str, auth: RegistryAuth | None = None) -> str | None:
    """None when the registry has the manifest `repo@sha256:…`; otherwise the registry's answer, in words."""
    try:
        manifest_digest(pinned, auth)
    except PermanentBuildError as exc:
        return str(exc)
    except TransientBuildError as exc:
        raise RegistryUnavailable(str(exc)) from None
    return None


def _is_local(host: str) -> bool:
    name = host.rsplit(":", 1)[0]
    return name in ("localhost", "[::1]") or name.startswith("127.")


def delete_manifest(pinned: str, auth: RegistryAuth | None = None, timeout: float = 30.0) -> bool:
    """`DELETE /v2/<name>/manifests/<digest>`: True if deleted, False if it was already gone."""
    ref = ImageRef.parse(pinned)
    if not ref.digest:
        raise ValueError(f"{pinned} is not pinned by digest")
    local = _is_local(ref.registry)
    url = f"{'http' if local else 'https'}://{ref.registry}/v2/{ref.repository}/manifests/{ref.digest}"
    headers = {"Accept": MANIFEST_ACCEPT}
    if auth is not None:
        token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        with httpx.Client(timeout=timeout, trust_env=not local) as client:
            response = client.delete(url, headers=headers)
    except httpx.TransportError as exc:
        raise RegistryUnavailable(f"registry {ref.registry} unreachable: {exc}") from None
    if response.status_code in (200, 202):
        return True
    if response.status_code == 404:
        return False
    if response.status_code == 405:
        raise DeleteRefused(f"registry {ref.registry} has deletion disabled (storage.delete.enabled)")
    if response.status_code >= 500:
        raise RegistryUnavailable(f"registry answered {response.status_code} deleting {pinned}")
    raise DeleteRefused(f"registry refused to delete {pinned} ({response.status_code}): {response.text[:200]}")
