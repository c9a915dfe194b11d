"""The planner's entry point: detect the app, run its provider, apply user config, return the plan.

Base images: the builder image runs every build step and the runtime image is the base of
the deployed image. They default to Railpack's own images and are replaced by the
`builder_image`/`runtime_image` arguments or the RAILPACK_BUILDER_IMAGE /
RAILPACK_RUNTIME_IMAGE variables, so a locally built image can stand in for them.

Variables: the build's variables (`env`, name -> value) are what Railpack's `--env` gives: every
name becomes a plan secret (values reach steps only as BuildKit secrets, never the plan), and
their RAILPACK_* entries are options. `platform_options` (the host's RAILPACK_*) are defaults
under the app's own. A variable named in `secrets` is never read as an option, since options
are written into the plan.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from starforge_dag.railpack.config import (
    CONFIG_FILE,
    RAILPACK_PREFIX,
    Config,
    ConfigError,
    Env,
    config_from_env,
    merge_configs,
    parse_config,
    railpack_options,
)
from starforge_dag.railpack.context import (
    DEFAULT_BUILDER_IMAGE,
    DEFAULT_RUNTIME_IMAGE,
    CommandStepBuilder,
    GenerateContext,
    step_layer,
)
from starforge_dag.railpack.plan import BuildPlan, ExecCommand, Layer
from starforge_dag.railpack.providers import Provider, language_providers, provider_by_name
from starforge_dag.railpack.providers.procfile import plan_procfile
from starforge_dag.railpack.resolver import OfflineVersionResolver, VersionResolver
from starforge_dag.railpack.source import SourceTree

SPREAD = "..."
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class PlanError(Exception):
    """No plan can be made; the message tells the user what was looked for and how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class PlanResult:
    """The plan and what planning found out (providers, versions, warnings)."""

    plan: BuildPlan
    info: dict[str, Any]


def generate_plan(
    source_dir: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
    builder_image: str | None = None,
    runtime_image: str | None = None,
    resolver: VersionResolver | None = None,
    *,
    secrets: Collection[str] = (),
    platform_options: Mapping[str, str] | None = None,
) -> PlanResult:
    """Plan the build of the app in `source_dir` as Railpack would, or raise PlanError.

    `env` holds the build's variables, `secrets` names those of them that are secret, and
    `platform_options` the platform's RAILPACK_* defaults, which the app's own override.
    """
    if not os.path.isdir(source_dir):
        raise PlanError(f"{source_dir} is not a directory")
    source = SourceTree(source_dir)
    variables, ignored = build_variables(env or {}, secrets, platform_options or {})
    file_config, config_source = _load_config(source, variables, config_file)
    config = merge_configs(config_from_env(variables), file_config)
    ctx = GenerateContext(
        source,
        variables,
        config,
        builder_image=builder_image or variables.railpack("BUILDER_IMAGE") or DEFAULT_BUILDER_IMAGE,
        runtime_image=runtime_image or variables.railpack("RUNTIME_IMAGE") or DEFAULT_RUNTIME_IMAGE,
    )

    for name in ignored:
        ctx.warn(
            f"{name} is a secret and was not applied: Railpack options are written into the plan, set it as a plain variable"
        )
    ctx.resolver = resolver or OfflineVersionResolver()
    provider, detected = _pick_provider(ctx)
    ctx.set_metadata("providers", detected)
    if provider is not None:
        provider.plan(ctx)
    plan_procfile(ctx)

    _apply_config(ctx)
    try:
        resolved = ctx.requests.resolve(ctx.resolver)
    except ValueError as exc:
        raise PlanError(str(exc)) from exc
    plan = BuildPlan()
    plan.exclude = _dockerignore(source) + list(config.exclude)
    for builder in ctx.steps:
        builder.build(plan, ctx, resolved)
    plan.secrets = sorted({s for s in ctx.secrets if not s.startswith(RAILPACK_PREFIX)})
    ctx.deploy.build(plan, ctx)
    plan.caches = dict(ctx.caches.caches)
    _normalize(plan)

    if provider is not None:
        provider.cleanse_plan(plan)
    _disable_caches(plan, ctx, variables.railpack_list("DISABLE_CACHES"))
    _validate(plan, source, provider, ctx)
    _sort_maps(plan)
    return PlanResult(plan=plan, info=_info(ctx, detected, plan, config_source, resolved))


def build_variables(
    env: Mapping[str, str], secrets: Collection[str], platform_options: Mapping[str, str]
) -> tuple[Env, list[str]]:
    """The variables planning sees: platform RAILPACK_* defaults under the app's, secret options left out (and named)."""
    secret = set(secrets)
    ignored = sorted(n for n in env if n in secret and n.startswith(RAILPACK_PREFIX))
    app = {k: v for k, v in env.items() if k not in ignored}
    return Env({**railpack_options(platform_options), **app}), ignored


def _info(
    ctx: GenerateContext, detected: str | None, plan: BuildPlan, config_source: str | None, resolved: Any
) -> dict[str, Any]:
    """What `--info` shows: detected provider, versions and where they came from, warnings, cost."""
    return {
        "detectedProviders": [detected] if detected else [],
        "resolvedPackages": {
            name: {
                "name": p.name,
                "requestedVersion": p.requested_version,
                "resolvedVersion": p.resolved_version,
                "source": p.source,
            }
            for name, p in sorted(resolved.items())
        },
        "metadata": dict(sorted(ctx.metadata.items())),
        "warnings": ctx.warnings,
        "configFile": config_source,
        "startCommand": plan.deploy.start_command,
        "filesRead": ctx.source.files_read,
        "dirsListed": ctx.source.dirs_listed,
    }


def _load_config(source: SourceTree, env: Env, config_file: str | None) -> tuple[Config, str | None]:
    """railpack.json (or the file RAILPACK_CONFIG_FILE / config_file names, relative to the app)."""
    name = env.railpack("CONFIG_FILE") or config_file
    rel = name or CONFIG_FILE
    text = source.read_text(rel)
    if text is None:
        if name and name != CONFIG_FILE:
            raise PlanError(f"config file {name} was not found in the app directory")
        return Config(), None
    try:
        return parse_config(text, rel), rel
    except ConfigError as exc:
        raise PlanError(str(exc)) from exc


def _pick_provider(ctx: GenerateContext) -> tuple[Provider | None, str | None]:
    """The first provider that detects the app, unless railpack.json names one."""
    chosen: Provider | None = None
    detected: str | None = None
    for provider in language_providers():
        if provider.detect(ctx):
            detected = provider.name
            if ctx.config.provider is None:
                provider.initialize(ctx)
                chosen = provider
            break
    if ctx.config.provider is not None:
        forced = provider_by_name(ctx.config.provider)
        if forced is None:
            names = ", ".join(p.name for p in language_providers())
            raise PlanError(
                f"railpack.json names provider {ctx.config.provider!r}, which does not exist; use one of: {names}"
            )
        forced.initialize(ctx)
        chosen = forced
    return chosen, detected


def _spread(given: list[Any] | None, generated: list[Any], is_spread: Any) -> list[Any]:
    """Railpack's list override: the user's list replaces, and `...` in it stands for the generated items."""
    if given is None:
        return generated
    out: list[Any] = []
    for item in given:
        out.extend(generated if is_spread(item) else [item])
    return out


def _is_spread_string(value: str) -> bool:
    return value == SPREAD


def _is_spread_command(command: Any) -> bool:
    return isinstance(command, ExecCommand) and command.is_spread()


def _apply_config(ctx: GenerateContext) -> None:
    """Overlay railpack.json and RAILPACK_* on what the provider planned, Railpack-style."""
    config = ctx.config
    ctx.apply_config_packages()
    if config.build_apt_packages is not None:
        given = config.build_apt_packages
        if SPREAD not in given:
            given = [SPREAD, *given]
        ctx.mise.apt_packages = _spread(given, ctx.mise.apt_packages, _is_spread_string)
    ctx.caches.caches.update(config.caches)
    ctx.secrets = _spread(config.secrets, ctx.secrets, _is_spread_string)

    deploy = config.deploy
    if deploy.base is not None and not deploy.base.is_empty():
        ctx.deploy.base = deploy.base
    if deploy.start_command:
        ctx.deploy.start_command = deploy.start_command
    ctx.deploy.apt_packages = _spread(deploy.apt_packages, ctx.deploy.apt_packages, _is_spread_string)
    ctx.deploy.inputs = _spread(deploy.inputs, ctx.deploy.inputs, lambda layer: layer.spread)
    ctx.deploy.paths = _spread(deploy.paths, ctx.deploy.paths, _is_spread_string)
    ctx.deploy.variables.update(deploy.variables)
    replaces_deploy_inputs = deploy.inputs is not None and not any(layer.spread for layer in deploy.inputs)

    for name in sorted(config.steps):
        sc = config.steps[name]
        existing = ctx.step(name)
        if existing is not None and not isinstance(existing, CommandStepBuilder):
            ctx.warn(f"step {name!r} exists but is not a command step; its railpack.json settings are ignored")
            continue
        step = existing
        if step is None:
            step = ctx.new_command_step(name)
            step.add_input(Layer(step=ctx.mise.name))
        step.inputs = _spread(sc.inputs, step.inputs, lambda layer: layer.spread)
        step.commands = _spread(sc.commands, step.commands, _is_spread_command)
        step.secrets = _spread(sc.secrets, step.secrets, _is_spread_string)
        step.caches = _spread(sc.caches, step.caches, _is_spread_string)
        step.variables.update(sc.variables)
        step.assets.update(sc.assets)

        if sc.deploy_outputs is not None:
            outputs = [(o.include or ["."], o.exclude) for o in sc.deploy_outputs]
        elif replaces_deploy_inputs or ctx.deploy.has_input_for_step(name):
            continue
        else:
            outputs = [(["."], None)]
        for include, exclude in outputs:
            if any(ctx.deploy.has_include_for_step(name, inc) for inc in include):
                continue
            ctx.deploy.inputs.append(step_layer(name, include=include, exclude=exclude))


def _sort_maps(plan: BuildPlan) -> None:
    """Maps in key order, as Railpack's JSON writes them."""
    plan.caches = dict(sorted(plan.caches.items()))
    for step in plan.steps:
        step.assets = dict(sorted(step.assets.items()))
        step.variables = dict(sorted(step.variables.items()))
    plan.deploy.variables = dict(sorted(plan.deploy.variables.items()))


def _dockerignore(source: SourceTree) -> list[str]:
    """Patterns of .dockerignore: files never sent as build context."""
    text = source.read_text(".dockerignore") or ""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _disable_caches(plan: BuildPlan, ctx: GenerateContext, names: list[str]) -> None:
    """RAILPACK_DISABLE_CACHES: drop the named caches (or all with `*`) from the plan and its steps."""
    if not names:
        return
    if "*" in names:
        if len(names) > 1:
            ctx.warn("RAILPACK_DISABLE_CACHES contains `*`; all other cache keys are ignored.")
        dropped = set(plan.caches)
    else:
        dropped = set(names)
    plan.caches = {k: v for k, v in plan.caches.items() if k not in dropped}
    for step in plan.steps:
        step.caches = [c for c in step.caches if c not in dropped]


def _normalize(plan: BuildPlan) -> None:
    """Drop empty layers and steps the deploy image does not depend on."""
    for step in plan.steps:
        step.inputs = [i for i in step.inputs if not i.is_empty()]
    plan.deploy.inputs = [i for i in plan.deploy.inputs if not i.is_empty()]
    by_name = {s.name: s for s in plan.steps}
    wanted = [plan.deploy.base.step] + [i.step for i in plan.deploy.inputs]
    keep: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name and name not in keep and name in by_name:
            keep.add(name)
            wanted += [i.step for i in by_name[name].inputs]
    if keep:
        plan.steps = [s for s in plan.steps if s.name in keep]


def _validate(plan: BuildPlan, source: SourceTree, provider: Provider | None, ctx: GenerateContext) -> None:
    """Railpack's checks: something to run, a start command (warned), well-formed inputs, a deploy base."""
    if not any(step.commands for step in plan.steps):
        raise PlanError(_nothing_detected_message(source))
    if not plan.deploy.start_command:
        message = "No start command detected. Set RAILPACK_START_CMD or deploy.startCommand in railpack.json."
        help_text = provider.start_command_help() if provider else ""
        ctx.warn(message + (f"\n\n{help_text}" if help_text else ""))
    names = {s.name for s in plan.steps}
    for step in plan.steps:
        if not step.inputs:
            raise PlanError(f"step {step.name!r} has no inputs")
        first = step.inputs[0]
        if not (first.image or first.step):
            raise PlanError(f"the first input of step {step.name!r} must be an image or a step")
        if first.include or first.exclude:
            raise PlanError(f"the first input of step {step.name!r} cannot have includes or excludes")
        for layer in step.inputs:
            if layer.step and layer.step not in names:
                raise PlanError(f"step {step.name!r} uses step {layer.step!r}, which does not exist")
        for cache in step.caches:
            if cache not in plan.caches:
                raise PlanError(f"step {step.name!r} uses cache {cache!r}, which is not defined in caches")
    for name in plan.secrets:
        if not _VARIABLE_NAME.fullmatch(name):
            raise PlanError(
                f"secret {name[:80]!r} is not a variable name (letters, digits and _, not starting with a digit)"
            )
    if not (plan.deploy.base.image or plan.deploy.base.step):
        raise PlanError("deploy.base is required")
    for layer in plan.deploy.inputs:
        if layer.step and layer.step not in names:
            raise PlanError(f"deploy uses step {layer.step!r}, which does not exist")


def _nothing_detected_message(source: SourceTree) -> str:
    entries = source.list_dir()
    found = [e.name + "/" for e in entries if e.is_dir()] + [e.name for e in entries if not e.is_dir()]
    lines = [f"Railpack could not determine how to build the app in {source.root}.", ""]
    lines += ["The following languages are supported:"]
    lines += [f"  - {p.name.capitalize()}: {p.looked_for}" for p in language_providers()]
    shown = ", ".join(found[:20]) if found else "nothing (the directory is empty)"
    lines += ["", f"Found at the root: {shown}", ""]
    lines += [
        "To fix this, do one of:",
        "  - add a Dockerfile at the root of the app;",
        "  - describe the build steps in railpack.json, or set RAILPACK_BUILD_CMD and RAILPACK_START_CMD.",
    ]
    return "\n".join(lines)
