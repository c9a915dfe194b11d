"""User configuration: `railpack.json` (comments and trailing commas allowed) and `RAILPACK_*` variables.

Variables read here, as in Railpack: RAILPACK_BUILD_CMD, RAILPACK_INSTALL_CMD,
RAILPACK_START_CMD, RAILPACK_PACKAGES, RAILPACK_BUILD_APT_PACKAGES,
RAILPACK_DEPLOY_APT_PACKAGES, RAILPACK_DISABLE_CACHES, RAILPACK_CONFIG_FILE. Providers
read their own (RAILPACK_NODE_VERSION, RAILPACK_GO_BIN, ...) through `Env`.

Two options are Starforge's own, since Railpack's images cannot be pulled here:
RAILPACK_BUILDER_IMAGE and RAILPACK_RUNTIME_IMAGE replace the builder and runtime base
images in the plan.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError

from starforge_dag.railpack.plan import Cache, Command, CopyCommand, ExecCommand, LayerInput, _Model, shell_command
from starforge_dag.railpack.source import strip_jsonc

DEFAULT_BUILDER_IMAGE = "ghcr.io/railwayapp/railpack-builder:latest"
DEFAULT_RUNTIME_IMAGE = "ghcr.io/railwayapp/railpack-runtime:latest"
CONFIG_FILE = "railpack.json"


class ConfigError(ValueError):
    """The user's configuration cannot be read; the message says where and why."""


class OutputFilter(_Model):
    """Which part of a step's /app goes into the image; a plain string is one include path."""

    include: list[str] | None = None
    exclude: list[str] | None = None


def _parse_output(value: Any) -> Any:
    return {"include": [value]} if isinstance(value, str) else value


class StepConfig(_Model):
    """A step as written in railpack.json; `...` in lists keeps the generated items there."""

    inputs: list[LayerInput] | None = None
    commands: list[Command] | None = None
    secrets: list[str] | None = None
    assets: dict[str, str] = Field(default_factory=dict)
    variables: dict[str, str] = Field(default_factory=dict)
    caches: list[str] | None = None
    deploy_outputs: list[Annotated[OutputFilter, BeforeValidator(_parse_output)]] | None = None


class DeployConfig(_Model):
    """The deploy section of railpack.json."""

    base: LayerInput | None = None
    inputs: list[LayerInput] | None = None
    start_command: str | None = None
    variables: dict[str, str] = Field(default_factory=dict)
    paths: list[str] | None = None
    apt_packages: list[str] | None = None


class Config(_Model):
    """The root of railpack.json."""

    model_config = ConfigDict(extra="ignore")

    provider: str | None = None
    build_apt_packages: list[str] | None = None
    packages: dict[str, str] = Field(default_factory=dict)
    caches: dict[str, Cache] = Field(default_factory=dict)
    secrets: list[str] | None = None
    steps: dict[str, StepConfig] = Field(default_factory=dict)
    deploy: DeployConfig = Field(default_factory=DeployConfig)
    exclude: list[str] = Field(default_factory=list)


RAILPACK_PREFIX = "RAILPACK_"


def railpack_options(environ: Mapping[str, str]) -> dict[str, str]:
    """The RAILPACK_* options of a process environment: the only variables a plan reads from the host."""
    return {k: v for k, v in environ.items() if k.startswith(RAILPACK_PREFIX)}


class Env:
    """The build's environment variables, with Railpack's helpers for RAILPACK_* options."""

    def __init__(self, variables: dict[str, str] | None = None) -> None:
        self.variables = dict(variables or {})

    def get(self, name: str) -> str | None:
        """A variable's value, or None when unset or empty."""
        value = self.variables.get(name)
        return value if value else None

    def railpack(self, name: str) -> str | None:
        """RAILPACK_<name>, trimmed; None when unset or blank."""
        value = (self.variables.get(f"{RAILPACK_PREFIX}{name}") or "").strip()
        return value or None

    def railpack_list(self, name: str) -> list[str]:
        """RAILPACK_<name> as a space-separated list."""
        return (self.railpack(name) or "").split()

    def is_truthy(self, name: str) -> bool:
        """RAILPACK_<name> set to 1 or true."""
        return (self.railpack(name) or "").lower() in {"1", "true"}

    def names_with_prefix(self, prefix: str) -> list[str]:
        """Variables whose names start with `prefix` (secrets a step may use)."""
        return sorted(n for n in self.variables if n.startswith(prefix))

    def secret_names(self) -> list[str]:
        """Names of the variables given to the build: available to commands as secrets, never stored."""
        return sorted(self.variables)


def parse_config(text: str, source: str = CONFIG_FILE) -> Config:
    """Parse railpack.json text into a Config, naming the file in any error."""
    try:
        data: Any = json.loads(strip_jsonc(text))
    except ValueError as exc:
        raise ConfigError(f"{source} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a JSON object")
    data.pop("$schema", None)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source} is invalid: {exc}") from exc


def _command_step(cmd: str) -> StepConfig:
    """RAILPACK_INSTALL_CMD / RAILPACK_BUILD_CMD: the whole source, then the command in a shell."""
    return StepConfig(commands=[CopyCommand(src=".", dest="."), ExecCommand(cmd=shell_command(cmd), custom_name=cmd)])


def config_from_env(env: Env) -> Config:
    """The parts of a Config that RAILPACK_* variables set; railpack.json overrides them field by field."""
    config = Config()
    if cmd := env.railpack("INSTALL_CMD"):
        config.steps["install"] = _command_step(cmd)
    if cmd := env.railpack("BUILD_CMD"):
        config.steps["build"] = _command_step(cmd)
    if cmd := env.railpack("START_CMD"):
        config.deploy.start_command = cmd
    for spec in env.railpack_list("PACKAGES"):
        name, _, version = spec.partition("@")
        config.packages[name] = version or "latest"
    config.build_apt_packages = env.railpack_list("BUILD_APT_PACKAGES") or None
    config.deploy.apt_packages = env.railpack_list("DEPLOY_APT_PACKAGES") or None
    config.secrets = sorted(env.variables)
    return config


def merge_configs(base: Config, over: Config) -> Config:
    """Overlay `over` on `base` as Railpack merges configs: set fields win, maps merge, lists replace."""
    merged = base.model_copy(deep=True)
    for name in type(over).model_fields:
        value = getattr(over, name)
        if name == "steps":
            for step_name, step in value.items():
                current = merged.steps.get(step_name)
                merged.steps[step_name] = _merge_model(current, step) if current else step.model_copy(deep=True)
        elif name == "deploy":
            merged.deploy = _merge_model(merged.deploy, value)
        elif isinstance(value, dict):
            setattr(merged, name, {**getattr(merged, name), **value})
        elif value is not None:
            setattr(merged, name, value)
    merged.secrets = list(dict.fromkeys([*(base.secrets or []), *(merged.secrets or [])])) or None
    return merged


def _merge_model(base: Any, over: Any) -> Any:
    merged = base.model_copy(deep=True)
    for name in type(over).model_fields:
        value = getattr(over, name)
        if isinstance(value, dict):
            setattr(merged, name, {**getattr(merged, name), **value})
        elif value is not None and value != "":
            setattr(merged, name, value)
    return merged
