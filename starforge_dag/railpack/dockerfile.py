"""Plan → Dockerfile text, for build engines that take a Dockerfile rather than raw LLB.

Each step is a stage; cache mounts and secret mounts use `RUN --mount` (secrets are read
from /run/secrets into the command's environment, so no value reaches a layer); assets are
written from base64 so any content survives quoting; excludes are applied in a throwaway
stage before the copy.
"""

from __future__ import annotations

import base64
import json
import posixpath
import re
import shlex

from starforge_dag.railpack.llb import secret_exports
from starforge_dag.railpack.plan import BuildPlan, CopyCommand, ExecCommand, FileCommand, Layer, PathCommand, Step

APP_DIR = "/app"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _in_app(path: str) -> str:
    if path in (".", "./", ""):
        return APP_DIR
    return path if path.startswith("/") else posixpath.normpath(posixpath.join(APP_DIR, path))


def _stage(name: str) -> str:
    """A valid stage name for a step name such as `packages:mise`."""
    return re.sub(r"[^a-z0-9_.-]", "-", name.lower())


class _Renderer:
    def __init__(self, plan: BuildPlan, builder_image: str | None, runtime_image: str | None):
        self.plan = plan
        self.builder_image = builder_image
        self.runtime_image = runtime_image
        self.stages: list[list[str]] = []
        self.paths: dict[str, list[str]] = {}

    def image(self, ref: str, runtime: bool) -> str:
        return (self.runtime_image if runtime else self.builder_image) or ref

    def base_lines(self, layer: Layer, runtime: bool, alias: str | None) -> list[str]:
        named = f" AS {alias}" if alias else ""
        if layer.step:
            self.render_step(layer.step)
            return [f"FROM {_stage(layer.step)}{named}"]
        lines = [f"FROM {self.image(layer.image, runtime) if layer.image else 'scratch'}{named}", f"WORKDIR {APP_DIR}"]
        if layer.local:
            lines.append(f"COPY . {APP_DIR}")
        return lines

    def copy_lines(self, layer: Layer, runtime: bool) -> list[str]:
        includes = layer.include or []
        if not includes:
            return []  # a later input copies only the paths it includes, as in Railpack's own conversion
        if layer.local:
            return [f"COPY {path} {_in_app(path)}" for path in includes]
        if layer.step:
            self.render_step(layer.step)
        source = _stage(layer.step) if layer.step else self.image(layer.image or "", runtime)
        if layer.exclude:
            filtered = f"filtered-{len(self.stages)}"
            removed = " ".join(shlex.quote(_in_app(e)) for e in layer.exclude)
            self.stages.append([f"FROM {source} AS {filtered}", f"RUN rm -rf {removed}"])
            source = filtered
        return [f"COPY --from={source} {_in_app(path)} {_in_app(path)}" for path in includes]

    def render_step(self, name: str) -> list[str]:
        """Emit the step's stage (after the stages it depends on); returns its PATH entries."""
        if name in self.paths:
            return self.paths[name]
        step = self.plan.step(name)
        if step is None:
            raise ValueError(f"the plan has no step {name!r}")
        runtime = name.endswith(":runtime")
        first = step.inputs[0]
        lines = self.base_lines(first, runtime, _stage(name))
        paths = list(self.paths.get(first.step or "", []))
        for layer in step.inputs[1:]:
            lines += self.copy_lines(layer, runtime)
        lines += [f"ENV {key}={json.dumps(value)}" for key, value in step.variables.items()]
        for command in step.commands:
            if isinstance(command, PathCommand):
                paths.insert(0, _in_app(command.path))
                lines.append(f"ENV PATH={':'.join(paths + [DEFAULT_PATH])}")
            elif isinstance(command, ExecCommand):
                lines.append(self.run_line(step, command.cmd))
            elif isinstance(command, CopyCommand):
                origin = f"--from={command.image} " if command.image else ""
                src = _in_app(command.src) if command.image else command.src
                lines.append(f"COPY {origin}{src} {_in_app(command.dest)}")
            elif isinstance(command, FileCommand):
                target = _in_app(command.path)
                data = base64.b64encode(step.assets.get(command.name, "").encode()).decode()
                mode = oct(command.mode if command.mode is not None else 0o644)[2:]
                quoted = shlex.quote(target)
                lines.append(
                    f"RUN mkdir -p {shlex.quote(posixpath.dirname(target))} && echo {data} | base64 -d > {quoted} && chmod {mode} {quoted}"
                )
        self.stages.append(lines)
        self.paths[name] = paths
        return paths

    def run_line(self, step: Step, cmd: str) -> str:
        mounts = [
            f"--mount=type=cache,id={cache_id},target={self.plan.caches[cache_id].directory},sharing={self.plan.caches[cache_id].type}"
            for cache_id in step.caches
            if cache_id in self.plan.caches
        ]
        secrets = (
            list(self.plan.secrets) if "*" in step.secrets else [s for s in step.secrets if s in self.plan.secrets]
        )
        mounts += [f"--mount=type=secret,id={s}" for s in secrets]
        return f"RUN {''.join(m + ' ' for m in mounts)}sh -c {shlex.quote(secret_exports(secrets) + cmd)}"

    def render(self) -> str:
        deploy = self.plan.deploy
        lines = self.base_lines(deploy.base, runtime=True, alias=None)
        if deploy.base.step:
            lines.append(f"WORKDIR {APP_DIR}")
        for layer in deploy.inputs:
            lines += self.copy_lines(layer, runtime=True)
        lines += [f"ENV {key}={json.dumps(value)}" for key, value in deploy.variables.items()]
        lines.append(f"ENV PATH={':'.join([_in_app(p) for p in deploy.paths] + [DEFAULT_PATH])}")
        if deploy.start_command:
            lines.append(f"CMD {json.dumps(['/bin/sh', '-c', deploy.start_command])}")
        self.stages.append(lines)
        return "\n\n".join("\n".join(stage) for stage in self.stages) + "\n"


def plan_to_dockerfile(plan: BuildPlan, builder_image: str | None = None, runtime_image: str | None = None) -> str:
    """A multi-stage Dockerfile equivalent to the plan (build context: the app directory)."""
    return _Renderer(plan, builder_image, runtime_image).render()
