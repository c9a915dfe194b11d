"""What every language provider shares: the planning context and the provider's result."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from starforge_dag.railpack.app import App
from starforge_dag.railpack.config import Config, Env
from starforge_dag.railpack.plan import Cache, Command, CopyCommand, ExecCommand, Layer, PathCommand


@dataclass
class ResolvedPackage:
    """A runtime or tool version the plan asks mise for, and where that version came from."""

    name: str
    requested_version: str
    source: str


@dataclass
class Context:
    """The app, its configuration and what planning has learned so far."""

    app: App
    env: Env
    config: Config
    packages: dict[str, ResolvedPackage] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def resolve(self, name: str, default: str, *candidates: tuple[str | None, str]) -> str:
        """Pick the first non-empty candidate version (value, source) or the default, and record it."""
        version, source = next(((value.strip(), source) for value, source in candidates if value), (default, "default"))
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

    def detect(self, ctx: Context) -> bool:
        """True when the app is of this provider's language."""
        ...

    def plan(self, ctx: Context) -> ProviderPlan:
        """Install, build and start the app."""
        ...

    def start_command_help(self) -> str:
        """How a user of this language sets a start command when none is found."""
        ...


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
