"""Plan → BuildKit LLB: one state per step, the deploy image copied onto the runtime base.

The target is BuildKit v0.8 (no MergeOp, no copy include/exclude patterns): layers are
FileOp copies, and excludes are applied by copying into an empty state and removing the
excluded paths there before the copy onto the image. The build context is the local source
`context`, minus the plan's excludes (.dockerignore) and .git.

Secrets: a step that uses secrets gets each one as an optional secret mount at
/run/secrets/NAME (mode 0400) and its command first exports each file as the variable NAME.
BuildKit v0.8 (dockerd 20.10) silently ignores ExecOp.secretenv, and a file mount works on
every BuildKit (Depot's current one too), so files are the one way that works on both. Only
names are in the definition; the step's STARFORGE_SECRETS_HASH (sha256 of the sorted names and
values it uses) is what changes its cache key when a value changes, as Railpack's secrets-hash
does, since BuildKit keys a secret mount by its id alone.
"""

from __future__ import annotations

import hashlib
import json
import platform as _platform
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from starforge_dag.buildkit import llb
from starforge_dag.railpack.plan import BuildPlan, CopyCommand, ExecCommand, FileCommand, Layer, PathCommand, Step

APP_DIR = "/app"
CONTEXT_NAME = "context"
Network = Literal["none", "host", "sandbox"] | None
NETWORKS = (None, "none", "host", "sandbox")
SECRETS_DIR = "/run/secrets"
SECRETS_HASH_VARIABLE = "STARFORGE_SECRETS_HASH"
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass
class PlanLLB:
    """A serialized pb.Definition for a raw Solve, and the deploy image's OCI config."""

    definition: bytes
    image_config: dict[str, Any]


@dataclass
class _StepState:
    state: llb.State
    env: dict[str, str] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)


def secret_exports(names: list[str]) -> str:
    """Shell prefix that loads mounted secret files into the command's environment (BuildKit v0.8 has no secret env)."""
    return "".join(f'export {name}="$(cat {SECRETS_DIR}/{name} 2>/dev/null)"; ' for name in names)


def secrets_hash(values: Mapping[str, str]) -> str:
    """sha256 over the sorted (name, value) pairs: changes when any value changes, and reveals none."""
    pairs = json.dumps(sorted(values.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(pairs.encode()).hexdigest()


def _in_app(path: str) -> str:
    """Plan paths are relative to /app unless absolute."""
    if path in (".", "./", ""):
        return APP_DIR
    return path if path.startswith("/") else posixpath.normpath(posixpath.join(APP_DIR, path))


class _Converter:
    def __init__(
        self,
        plan: BuildPlan,
        builder_image: str | None,
        runtime_image: str | None,
        network: llb.Network | Literal["sandbox"],
        context_name: str,
        platform: str | None,
        secret_values: Mapping[str, str],
    ):
        self.plan = plan
        self.secret_values = secret_values
        for name in plan.secrets:
            if not _VARIABLE_NAME.fullmatch(name):
                raise ValueError(f"secret {name[:80]!r} is not a variable name")
        self.builder_image = builder_image
        self.runtime_image = runtime_image
        if network not in NETWORKS:
            raise ValueError(f"network must be one of none, host, sandbox or unset, not {network!r}")
        self.network = cast(Network, network)
        self.platform = platform
        self.context = llb.local(context_name, exclude=[".git", *plan.exclude], platform=platform)
        self.steps: dict[str, _StepState] = {}
        self.images: dict[str, llb.State] = {}

    def image(self, ref: str, runtime: bool) -> llb.State:
        """An image source, with the configured stand-in replacing the plan's builder/runtime image."""
        override = self.runtime_image if runtime else self.builder_image
        ref = override or ref
        if ref not in self.images:
            self.images[ref] = llb.image(ref, platform=self.platform)
        return self.images[ref]

    def layer_base(self, layer: Layer, runtime: bool) -> _StepState:
        if layer.step:
            parent = self.step_state(layer.step)
            return _StepState(parent.state, dict(parent.env), list(parent.paths))
        if layer.image:
            return _StepState(self.image(layer.image, runtime).file(llb.mkdir(APP_DIR, make_parents=True)))
        return _StepState(llb.scratch(self.platform).file(llb.copy(self.context, "/", APP_DIR, create_dest_path=True)))

    def layer_source(self, layer: Layer, runtime: bool) -> tuple[llb.State, bool]:
        """The state a layer copies from, and whether its paths are relative to the context root."""
        if layer.step:
            return self.step_state(layer.step).state, False
        if layer.image:
            return self.image(layer.image, runtime), False
        return self.context, True

    def copy_layer(self, base: llb.State, layer: Layer, runtime: bool) -> llb.State:
        """Copy a filtered layer onto base; excludes are removed in a scratch state first."""
        if not layer.include:
            # As in Railpack's own conversion, a later input copies only the paths it includes.
            return base
        source, from_context = self.layer_source(layer, runtime)
        actions = []
        for path in layer.include:
            src = path if from_context else _in_app(path)
            dest = _in_app(path)
            actions.append(
                llb.copy(source, src, dest, create_dest_path=True, allow_wildcard=True, allow_empty_wildcard=True)
            )
        if not layer.exclude:
            return base.file(*actions, name=f"copy {_describe(layer)}")
        staged = llb.scratch(self.platform).file(*actions)
        staged = staged.file(*[llb.rm(_in_app(e), allow_not_found=True, allow_wildcard=True) for e in layer.exclude])
        return base.file(llb.copy(staged, "/", "/", create_dest_path=True), name=f"copy {_describe(layer)}")

    def step_state(self, name: str) -> _StepState:
        if name in self.steps:
            return self.steps[name]
        step = self.plan.step(name)
        if step is None:
            raise ValueError(f"the plan has no step {name!r}")
        self.steps[name] = self.convert_step(step)
        return self.steps[name]

    def secret_names(self, step: Step) -> list[str]:
        if "*" in step.secrets:
            return list(self.plan.secrets)
        return [s for s in step.secrets if s in self.plan.secrets]

    def convert_step(self, step: Step) -> _StepState:
        runtime = step.name.endswith(":runtime")
        current = self.layer_base(step.inputs[0], runtime)
        state = current.state
        for layer in step.inputs[1:]:
            state = self.copy_layer(state, layer, runtime)
        env = {**current.env, **step.variables}
        paths = list(current.paths)
        caches = [self.plan.caches[c] for c in step.caches if c in self.plan.caches]
        cache_ids = [c for c in step.caches if c in self.plan.caches]
        for command in step.commands:
            if isinstance(command, PathCommand):
                paths.insert(0, _in_app(command.path))
            elif isinstance(command, ExecCommand):
                mounts = [
                    llb.cache_mount(cache.directory, id=cid, sharing=cache.type)
                    for cid, cache in zip(cache_ids, caches)
                ]
                secrets = self.secret_names(step)
                mounts += [llb.secret_mount(f"{SECRETS_DIR}/{name}", id=name, optional=True) for name in secrets]
                run_env = {**env, "PATH": ":".join(paths + [llb.DEFAULT_PATH])}
                used = {name: self.secret_values[name] for name in secrets if name in self.secret_values}
                if used:
                    run_env[SECRETS_HASH_VARIABLE] = secrets_hash(used)
                state = state.run(
                    ["sh", "-c", secret_exports(secrets) + command.cmd],
                    cwd=APP_DIR,
                    env=run_env,
                    mounts=mounts,
                    network=self.network,
                    name=command.custom_name or command.cmd,
                ).root()
            elif isinstance(command, CopyCommand):
                source = self.image(command.image, runtime) if command.image else self.context
                src = _in_app(command.src) if command.image else command.src
                state = state.file(
                    llb.copy(source, src, _in_app(command.dest), create_dest_path=True), name=f"copy {command.src}"
                )
            elif isinstance(command, FileCommand):
                target = _in_app(command.path)
                data = step.assets.get(command.name)
                if data is None:
                    raise ValueError(f"step {step.name!r} writes asset {command.name!r}, which it does not define")
                state = state.file(
                    llb.mkdir(posixpath.dirname(target), make_parents=True),
                    llb.mkfile(target, data, mode=command.mode if command.mode is not None else 0o644),
                    name=command.custom_name or f"create {target}",
                )
        return _StepState(state, env, paths)

    def deploy(self) -> tuple[llb.State, dict[str, Any]]:
        deploy = self.plan.deploy
        base = self.layer_base(deploy.base, runtime=True)
        state = base.state
        for layer in deploy.inputs:
            state = self.copy_layer(state, layer, runtime=True)
        # Like Railpack, the image inherits the build graph's variables and PATH entries.
        graph_env: dict[str, str] = {}
        graph_paths: list[str] = []
        for converted in self.steps.values():
            graph_env.update(converted.env)
            graph_paths += [p for p in converted.paths if p not in graph_paths]
        paths = sorted(dict.fromkeys([_in_app(p) for p in deploy.paths] + graph_paths))
        env = {**graph_env, **base.env, **deploy.variables, "PATH": ":".join(paths + [llb.DEFAULT_PATH])}
        config: dict[str, Any] = {"Env": [f"{k}={v}" for k, v in env.items()], "WorkingDir": APP_DIR}
        if deploy.start_command:
            config["Cmd"] = ["/bin/sh", "-c", deploy.start_command]
        arch = (
            self.platform or f"linux/{_ARCHES.get(_platform.machine().lower(), _platform.machine().lower())}"
        ).split("/")
        return state, {"architecture": arch[1], "os": arch[0], "config": config}


def _describe(layer: Layer) -> str:
    source = f"${layer.step}" if layer.step else layer.image or "local"
    return f"{source} {' '.join(layer.include or ['.'])}"


def plan_to_llb(
    plan: BuildPlan,
    builder_image: str | None = None,
    runtime_image: str | None = None,
    *,
    network: llb.Network | Literal["sandbox"] = None,
    context_name: str = CONTEXT_NAME,
    platform: str | None = None,
    secret_values: Mapping[str, str] | None = None,
) -> PlanLLB:
    """Convert a plan to a pb.Definition and the deploy image config.

    `builder_image`/`runtime_image` replace the plan's images for build steps and for the
    deploy base (and `:runtime` steps); `network` is passed to every exec ("host", "none",
    or None for BuildKit's sandbox); the build context is the local source `context_name`.
    `secret_values` only feed each step's secrets hash; the values themselves go to the build's session.
    """
    converter = _Converter(plan, builder_image, runtime_image, network, context_name, platform, secret_values or {})
    state, image_config = converter.deploy()
    return PlanLLB(definition=llb.marshal(state), image_config=image_config)
