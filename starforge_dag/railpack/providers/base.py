"""What every language provider shares: the planning context and the provider's result."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from starforge_dag.railpack.config import Config, Env
from starforge_dag.railpack.context import GenerateContext, local_layer, step_layer
from starforge_dag.railpack.plan import BuildPlan, Cache, Command, CopyCommand, ExecCommand, Layer, PathCommand
from starforge_dag.railpack.source import SourceTree


@dataclass
class ResolvedPackage:
    """A runtime or tool version the plan asks mise for, and where that version came from."""

    name: str
    requested_version: str
    source: str


@dataclass
class Context:
    """The view of planning that providers planning through `ProviderPlan` use."""

    app: SourceTree
    env: Env
    config: Config
    packages: dict[str, ResolvedPackage] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def resolve(self, name: str, default: str, *candidates: tuple[str | None, str]) -> str:
        """Pick the first non-empty candidate version (value, source) or the default, and record it."""
        for value, source in candidates:
            if value:
                version = value.strip()
                break
        else:
            version, source = default, "default"
        self.packages[name] = ResolvedPackage(name, version, source)
        return version

    def env_version(self, name: str) -> tuple[str | None, str]:
        """The RAILPACK_<NAME>_VERSION candidate."""
        var = f"RAILPACK_{name.upper()}_VERSION"
        return self.env.get(var), var

    def mise_version(self, tool: str) -> tuple[str | None, str]:
        """The version pinned for `tool` in mise.toml or .tool-versions."""
        mise = self.app.read_toml("mise.toml")
        if mise and isinstance(mise.get("tools"), dict) and tool in mise["tools"]:
            value = mise["tools"][tool]
            if isinstance(value, dict):
                value = value.get("version")
            if isinstance(value, list):
                value = value[0] if value else None
            return (str(value) if value else None), "mise.toml"
        text = self.app.read_text(".tool-versions")
        if text:
            for line in text.splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[0] == tool:
                    return parts[1], ".tool-versions"
        return None, "mise"

    def version_file(self, rel: str) -> tuple[str | None, str]:
        """The first line of a version file such as .nvmrc."""
        text = self.app.read_text(rel)
        if not text:
            return None, rel
        line = text.strip().splitlines()[0].strip() if text.strip() else ""
        return (line or None), rel

    def warn(self, message: str) -> None:
        """Record a warning for the info object."""
        self.warnings.append(message)


@dataclass
class ProviderPlan:
    """A provider's contribution; generate.py turns it into Railpack's step layout.

    Steps produced: `packages:mise` (when packages are needed), `install`, `build`, then the
    deploy image from the runtime base plus `deploy_inputs` (default: the built app dir).
    """

    packages: dict[str, str] = field(default_factory=dict)
    runtime_packages: bool = True
    build_apt: list[str] = field(default_factory=list)
    deploy_apt: list[str] = field(default_factory=list)
    caches: dict[str, Cache] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    install: list[Command] = field(default_factory=list)
    install_caches: list[str] = field(default_factory=list)
    install_needs_source: bool = False
    build: list[Command] = field(default_factory=list)
    build_caches: list[str] = field(default_factory=list)
    build_assets: dict[str, str] = field(default_factory=dict)
    start_command: str | None = None
    deploy_inputs: list[Layer] | None = None
    deploy_variables: dict[str, str] = field(default_factory=dict)
    step_image: str | None = None
    deploy_base: Layer | None = None


class Provider(Protocol):
    """A language provider: the first one whose `detect` is true plans the app."""

    name: str
    looked_for: str

    def detect(self, ctx: GenerateContext) -> bool:
        """True when the app is of this provider's language."""
        ...

    def initialize(self, ctx: GenerateContext) -> None:
        """Read what planning needs once the provider is chosen."""
        ...

    def plan(self, ctx: GenerateContext) -> None:
        """Add the steps that install, build and start the app."""
        ...

    def cleanse_plan(self, plan: BuildPlan) -> None:
        """Fix up the finished plan (after the user's config is applied)."""
        ...

    def start_command_help(self) -> str:
        """How a user of this language sets a start command when none is found."""
        ...


class BaseProvider:
    """Defaults for the optional parts of a provider."""

    name = ""
    looked_for = ""

    def initialize(self, ctx: GenerateContext) -> None:
        """Nothing to read ahead."""

    def cleanse_plan(self, plan: BuildPlan) -> None:
        """Nothing to fix up."""

    def start_command_help(self) -> str:
        """No provider-specific help."""
        return ""


class StepLayoutProvider(BaseProvider):
    """A provider that describes its build as one `ProviderPlan`: mise packages, install, build, deploy."""

    def detect_app(self, ctx: Context) -> bool:
        """True when the app is of this provider's language."""
        raise NotImplementedError

    def plan_app(self, ctx: Context) -> ProviderPlan:
        """The provider's install, build and start."""
        raise NotImplementedError

    def detect(self, ctx: GenerateContext) -> bool:
        """Detect through the step-layout view."""
        return self.detect_app(_view(ctx))

    def plan(self, ctx: GenerateContext) -> None:
        """Lay the ProviderPlan out as Railpack's steps."""
        view = _view(ctx)
        pp = self.plan_app(view)
        lay_out(ctx, view, pp)


def _view(ctx: GenerateContext) -> Context:
    return Context(app=ctx.source, env=ctx.env, config=ctx.config)


def lay_out(ctx: GenerateContext, view: Context, pp: ProviderPlan) -> None:
    """`packages:mise` → `install` → `build` → deploy, from a ProviderPlan."""
    ctx.metadata.update(view.metadata)
    ctx.warnings += view.warnings
    mise = ctx.mise
    for name, version in pp.packages.items():
        mise.default(name, version)
        known = view.packages.get(name.split(":")[-1])
        if known:
            mise.version(name, known.requested_version, known.source)
    for name, known in view.packages.items():
        if ctx.requests.get(name) is None and not any(p.split(":")[-1] == name for p in pp.packages):
            ctx.requests.default(name, known.requested_version)
            ctx.requests.version(name, known.requested_version, known.source)
    mise.apt_packages += pp.build_apt
    ctx.deploy.apt_packages += pp.deploy_apt
    for cache_name, cache in pp.caches.items():
        ctx.caches.caches[cache_name] = cache
    base = Layer(image=pp.step_image) if pp.step_image else Layer(step=mise.name)
    build_base = base
    if pp.install:
        install = ctx.new_command_step("install")
        install.add_input(base)
        if pp.install_needs_source:
            install.add_input(local_layer())
        install.add(*pp.install)
        install.caches = list(pp.install_caches)
        install.variables = dict(pp.variables)
        build_base = Layer(step="install")
    build = ctx.new_command_step("build")
    build.add_input(build_base)
    build.add_input(local_layer())
    build.add(*pp.build)
    build.caches = list(pp.build_caches)
    build.assets = dict(pp.build_assets)
    build.variables = {} if pp.install else dict(pp.variables)
    if pp.deploy_base is not None:
        ctx.deploy.base = pp.deploy_base
    inputs: list[Layer] = []
    if pp.runtime_packages:
        inputs.append(mise.layer())
    if pp.deploy_inputs is not None:
        inputs += pp.deploy_inputs
    elif pp.deploy_base is None:
        inputs.append(step_layer("build", include=["."]))
    ctx.deploy.inputs += inputs
    ctx.deploy.start_command = pp.start_command
    ctx.deploy.variables.update(pp.deploy_variables)
    ctx.deploy.paths += [p for p in pp.paths if p not in ctx.deploy.paths]


def sh(cmd: str, name: str | None = None) -> ExecCommand:
    """A shell command."""
    return ExecCommand(cmd=cmd, custom_name=name)


def copy(*paths: str) -> list[Command]:
    """Copy files from the source into the same path in /app."""
    return [CopyCommand(src=p, dest=p) for p in paths]


def path(directory: str) -> PathCommand:
    """Prepend a directory to PATH."""
    return PathCommand(path=directory)


def build_layer(*include: str, exclude: list[str] | None = None) -> Layer:
    """The `build` step's output, filtered."""
    return Layer(step="build", include=list(include), exclude=exclude)


_VERSION = re.compile(r"(\d+(?:\.\d+){0,2})")


def loose_version(spec: str | None) -> str | None:
    """The first version number in a constraint such as `>=18 <21`, `^3.11` or `~> 1.15`."""
    if not spec:
        return None
    match = _VERSION.search(spec)
    return match.group(1) if match else None
