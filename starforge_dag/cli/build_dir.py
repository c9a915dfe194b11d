"""`starforge build-dir`: one directory built and pushed like `docker build` + `docker push`, without Dagster.

Every backend builds through the same Builder the Dagster resources hand out (`builders.wiring`
turns settings into it); Depot's project is the one of `workspace`.
The host's RAILPACK_* variables reach the planner as platform defaults, and nothing else of the environment.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO

import click

from ..builders.port import Builder, ProgressSink
from ..core.errors import BuildError, UserBuildError
from ..core.models import BuildSpec, ImageRef, ProgressLine
from ..settings import environ_value


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
    platform_options: Mapping[str, str] | None = None,
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
        from ..railpack import PlanError, generate_plan
        from ..railpack.llb import plan_to_llb

        try:
            planned = generate_plan(
                context,
                {},
                builder_image=builder_image,
                runtime_image=runtime_image,
                platform_options=platform_options,
            )
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
        from ..settings import get_settings, railpack_environ

        settings = get_settings()
        if builder is None:
            from ..builders.wiring import builder_for

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
            platform_options=railpack_environ(),
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


@click.command("build-dir")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("-t", "--image", required=True, help="Image reference to push, e.g. 127.0.0.1:5000/apps/demo:dev")
@click.option("-f", "--file", "dockerfile", default=None, help="Dockerfile (path from here; default PATH/Dockerfile).")
@click.option("--build-arg", "build_args", multiple=True, metavar="KEY=VALUE", help="Build-time variable (repeatable).")
@click.option("--target", default=None, help="Build this stage of a multi-stage Dockerfile.")
@click.option("--platform", default=None, help="Target platform, e.g. linux/amd64.")
@click.option("--no-cache", is_flag=True, help="Do not use the build cache.")
@click.option(
    "--secret", "secrets", multiple=True, metavar="id=NAME,env=VAR|src=FILE", help="Build secret (repeatable)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr; only the JSON result.")
@click.option(
    "--workspace", default=None, help="Workspace (its Depot project on the depot backend); default: settings."
)
def build_dir_cli(
    path: str,
    image: str,
    dockerfile: str | None,
    build_args: tuple[str, ...],
    target: str | None,
    platform: str | None,
    no_cache: bool,
    secrets: tuple[str, ...],
    quiet: bool,
    workspace: str | None,
) -> None:
    """Build PATH and push it like `docker build` + `docker push`; print one JSON object."""
    sys.exit(
        build_dir_command(
            path,
            image,
            dockerfile=dockerfile,
            build_args=build_args,
            target=target,
            platform=platform,
            no_cache=no_cache,
            secrets=secrets,
            quiet=quiet,
            workspace=workspace,
        )
    )
