"""The planner's entry point: detect the app, run its provider, apply user config, return the plan.

Base images: the builder image runs every build step and the runtime image is the base of
the deployed image. They default to Railpack's own images and are replaced by the
`builder_image`/`runtime_image` arguments or the RAILPACK_BUILDER_IMAGE /
RAILPACK_RUNTIME_IMAGE variables, so a locally built image can stand in for them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from starforge_dag.railpack.app import App
from starforge_dag.railpack.config import (
    CONFIG_FILE,
    DEFAULT_BUILDER_IMAGE,
    DEFAULT_RUNTIME_IMAGE,
    Config,
    ConfigError,
    Env,
    OutputFilter,
    StepConfig,
    config_from_env,
    parse_config,
)
from starforge_dag.railpack.plan import BuildPlan, Cache, Deploy, ExecCommand, FileCommand, Layer, PathCommand, Step
from starforge_dag.railpack.providers import Context, Provider, ProviderPlan, language_providers, provider_by_name
from starforge_dag.railpack.providers.base import ResolvedPackage

MISE_STEP = "packages:mise"
APT_BUILD_STEP = "packages:apt:build"
APT_RUNTIME_STEP = "packages:apt:runtime"
MISE_CONFIG = "/etc/mise/config.toml"
MISE_RUNTIME_PATHS = ["/mise/shims", "/mise/installs", "/usr/local/bin/mise", MISE_CONFIG, "/root/.local/state/mise"]
MISE_VARIABLES = {
    "MISE_CACHE_DIR": "/mise/cache",
    "MISE_CONFIG_DIR": "/mise",
    "MISE_DATA_DIR": "/mise",
    "MISE_INSTALLS_DIR": "/mise/installs",
    "MISE_SHIMS_DIR": "/mise/shims",
}
APT_CACHES = {
    "apt": Cache(directory="/var/cache/apt", type="locked"),
    "apt-lists": Cache(directory="/var/lib/apt/lists", type="locked"),
}
SPREAD = "..."

LOOKED_FOR = [
    ("Node", "package.json"),
    ("Python", "requirements.txt, pyproject.toml, Pipfile or main.py/app.py"),
    ("Go", "go.mod, go.work or main.go"),
    ("Ruby", "Gemfile"),
    ("PHP", "composer.json or index.php"),
    ("Rust", "Cargo.toml"),
    ("Java", "pom.xml or gradlew"),
    ("Elixir", "mix.exs"),
    ("Deno", "deno.json or deno.jsonc"),
    (".NET", "a *.csproj file"),
    ("Gleam", "gleam.toml"),
    ("C/C++", "CMakeLists.txt or meson.build"),
    ("Static site", "Staticfile, index.html or a public/ directory"),
    ("Shell", "start.sh (or RAILPACK_SHELL_SCRIPT)"),
]


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
    env: dict[str, str] | None = None,
    config_file: str | None = None,
    builder_image: str | None = None,
    runtime_image: str | None = None,
) -> PlanResult:
    """Plan the build of the app in `source_dir` as Railpack would, or raise PlanError."""
    if not os.path.isdir(source_dir):
        raise PlanError(f"{source_dir} is not a directory")
    app = App(source_dir)
    variables = Env(env)
    file_config, config_source = _load_config(app, variables, config_file)
    env_config = config_from_env(variables)
    ctx = Context(app=app, env=variables, config=file_config)

    provider = _pick_provider(ctx)
    provider_plan = provider.plan(ctx) if provider else ProviderPlan()
    procfile_start = _procfile_start(app)
    if provider is None and not (_config_builds(file_config) or _config_builds(env_config) or procfile_start):
        raise PlanError(_nothing_detected_message(app))

    for config, source in ((file_config, config_source or CONFIG_FILE), (env_config, "RAILPACK_PACKAGES")):
        for name, version in sorted(config.packages.items()):
            provider_plan.packages[name] = version
            ctx.packages[name] = ResolvedPackage(name, version, source)

    plan = _assemble(
        provider_plan,
        builder=builder_image or variables.railpack("BUILDER_IMAGE") or DEFAULT_BUILDER_IMAGE,
        runtime=runtime_image or variables.railpack("RUNTIME_IMAGE") or DEFAULT_RUNTIME_IMAGE,
        build_apt=_apt_list(provider_plan.build_apt, file_config.build_apt_packages, env_config.build_apt_packages),
        deploy_apt=_apt_list(provider_plan.deploy_apt, file_config.deploy.apt_packages, env_config.deploy.apt_packages),
    )
    if procfile_start:
        plan.deploy.start_command = procfile_start
    for config in (file_config, env_config):
        _apply_config(plan, config)
    _disable_caches(plan, variables.railpack_list("DISABLE_CACHES"))
    _release_node_modules_cache(plan)
    plan.secrets = _secret_names(plan, variables, file_config)
    plan.exclude = _dockerignore(app)
    _normalize(plan)
    _validate(plan)

    if not plan.deploy.start_command:
        help_text = provider.start_command_help() if provider else "set a start command"
        ctx.warn(
            f"No start command was found: {help_text}, or set RAILPACK_START_CMD / deploy.startCommand in railpack.json."
        )
    return PlanResult(plan=plan, info=_info(ctx, provider, plan, config_source))


def _info(ctx: Context, provider: Provider | None, plan: BuildPlan, config_source: str | None) -> dict[str, Any]:
    """What `--info` shows: detected provider, versions and where they came from, warnings, cost."""
    return {
        "detectedProviders": [provider.name] if provider else [],
        "resolvedPackages": {
            name: {"name": p.name, "requestedVersion": p.requested_version, "source": p.source}
            for name, p in sorted(ctx.packages.items())
        },
        "metadata": dict(sorted(ctx.metadata.items())),
        "warnings": ctx.warnings,
        "configFile": config_source,
        "startCommand": plan.deploy.start_command,
        "filesRead": ctx.app.files_read,
        "dirsListed": ctx.app.dirs_listed,
    }


def _load_config(app: App, env: Env, config_file: str | None) -> tuple[Config, str | None]:
    """railpack.json (or the file RAILPACK_CONFIG_FILE / config_file names, relative to the app)."""
    name = config_file or env.railpack("CONFIG_FILE")
    rel = name or CONFIG_FILE
    text = app.read_text(rel)
    if text is None:
        if name:
            raise PlanError(f"config file {name} was not found in the app directory")
        return Config(), None
    try:
        return parse_config(text, rel), rel
    except ConfigError as exc:
        raise PlanError(str(exc)) from exc


def _pick_provider(ctx: Context) -> Provider | None:
    if ctx.config.provider:
        forced = provider_by_name(ctx.config.provider)
        if forced is None:
            names = ", ".join(p.name for p in language_providers())
            raise PlanError(
                f"railpack.json names provider {ctx.config.provider!r}, which does not exist; use one of: {names}"
            )
        return forced
    return next((p for p in language_providers() if p.detect(ctx)), None)


def _config_builds(config: Config) -> bool:
    """True when the user's config alone describes something to build or run."""
    return bool(config.deploy.start_command or any(s.commands for s in config.steps.values()))


def _procfile_start(app: App) -> str | None:
    """The Procfile's web process, else worker, else the first one."""
    text = app.read_text("Procfile")
    if not text:
        return None
    processes: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^\s*([\w-]+)\s*:\s*(.+?)\s*$", line)
        if match and not line.lstrip().startswith("#"):
            processes.setdefault(match.group(1), match.group(2))
    return processes.get("web") or processes.get("worker") or next(iter(processes.values()), None)


def _nothing_detected_message(app: App) -> str:
    found = [e.name + ("/" if e.is_dir() else "") for e in app.list_dir()][:20]
    lines = [f"Railpack could not determine how to build the app in {app.root}.", "", "Looked for:"]
    lines += [f"  - {language}: {files}" for language, files in LOOKED_FOR]
    lines += ["", f"Found at the root: {', '.join(found) if found else 'nothing (the directory is empty)'}", ""]
    lines += [
        "To fix this, do one of:",
        "  - add a Dockerfile at the root of the app;",
        "  - set a start command (RAILPACK_START_CMD, a Procfile, or deploy.startCommand in railpack.json);",
        "  - describe the build steps in railpack.json.",
    ]
    return "\n".join(lines)


def _dockerignore(app: App) -> list[str]:
    """Patterns of .dockerignore: files never sent as build context."""
    text = app.read_text(".dockerignore") or ""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _mise_toml(packages: dict[str, str]) -> str:
    lines = ["[tools]"] + [f'"{name}" = "{version}"' for name, version in sorted(packages.items())]
    return "\n".join(lines) + "\n"


def _apt_step(name: str, base: Layer, packages: list[str]) -> Step:
    pkgs = " ".join(dict.fromkeys(packages))
    return Step(
        name=name,
        inputs=[base],
        commands=[
            ExecCommand(
                cmd=f"sh -c 'apt-get update && apt-get install -y {pkgs}'", custom_name=f"install apt packages: {pkgs}"
            )
        ],
        caches=["apt", "apt-lists"],
        secrets=[],
    )


def _assemble(pp: ProviderPlan, builder: str, runtime: str, build_apt: list[str], deploy_apt: list[str]) -> BuildPlan:
    """Railpack's step layout: apt and mise packages, install, build, then the deploy image."""
    plan = BuildPlan(caches=dict(pp.caches))
    base = Layer(image=pp.step_image or builder)
    if build_apt:
        plan.steps.append(_apt_step(APT_BUILD_STEP, base, build_apt))
        base = Layer(step=APT_BUILD_STEP)
    if pp.packages:
        names = ", ".join(sorted(pp.packages))
        plan.steps.append(
            Step(
                name=MISE_STEP,
                inputs=[base],
                commands=[
                    PathCommand(path="/mise/shims"),
                    FileCommand(path=MISE_CONFIG, name="mise.toml", custom_name="create mise config"),
                    ExecCommand(cmd="mise trust -a && mise install", custom_name=f"install mise packages: {names}"),
                ],
                assets={"mise.toml": _mise_toml(pp.packages)},
                variables=dict(MISE_VARIABLES),
                secrets=[],
            )
        )
        base = Layer(step=MISE_STEP)
    build_base = base
    if pp.install:
        inputs = [base] + ([Layer(local=True, include=["."])] if pp.install_needs_source else [])
        plan.steps.append(
            Step(
                name="install",
                inputs=inputs,
                commands=list(pp.install),
                caches=list(pp.install_caches),
                variables=dict(pp.variables),
            )
        )
        build_base = Layer(step="install")
    plan.steps.append(
        Step(
            name="build",
            inputs=[build_base, Layer(local=True, include=["."])],
            commands=list(pp.build),
            caches=list(pp.build_caches),
            assets=dict(pp.build_assets),
            variables={} if pp.install else dict(pp.variables),
        )
    )

    runtime_base = pp.deploy_base or Layer(image=runtime)
    if deploy_apt:
        plan.steps.append(_apt_step(APT_RUNTIME_STEP, runtime_base, deploy_apt))
        runtime_base = Layer(step=APT_RUNTIME_STEP)
    if build_apt or deploy_apt:
        plan.caches.update(APT_CACHES)
    deploy_inputs: list[Layer] = []
    paths = list(pp.paths)
    if pp.packages and pp.runtime_packages:
        deploy_inputs.append(Layer(step=MISE_STEP, include=list(MISE_RUNTIME_PATHS)))
        paths.insert(0, "/mise/shims")
    if pp.deploy_inputs is not None:
        deploy_inputs += pp.deploy_inputs
    elif pp.deploy_base is None:
        deploy_inputs.append(Layer(step="build", include=["."]))
    plan.deploy = Deploy(
        base=runtime_base,
        inputs=deploy_inputs,
        start_command=pp.start_command,
        variables=dict(pp.deploy_variables),
        paths=paths,
    )
    return plan


def _splice(generated: list[Any], given: list[Any], is_spread: Any) -> list[Any]:
    """Railpack's array extending: `...` in the user's list stands for the generated items."""
    out: list[Any] = []
    for item in given:
        out.extend(generated if is_spread(item) else [item])
    return out


def _is_spread_layer(layer: Layer) -> bool:
    return layer.spread


def _is_spread_command(command: Any) -> bool:
    return isinstance(command, ExecCommand) and command.cmd == SPREAD


def _default_inputs(plan: BuildPlan, name: str) -> list[Layer]:
    """Where a step that only config defines gets its filesystem.

    Install and build need the source; any other new step starts from `packages:mise`
    (or the package or builder image beneath it), as Railpack's docs describe.
    """
    packages = next((Layer(step=s) for s in (MISE_STEP, APT_BUILD_STEP) if plan.step(s)), None)
    base = packages or Layer(image=_builder_image(plan))
    if name not in {"install", "build"}:
        return [base]
    if name == "build" and plan.step("install"):
        base = Layer(step="install")
    return [base, Layer(local=True, include=["."])]


def _builder_image(plan: BuildPlan) -> str:
    first = plan.steps[0].inputs[0] if plan.steps and plan.steps[0].inputs else Layer()
    return first.image or DEFAULT_BUILDER_IMAGE


def _apply_step(plan: BuildPlan, name: str, sc: StepConfig) -> None:
    step = plan.step(name)
    created = step is None
    if step is None:
        step = Step(name=name, inputs=_default_inputs(plan, name))
        plan.steps.append(step)
    if sc.inputs is not None:
        step.inputs = _splice(step.inputs, sc.inputs, _is_spread_layer)
    if sc.commands is not None:
        replaced = not any(_is_spread_command(c) for c in sc.commands)
        step.commands = _splice(step.commands, sc.commands, _is_spread_command)
        if replaced and name == "install" and not any(layer.local for layer in step.inputs):
            step.inputs.append(Layer(local=True, include=["."]))
    if sc.secrets is not None:
        step.secrets = list(sc.secrets)
    if sc.caches is not None:
        step.caches = _splice(step.caches, sc.caches, lambda c: c == SPREAD)
    step.assets.update(sc.assets)
    step.variables.update(sc.variables)
    outputs = sc.deploy_outputs
    if outputs is None and created and name not in {"install", "build"}:
        outputs = [OutputFilter(include=["."])]
    for output in outputs or []:
        plan.deploy.inputs.append(Layer(step=name, include=output.include or ["."], exclude=output.exclude))


def _apply_config(plan: BuildPlan, config: Config) -> None:
    """Overlay one config source on the plan, Railpack-style."""
    plan.caches.update(config.caches)
    for name in sorted(config.steps):
        _apply_step(plan, name, config.steps[name])
    deploy = config.deploy
    if deploy.base is not None:
        plan.deploy.base = deploy.base
    if deploy.inputs is not None:
        plan.deploy.inputs = _splice(plan.deploy.inputs, deploy.inputs, _is_spread_layer)
    if deploy.start_command:
        plan.deploy.start_command = deploy.start_command
    plan.deploy.variables.update(deploy.variables)
    plan.deploy.paths += [p for p in deploy.paths if p not in plan.deploy.paths]


def _apt_list(generated: list[str], *configured: list[str]) -> list[str]:
    """Each configured list replaces the packages so far, or extends them where it says `...`."""
    packages = list(generated)
    for given in configured:
        if given:
            packages = _splice(packages, given, lambda p: p == SPREAD)
    return list(dict.fromkeys(packages))


_REMOVES_NODE_MODULES = re.compile(r"\bnpm ci\b|\brm -rf? (\./)?node_modules\b|\brimraf (\./)?node_modules\b")


def _release_node_modules_cache(plan: BuildPlan) -> None:
    """Steps after install that delete node_modules cannot have a cache mounted inside it (EBUSY)."""
    for step in plan.steps:
        if step.name != "install" and any(_REMOVES_NODE_MODULES.search(c) for c in step.exec_commands()):
            step.caches = [c for c in step.caches if c != "node-modules"]


def _disable_caches(plan: BuildPlan, names: list[str]) -> None:
    """RAILPACK_DISABLE_CACHES: drop the named caches (or all with `*`) from the plan and its steps."""
    if not names:
        return
    dropped = set(plan.caches) if "*" in names else set(names)
    plan.caches = {k: v for k, v in plan.caches.items() if k not in dropped}
    for step in plan.steps:
        step.caches = [c for c in step.caches if c not in dropped]


def _secret_names(plan: BuildPlan, env: Env, config: Config) -> list[str]:
    """Build variables (except RAILPACK_* options), railpack.json secrets and step-named secrets."""
    names = {n for n in env.secret_names() if not n.startswith("RAILPACK_")}
    names |= set(config.secrets) | set(plan.secrets)
    for step in plan.steps:
        names |= {s for s in step.secrets if s != "*"}
    return sorted(names)


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
    plan.steps = [s for s in plan.steps if s.name in keep]
    used = {c for s in plan.steps for c in s.caches}
    plan.caches = {k: v for k, v in sorted(plan.caches.items()) if k in used}


def _validate(plan: BuildPlan) -> None:
    """Catch references config can break: unknown steps, unknown caches, filtered first inputs."""
    names = {s.name for s in plan.steps}
    for step in plan.steps:
        if not step.inputs:
            raise PlanError(f"step {step.name!r} has no inputs")
        if step.inputs[0].include or step.inputs[0].exclude:
            raise PlanError(
                f"step {step.name!r}: the first input is the base filesystem and cannot have include/exclude"
            )
        for layer in step.inputs:
            if layer.step and layer.step not in names:
                raise PlanError(f"step {step.name!r} uses step {layer.step!r}, which does not exist")
        for cache in step.caches:
            if cache not in plan.caches:
                raise PlanError(f"step {step.name!r} uses cache {cache!r}, which is not defined in caches")
    for layer in [plan.deploy.base, *plan.deploy.inputs]:
        if layer.step and layer.step not in names:
            raise PlanError(f"deploy uses step {layer.step!r}, which does not exist")
