"""The two registry calls desired state needs: does a pinned image still exist, and delete a manifest."""

from __future__ import annotations

from ..buildkit.registry import RegistryAuth, RegistryClient, manifest_digest
from ..core.errors import PermanentBuildError, TransientBuildError


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


def delete_manifest(pinned: str, auth: RegistryAuth | None = None, timeout: float = 30.0) -> bool:
    """`DELETE /v2/<name>/manifests/<digest>` through the one registry client: True if deleted, False if gone."""
    try:
        return RegistryClient(auth, timeout=timeout).delete_manifest(pinned)
    except TransientBuildError as exc:
        raise RegistryUnavailable(str(exc)) from None
    except PermanentBuildError as exc:
        raise DeleteRefused(str(exc)) from None
