"""Dockerfile-frontend builds: what the session serves and which attrs `dockerfile.v0` gets."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..core.errors import UserBuildError

FRONTEND = "dockerfile.v0"
CONTEXT = "context"
DOCKERFILE = "dockerfile"

NetworkMode = Literal["none", "host"]


@dataclass(frozen=True)
class DockerfileBuild:
    """A Dockerfile build ready to solve: the session's local dirs and the frontend's attrs."""

    context_dir: str
    dockerfile: str
    local_dirs: dict[str, str] = field(default_factory=dict)
    frontend_attrs: dict[str, str] = field(default_factory=dict)


def dockerfile_build(
    context_dir: str | os.PathLike[str],
    dockerfile: str = "Dockerfile",
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    platform: str | None = None,
    network: NetworkMode = "none",
    no_cache: bool = False,
) -> DockerfileBuild:
    """Describe a `docker build`-equivalent solve; the Dockerfile may live anywhere under or beside the context."""
    context = os.path.realpath(context_dir)
    if not os.path.isdir(context):
        raise UserBuildError(f"build context {context_dir} is not a directory", step="submit")
    path = os.path.realpath(os.path.join(context, dockerfile))
    if not os.path.isfile(path):
        raise UserBuildError(f"no Dockerfile at {dockerfile}", step="submit")
    attrs = {"filename": os.path.basename(path), "force-network-mode": network}
    attrs.update({f"build-arg:{key}": value for key, value in (build_args or {}).items()})
    if target:
        attrs["target"] = target
    if platform:
        attrs["platform"] = platform
    if no_cache:
        attrs["no-cache"] = ""
    return DockerfileBuild(
        context_dir=context,
        dockerfile=path,
        local_dirs={CONTEXT: context, DOCKERFILE: os.path.dirname(path)},
        frontend_attrs=attrs,
    )
