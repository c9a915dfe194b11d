"""The planning context and its step builders: what providers add steps, caches and deploy inputs to.

A provider never writes plan JSON itself. It asks the context for step builders (the
shared `packages:mise` step, command steps such as `install` and `build`, binary-install
steps such as `packages:caddy`) and fills them in; the context then applies the user's
config, resolves tool versions and builds the plan in the order the steps were created,
as Railpack does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from starforge_dag.railpack.config import Config, Env
from starforge_dag.railpack.plan import (
    BuildPlan,
    Cache,
    Command,
    CopyCommand,
    ExecCommand,
    FileCommand,
    Layer,
    PathCommand,
    Step,
)
from starforge_dag.railpack.resolver import (
    IDIOMATIC_FILES,
    MISE_CONFIG_FILES,
    MISE_CONFIG_GLOBS,
    SUPPORTING_MISE_FILES,
    TOOL_VERSIONS,
    OfflineVersionResolver,
    PackageRequests,
    ResolvedPackage,
    VersionResolver,
    idiomatic_version,
)
from starforge_dag.railpack.source import SourceTree

DEFAULT_BUILDER_IMAGE = "ghcr.io/railwayapp/railpack-builder:latest"
DEFAULT_RUNTIME_IMAGE = "ghcr.io/railwayapp/railpack-runtime:latest"
MISE_STEP = "packages:mise"
MISE_CONFIG = "/etc/mise/config.toml"
MISE_ASSET = "generated-mise-toml"
MISE_OUTPUT_PATHS = ["/mise/shims", "/mise/installs", "/usr/local/bin/mise", MISE_CONFIG, "/root/.local/state/mise"]
MISE_VARIABLES = {
    "MISE_DATA_DIR": "/mise",
    "MISE_CONFIG_DIR": "/mise",
    "MISE_CACHE_DIR": "/mise/cache",
    "MISE_SHIMS_DIR": "/mise/shims",
    "MISE_INSTALLS_DIR": "/mise/installs",
}
IDIOMATIC_TOOLS = ["python", "node", "ruby", "elixir", "go", "java", "yarn", "bun", "deno", "dotnet", "rust"]
BIN_DIR = "/railpack"


def local_layer() -> Layer:
    """The app's source files."""
    return Layer(local=True, include=["."])


def step_layer(name: str, include: list[str] | None = None, exclude: list[str] | None = None) -> Layer:
    """A step's output, optionally filtered."""
    return Layer(step=name, include=include, exclude=exclude)


def sh(cmd: str, name: str | None = None) -> ExecCommand:
    """A command Railpack wraps in `sh -c '…'` (its custom name defaults to the bare command)."""
    return ExecCommand(cmd=f"sh -c '{cmd}'", custom_name=name or cmd)


def run(cmd: str, name: str | None = None) -> ExecCommand:
    """A command run as is."""
    return ExecCommand(cmd=cmd, custom_name=name)


def copy(src: str, dest: str | None = None) -> CopyCommand:
    """Copy from the source into /app."""
    return CopyCommand(src=src, dest=dest or src)


def apt_install(packages: list[str]) -> ExecCommand:
    """Railpack's apt install command: sorted, deduplicated, in one shell."""
    pkgs = " ".join(sorted(set(packages)))
    return ExecCommand(
        cmd=f"sh -c 'apt-get update && apt-get install -y {pkgs}'", custom_name=f"install apt packages: {pkgs}"
    )


def apt_step(plan: BuildPlan, ctx: GenerateContext, name: str, packages: list[str], base: Layer) -> Layer:
    """Add an apt install step on `base` when there are packages; the layer the next step builds on."""
    if not packages:
        return base
    plan.steps.append(
        Step(name=name, inputs=[base], commands=[apt_install(packages)], caches=ctx.caches.apt(), secrets=[])
    )
    return Layer(step=name)


# System libraries Playwright's browsers load at runtime (node and python apps alike).
PLAYWRIGHT_DEPS = [
    "libasound2",
    "libatk-bridge2.0-0",
    "libatk1.0-0",
    "libatspi2.0-0",
    "libcairo2",
    "libcups2",
    "libdbus-1-3",
    "libdrm2",
    "libgbm1",
    "libglib2.0-0",
    "libnspr4",
    "libnss3",
    "libpango-1.0-0",
    "libx11-6",
    "libxcb1",
    "libxcomposite1",
    "libxdamage1",
    "libxext6",
    "libxfixes3",
    "libxkbcommon0",
    "libxrandr2",
]


class CacheContext:
    """Named BuildKit cache mounts; a step refers to them by name."""

    def __init__(self) -> None:
        self.caches: dict[str, Cache] = {}

    def add(self, name: str, directory: str, locked: bool = False) -> str:
        """Define a cache and return its (sanitised) name."""
        key = name.lstrip("/").rstrip("/").replace("/", "-") if name else name
        self.caches[key] = Cache(directory=directory, type="locked" if locked else "shared")
        return key

    def apt(self) -> list[str]:
        """The apt archive and list caches, defined on first use."""
        self.caches.setdefault("apt", Cache(directory="/var/cache/apt", type="locked"))
        self.caches.setdefault("apt-lists", Cache(directory="/var/lib/apt/lists", type="locked"))
        return ["apt", "apt-lists"]


class StepBuilder(Protocol):
    """Anything that adds steps to the plan."""

    name: str

    def build(self, plan: BuildPlan, ctx: GenerateContext, resolved: dict[str, ResolvedPackage]) -> None:
        """Append this builder's steps to the plan."""
        ...


@dataclass
class CommandStepBuilder:
    """A step of commands run on its inputs' filesystem."""

    name: str
    env: Env
    inputs: list[Layer] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    assets: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    caches: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=lambda: ["*"])

    def add_input(self, layer: Layer) -> None:
        """Add a filesystem input (the first is the base)."""
        self.inputs.append(layer)

    def add(self, *commands: Command) -> None:
        """Append commands."""
        self.commands.extend(commands)

    def add_paths(self, *paths: str) -> None:
        """Prepend directories to PATH for later commands."""
        self.commands.extend(PathCommand(path=p) for p in paths)

    def add_cache(self, name: str) -> None:
        """Mount a cache defined in the context."""
        self.caches.append(name)

    def use_secrets_with_prefixes(self, *prefixes: str) -> None:
        """Give the step the build variables whose names start with any prefix."""
        for prefix in prefixes:
            self.secrets.extend(self.env.names_with_prefix(prefix))

    def use_secrets(self, secrets: list[str]) -> None:
        """Give the step these secrets, in CI builds only (as Railpack does)."""
        if self.env.get("CI"):
            self.secrets.extend(secrets)

    def build(self, plan: BuildPlan, ctx: GenerateContext, resolved: dict[str, ResolvedPackage]) -> None:
        """One step, as configured."""
        plan.steps.append(
            Step(
                name=self.name,
                inputs=list(self.inputs),
                commands=list(self.commands),
                assets=dict(self.assets),
                variables=dict(self.variables),
                caches=list(self.caches),
                secrets=list(self.secrets),
            )
        )


class ToolRequests:
    """What a step builder that installs tools shares: each tool is requested once, its version resolved for the plan."""

    ctx: GenerateContext
    packages: list[str]

    def default(self, name: str, version: str) -> str:
        """Request a tool at its default version (the first request of a tool stands)."""
        if name not in self.packages:
            self.ctx.requests.default(name, version)
            self.packages.append(name)
        return name

    def version(self, name: str, version: str, source: str) -> None:
        """Override a tool's version from a named source."""
        self.ctx.requests.version(name, version, source)


class MiseStepBuilder(ToolRequests):
    """Installs tools with mise from a generated config, on the builder image (after build apt packages)."""

    def __init__(self, name: str, ctx: GenerateContext) -> None:
        self.name = name
        self.ctx = ctx
        self.packages: list[str] = []
        self.apt_packages: list[str] = []
        self.variables: dict[str, str] = {}
        self.settings: dict[str, Any] = {}
        self._supporting_files: list[str] | None = None

    def skip_mise_install(self, name: str) -> None:
        """Resolve the version for the record but let something else (corepack) install it."""
        if pkg := self.ctx.requests.get(name):
            pkg.skip_mise_install = True

    def add_apt_package(self, name: str) -> None:
        """An apt package installed on the builder before mise runs."""
        self.apt_packages.append(name)

    def add_setting(self, key: str, value: Any) -> None:
        """A [settings] entry of the generated mise config, dotted keys nesting one level."""
        head, _, tail = key.partition(".")
        if tail:
            self.settings.setdefault(head, {})[tail] = value
        else:
            self.settings[key] = value

    def use_mise_versions(self, tools: list[str]) -> None:
        """Versions the app's own mise config or idiomatic files pin win over everything set before."""
        pinned = app_mise_versions(self.ctx.source, tools)
        for tool in tools:
            if tool in pinned and tool in self.packages:
                version, source = pinned[tool]
                self.version(tool, version, source)

    def supporting_files(self) -> list[str]:
        """The app's mise config and version files, copied in so the build sees the same versions."""
        if self._supporting_files is None:
            source = self.ctx.source
            files = [f for f in SUPPORTING_MISE_FILES if source.has_file(f)]
            for pattern in MISE_CONFIG_GLOBS:
                files += source.find_files(pattern, max_depth=0)
            for f in list(files):
                if f.endswith(".toml"):
                    lock = f"{f.rsplit('/', 1)[0]}/mise.lock" if "/" in f else "mise.lock"
                    if source.has_file(lock):
                        files.append(lock)
            self._supporting_files = list(dict.fromkeys(files))
        return self._supporting_files

    def output_paths(self) -> list[str]:
        """What the runtime image needs of this step (nothing when mise installs nothing)."""
        if not self.packages and not self.supporting_files():
            return []
        return list(MISE_OUTPUT_PATHS)

    def layer(self) -> Layer:
        """This step's tools as a deploy input (empty, and dropped, when there are none)."""
        paths = self.output_paths()
        return step_layer(self.name, include=paths) if paths else Layer()

    def build(self, plan: BuildPlan, ctx: GenerateContext, resolved: dict[str, ResolvedPackage]) -> None:
        """`packages:apt:build` when needed, then the mise step."""
        base = Layer(image=ctx.builder_image)
        base = apt_step(plan, ctx, "packages:apt:build", self.apt_packages, base)
        step = Step(name=self.name, inputs=[base], secrets=[])
        files = self.supporting_files()
        if self.packages or files:
            step.commands.append(PathCommand(path="/mise/shims"))
            step.variables = {**MISE_VARIABLES, **self.variables}
            if verbose := ctx.env.get("MISE_VERBOSE"):
                step.variables["MISE_VERBOSE"] = verbose
            self.add_setting("node.verify", False)
            self.add_setting("paranoid", True)
            self.add_setting("trusted_config_paths", ["/app"])
            self.add_setting("idiomatic_version_file_enable_tools", IDIOMATIC_TOOLS)
            self.add_setting("minimum_release_age", "14d")
            step.commands += [CopyCommand(src=f, dest=f) for f in files]
            tools = {
                name: resolved[name].resolved_version
                for name in self.packages
                if name in resolved and not _skipped(ctx, name)
            }
            step.assets = {MISE_ASSET: mise_toml(tools, self.settings)}
            step.commands += [
                FileCommand(path=MISE_CONFIG, name=MISE_ASSET, custom_name="create mise config"),
                ExecCommand(cmd="mise install", custom_name="install mise packages: " + ", ".join(sorted(tools))),
            ]
        plan.steps.append(step)


def _skipped(ctx: GenerateContext, name: str) -> bool:
    pkg = ctx.requests.get(name)
    return bool(pkg and pkg.skip_mise_install)


class InstallBinStepBuilder:
    """Installs one tool's binary into /railpack/<tool> with mise, leaving mise itself behind."""

    def __init__(self, name: str, ctx: GenerateContext) -> None:
        self.name = name
        self.ctx = ctx
        self.package = ""

    def default(self, name: str, version: str) -> str:
        """The tool and its default version."""
        self.package = self.ctx.requests.default(name, version)
        return name

    def bin_path(self) -> str:
        """Where the tool is installed."""
        return f"{BIN_DIR}/{self.package}"

    def layer(self) -> Layer:
        """The installed tool as a deploy input."""
        return step_layer(self.name, include=[self.bin_path()])

    def build(self, plan: BuildPlan, ctx: GenerateContext, resolved: dict[str, ResolvedPackage]) -> None:
        """`mise install-into` the tool and put it on PATH."""
        version = resolved[self.package].resolved_version
        plan.steps.append(
            Step(
                name=self.name,
                inputs=[Layer(image=ctx.builder_image)],
                commands=[
                    ExecCommand(cmd=f"mise install-into {self.package}@{version} {self.bin_path()}"),
                    PathCommand(path=self.bin_path()),
                    PathCommand(path=f"{self.bin_path()}/bin"),
                ],
                variables={"MISE_PARANOID": "1"},
                secrets=[],
            )
        )


class ImageStepBuilder(ToolRequests):
    """A step whose base is an image chosen once versions are resolved (PHP's FrankenPHP image)."""

    def __init__(self, name: str, ctx: GenerateContext, image: Any) -> None:
        self.name = name
        self.ctx = ctx
        self.image = image
        self.packages: list[str] = []
        self.apt_packages: list[str] = []

    def build(self, plan: BuildPlan, ctx: GenerateContext, resolved: dict[str, ResolvedPackage]) -> None:
        """The image, with apt packages installed on it when asked."""
        step = Step(name=self.name, inputs=[Layer(image=self.image(resolved))], secrets=[])
        if self.apt_packages:
            step.commands = [apt_install(self.apt_packages)]
        plan.steps.append(step)


@dataclass
class DeployBuilder:
    """The deploy image: base, inputs, start command, variables, PATH entries, runtime apt packages."""

    base: Layer
    inputs: list[Layer] = field(default_factory=list)
    start_command: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    apt_packages: list[str] = field(default_factory=list)

    def has_input_for_step(self, name: str) -> bool:
        """True when a deploy input comes from the step."""
        return any(layer.step == name for layer in self.inputs)

    def has_include_for_step(self, name: str, path: str) -> bool:
        """True when the step's output at `path` (or all of it) is already deployed."""
        return any(
            layer.step == name and any(inc in {path, "."} for inc in layer.include or []) for layer in self.inputs
        )

    def build(self, plan: BuildPlan, ctx: GenerateContext) -> None:
        """`packages:apt:runtime` when needed, then the deploy section."""
        base = self.base
        base = apt_step(plan, ctx, "packages:apt:runtime", self.apt_packages, base)
        plan.deploy.base = base
        plan.deploy.inputs = list(self.inputs)
        plan.deploy.start_command = self.start_command or None
        plan.deploy.variables = dict(self.variables)
        plan.deploy.paths = list(self.paths)


class GenerateContext:
    """The app, its config, and the plan being assembled."""

    def __init__(self, source: SourceTree, env: Env, config: Config, builder_image: str, runtime_image: str) -> None:
        self.source = source
        self.env = env
        self.config = config
        self.builder_image = builder_image
        self.runtime_image = runtime_image
        self.steps: list[Any] = []
        self.deploy = DeployBuilder(base=Layer(image=runtime_image))
        self.caches = CacheContext()
        self.secrets: list[str] = []
        self.metadata: dict[str, str] = {}
        self.requests = PackageRequests()
        self.resolver: VersionResolver = OfflineVersionResolver()
        self.warnings: list[str] = []
        self.infos: list[str] = []
        self._mise: MiseStepBuilder | None = None
        self.apply_config_packages()

    @property
    def mise(self) -> MiseStepBuilder:
        """The shared `packages:mise` step, created on first use."""
        if self._mise is None:
            self._mise = MiseStepBuilder(MISE_STEP, self)
            self.steps.append(self._mise)
        return self._mise

    def new_mise_step(self, name: str) -> MiseStepBuilder:
        """Another mise step (a slimmer runtime toolset, for instance)."""
        step = MiseStepBuilder(name, self)
        self.steps.append(step)
        return step

    def new_command_step(self, name: str) -> CommandStepBuilder:
        """A command step; one of the same name is replaced."""
        self.steps = [s for s in self.steps if s.name != name]
        step = CommandStepBuilder(name=name, env=self.env)
        self.steps.append(step)
        return step

    def new_install_bin_step(self, name: str) -> InstallBinStepBuilder:
        """A step that installs one binary tool."""
        step = InstallBinStepBuilder(name, self)
        self.steps.append(step)
        return step

    def new_image_step(self, name: str, image: Any) -> ImageStepBuilder:
        """A step whose image depends on resolved versions."""
        step = ImageStepBuilder(name, self, image)
        self.steps.append(step)
        return step

    def step(self, name: str) -> Any:
        """The step builder called `name`, if any."""
        return next((s for s in self.steps if s.name == name), None)

    def set_metadata(self, key: str, value: str | bool | None) -> None:
        """Record a fact about the app (empty and false values are not recorded)."""
        if value is True:
            self.metadata[key] = "true"
        elif isinstance(value, str) and value:
            self.metadata[key] = value

    def warn(self, message: str) -> None:
        """A warning shown with the plan."""
        self.warnings.append(message)

    def info(self, message: str) -> None:
        """A note on what planning decided."""
        self.infos.append(message)

    def apply_config_packages(self) -> None:
        """railpack.json/RAILPACK_PACKAGES tools seed the mise step; providers' sources can still override."""
        for name in sorted(self.config.packages):
            version = self.config.packages[name]
            self.mise.default(name, version)
            self.mise.version(name, version, "custom config")

    def render_template(self, candidates: list[str], default: str, data: dict[str, Any]) -> tuple[str | None, str]:
        """The first of the app's template files that exists (else `default`), with `data` substituted."""
        found = self.source.read_first(*candidates)
        name, text = found if found else (None, default)
        return name, render_template(text, data)


def render_template(text: str, data: dict[str, Any]) -> str:
    """Substitute `{{.NAME}}` and keep `{{if .FLAG}}…{{end}}` blocks only when FLAG is true (Caddyfile templates)."""
    import re

    def conditional(match: re.Match[str]) -> str:
        return match.group(2) if data.get(match.group(1)) else ""

    text = re.sub(r"\{\{\s*if\s+\.(\w+)\s*\}\}(.*?)\{\{\s*end\s*\}\}", conditional, text, flags=re.DOTALL)
    return re.sub(r"\{\{\s*\.(\w+)\s*\}\}", lambda m: str(data.get(m.group(1), "")), text)


def mise_toml(tools: dict[str, str], settings: dict[str, Any]) -> str:
    """The generated mise config: [settings] then [tools]."""
    lines = ["[settings]"]
    nested = {k: v for k, v in sorted(settings.items()) if isinstance(v, dict)}
    lines += [f"  {k} = {_toml_value(v)}" for k, v in sorted(settings.items()) if not isinstance(v, dict)]
    for section, values in nested.items():
        lines += ["", f"  [settings.{section}]"] + [f"    {k} = {_toml_value(v)}" for k, v in sorted(values.items())]
    lines += ["", "[tools]"] + [f"  {_toml_key(k)} = {_toml_value(v)}" for k, v in sorted(tools.items())]
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def app_mise_versions(source: SourceTree, tools: list[str]) -> dict[str, tuple[str, str]]:
    """Versions the app pins for `tools` in its own mise config, .tool-versions or idiomatic version files."""
    found: dict[str, tuple[str, str]] = {}
    for tool in tools:
        for name in MISE_CONFIG_FILES:
            table = (source.read_toml(name) or {}).get("tools") if source.has_file(name) else None
            if isinstance(table, dict) and tool in table:
                value = table[tool]
                value = value.get("version") if isinstance(value, dict) else value
                value = value[0] if isinstance(value, list) and value else value
                if isinstance(value, str | int | float) and str(value):
                    found[tool] = (str(value), "mise.toml")
                    break
        if tool in found:
            continue
        text = source.read_text(TOOL_VERSIONS) if source.has_file(TOOL_VERSIONS) else None
        for line in (text or "").splitlines():
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 2 and parts[0] == tool:
                found[tool] = (parts[1], ".tool-versions")
                break
        if tool in found:
            continue
        for name in IDIOMATIC_FILES.get(tool, ()):
            text = source.read_text(name) if source.has_file(name) else None
            version = idiomatic_version(tool, name, text) if text else None
            if version:
                found[tool] = (version, "idiomatic-version-file")
                break
    return found
