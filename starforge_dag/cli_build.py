"""`starforge build-dir`: one directory built and pushed like `docker build` + `docker push`, without Dagster.

Public API:
    build_dir(path, image_ref, builder, *, dockerfile="Dockerfile", build_args=None, target=None,
              platform=None, secrets=(), builder_image=None, runtime_image=None, network="none",
              env=None, on_progress=None) -> dict
        A Dockerfile (`dockerfile`, relative to `path` or absolute) is built with the Dockerfile
        frontend; without one the Railpack planner plans the app and its LLB is solved.
        `builder` is a `builders.port.Builder`. Raises the `core.errors` kinds.
    build_dir_command(path, image, *, builder=None, dockerfile=None, build_args=(), target=None,
                      platform=None, no_cache=False, secrets=(), quiet=False, stdout=None,
                      stderr=None) -> int
        Exactly one JSON object on stdout ({"status", "image", "digest", ...}; on failure
        "status": "failed", "error", "error_kind", "step"), progress on stderr in the shape of
        `docker build --progress=plain` (`#N step`, `#N 0.4 output`, `#N DONE 0.5s`); 0 or 1.
    parse_build_arg("K=V") -> (K, V);  parse_secret("id=x,env=VAR" | "id=x,src=FILE") -> (id, value)

Every backend builds through the same Builder the Dagster resources hand out (`builders.wiring`
turns settings into it); Depot's project is the one of `workspace`.
Only RAILPACK_* variables reach the planner.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from .builders.port import Builder, ProgressSink
from .core.errors import BuildError, UserBuildError
from .core.models import BuildSpec, ImageRef, ProgressLine
from .settings import environ_value


def parse_build_arg(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--build-arg {text!r}: expected KEY=VALUE")
    return key, value


def parse_secret(text: str) -> tuple[str, str]:
    """`id=NAME,env=VAR` or `id=NAME,src=FILE` (`source=` too); `id=NAME` alone reads the variable NAME."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"--secret {text!r}: expected id=NAME,env=VAR or id=NAME,src=FILE")
        fields[key.strip().lower()] = value.strip()
    name = fields.pop("id", "")
    kind = fields.pop("type", "")
    if not name or kind not in ("", "env", "file"):
        raise ValueError(f"--secret {text!r}: needs id=NAME (type env or file)")
    source = fields.pop("src", None) or fields.pop("source", None)
    variable = fields.pop("env", None)
    if fields:
        raise ValueError(f"--secret {text!r}: unknown keys {sorted(fields)}")
    if source is not None and variable is None and kind != "env":
        try:
            return name, Path(source).read_text()
        except OSError as exc:
            raise ValueError(f"--secret id={name}: cannot read {source}: {exc.strerror}") from None
    named = variable or source or name
    found = environ_value(named)
    if found is None:
        raise ValueError(f"--secret id={name}: environment variable {named} is not set")
    return name, found


def build_dir(
    path: str | os.PathLike[str],
    image_ref: str,
    builder: Builder,
    *,
    dockerfile: str = "Dockerfile",
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    platform: str | None = None,
    secrets: Iterable[str] = (),
    builder_image: str | None = None,
    runtime_image: str | None = None,
    network: Literal["none", "host"] = "none",
    env: Mapping[str, str] | None = None,
    on_progress: ProgressSink | None = None,
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
            frontend="dockerfile",
            dockerfile=dockerfile,
            build_args=dict(build_args or {}),
            target=target,
            secrets=list(secrets),
            **common,
        )
    else:
        if dockerfile != "Dockerfile":
            raise UserBuildError(f"no Dockerfile at {dockerfile}", step="submit")
        from .railpack import PlanError, generate_plan
        from .railpack.llb import plan_to_llb

        try:
            planned = generate_plan(context, dict(env or {}), builder_image=builder_image, runtime_image=runtime_image)
        except PlanError as exc:
            raise UserBuildError(exc.message, step="plan") from None
        graph = plan_to_llb(planned.plan, builder_image, runtime_image, network=network, platform=platform)
        spec = BuildSpec(
            frontend="llb",
            llb_definition=graph.definition,
            image_config=graph.image_config,
            secrets=sorted(set(planned.plan.secrets) | set(secrets)),
            **common,
        )
    ticket = builder.submit(spec)
    result = builder.run(ticket, on_progress or (lambda line: None))
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


class PlainProgress:
    """Progress as `docker build --progress=plain` shows it: one number per step, output and timings under it."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._steps: dict[str, tuple[int, datetime]] = {}
        self._first: datetime | None = None

    def _number(self, line: ProgressLine) -> tuple[int, datetime]:
        key = line.vertex or ""
        if key not in self._steps:
            self._steps[key] = (len(self._steps) + 1, line.ts)
        return self._steps[key]

    def __call__(self, line: ProgressLine) -> None:
        number, started = self._number(line)
        text = line.text
        if line.stream != "system":
            out = f"#{number} {(line.ts - started).total_seconds():.3f} {text}"
        elif line.vertex == "push":
            out = f"#{number} {text}"
        elif text.startswith("DONE "):
            out = f"#{number} DONE {(line.ts - started).total_seconds():.1f}s"
        elif text.startswith("CACHED "):
            out = f"#{number} {text[len('CACHED ') :]}\n#{number} CACHED"
        elif text.startswith("ERROR "):
            out = f"#{number} ERROR: {text.split(': ', 1)[-1]}"
        else:
            out = f"\n#{number} {text}"
        print(out, file=self._stream, flush=True)


def build_dir_command(
    path: str,
    image: str,
    *,
    builder: Builder | None = None,
    dockerfile: str | None = None,
    build_args: Iterable[str] = (),
    target: str | None = None,
    platform: str | None = None,
    no_cache: bool = False,
    secrets: Iterable[str] = (),
    quiet: bool = False,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    workspace: str | None = None,
) -> int:
    """The CLI body: one JSON object out, whatever happens; progress on stderr unless quiet."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = dict(parse_build_arg(a) for a in build_args)
        secret_values = dict(parse_secret(s) for s in secrets)
        network: Literal["none", "host"] = "none"
        from .settings import get_settings, railpack_environ

        settings = get_settings()
        if builder is None:
            from .builders.wiring import builder_for

            builder, network = builder_for(settings, secret_lookup=secret_values.get, no_cache=no_cache)
        report = build_dir(
            path,
            image,
            builder,
            dockerfile=os.path.abspath(dockerfile) if dockerfile else "Dockerfile",
            build_args=args,
            target=target,
            platform=platform,
            secrets=secret_values,
            builder_image=settings.builder_image,
            runtime_image=settings.runtime_image,
            network=network,
            env=railpack_environ(),
            on_progress=None if quiet else PlainProgress(err),
            workspace=workspace or settings.default_workspace,
        )
    except Exception as exc:  # the CLI's contract is one JSON object, whatever went wrong
        failure: dict[str, Any] = {"status": "failed", "image": image, "digest": None, "error": str(exc)}
        if isinstance(exc, BuildError):
            failure.update(error_kind=exc.kind.value, step=exc.step)
        elif isinstance(exc, ValueError):
            failure.update(error_kind="user", step="arguments")
        else:
            failure.update(error_kind=type(exc).__name__)
        print(json.dumps(failure), file=out, flush=True)
        return 1
    print(json.dumps(report), file=out, flush=True)
    return 0
