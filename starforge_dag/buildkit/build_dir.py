"""Build one directory into a pushed image, outside the pipeline: `starforge build-dir PATH --image REF`.

Public API:
    build_dir(path, image_ref, service, *, dockerfile="Dockerfile", build_args=None, target=None,
              platform=None, builder_image=None, runtime_image=None, network="none", env=None,
              on_progress=None) -> dict
        A Dockerfile in `path` is built with the Dockerfile frontend; otherwise the Railpack
        planner plans the app and its LLB (RUN steps on `network`) is solved. Raises the
        `core.errors` kinds.
    build_dir_command(path, image, *, service=None, dockerfile="Dockerfile", stdout=None,
                      stderr=None) -> int
        Prints exactly one JSON object on stdout ({"status", "image", "digest", ...}; on failure
        "status": "failed" and "error"), progress lines on stderr; exit code 0 or 1. Only
        RAILPACK_* variables reach the planner: other variables are not build variables.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TextIO

from ..core.errors import BuildError, UserBuildError
from ..core.models import BuildSpec, ImageRef, ProgressLine
from ..railpack import PlanError, generate_plan, railpack_options
from ..railpack.llb import plan_to_llb
from ..resources.build_service import BuildService, LogSink
from ..settings import get_settings


def build_dir(
    path: str | os.PathLike[str],
    image_ref: str,
    service: BuildService,
    *,
    dockerfile: str = "Dockerfile",
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    platform: str | None = None,
    builder_image: str | None = None,
    runtime_image: str | None = None,
    network: Literal["none", "host"] = "none",
    env: Mapping[str, str] | None = None,
    on_progress: LogSink | None = None,
    workspace: str | None = None,
) -> dict[str, Any]:
    """Submit and run one build of `path`; the result is what the CLI prints."""
    context = Path(path).resolve()
    image = ImageRef.parse(image_ref)
    common: dict[str, Any] = dict(
        build_id=0, context_dir=str(context), image=image, platform=platform, workspace=workspace
    )
    if (context / dockerfile).is_file():
        spec = BuildSpec(
            frontend="dockerfile", dockerfile=dockerfile, build_args=dict(build_args or {}), target=target, **common
        )
    else:
        try:
            planned = generate_plan(context, dict(env or {}), builder_image=builder_image, runtime_image=runtime_image)
        except PlanError as exc:
            raise UserBuildError(exc.message, step="plan") from None
        graph = plan_to_llb(planned.plan, builder_image, runtime_image, network=network, platform=platform)
        spec = BuildSpec(
            frontend="llb",
            llb_definition=graph.definition,
            image_config=graph.image_config,
            secrets=list(planned.plan.secrets),
            **common,
        )
    ticket = service.submit(spec)
    result = service.run(ticket, on_progress or (lambda line: None))
    return {
        "status": "succeeded",
        "image": result.image.ref,
        "digest": result.image.digest,
        "pinned": result.image.pinned,
        "frontend": spec.frontend,
        "config_digest": result.config_digest,
        "duration_s": round(result.duration_s, 3),
        "steps_total": result.steps_total,
        "steps_cached": result.steps_cached,
        "backend_build_id": result.backend_build_id,
        "backend_url": result.backend_url,
    }


def _print_progress(stream: TextIO) -> LogSink:
    def show(line: ProgressLine) -> None:
        prefix = "" if line.stream == "system" else f"  {line.stream}: "
        print(prefix + line.text, file=stream, flush=True)

    return show


def build_dir_command(
    path: str,
    image: str,
    *,
    service: BuildService | None = None,
    dockerfile: str = "Dockerfile",
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    workspace: str | None = None,
) -> int:
    """The CLI body: the configured BuildService unless given; one JSON object out."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    settings = get_settings()
    try:
        if service is None:
            from ..definitions import build_service_for

            service = build_service_for(settings).process_config_and_initialize()  # EnvVar fields get their values
        report = build_dir(
            path,
            image,
            service,
            dockerfile=dockerfile,
            builder_image=settings.builder_image,
            runtime_image=settings.runtime_image,
            network=getattr(service, "network_mode", "none"),
            env=railpack_options(os.environ),
            on_progress=_print_progress(err),
            workspace=workspace or settings.default_workspace,
        )
    except Exception as exc:  # the CLI's contract is one JSON object, whatever went wrong
        failure: dict[str, Any] = {"status": "failed", "image": image, "digest": None, "error": str(exc)}
        if isinstance(exc, BuildError):
            failure.update(error_kind=exc.kind.value, step=exc.step)
        else:
            failure.update(error_kind=type(exc).__name__)
        print(json.dumps(failure), file=out, flush=True)
        return 1
    print(json.dumps(report), file=out, flush=True)
    return 0
