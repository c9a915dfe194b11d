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
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError

from starforge_dag.railpack.plan import Cache, Command, ExecCommand, LayerInput, _Model

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
    paths: list[str] = Field(default_factory=list)
    apt_packages: list[str] = Field(default_factory=list)


class Config(_Model):
    """The root of railpack.json."""

    model_config = ConfigDict(extra="ignore")

    provider: str | None = None
    build_apt_packages: list[str] = Field(default_factory=list)
    packages: dict[str, str] = Field(default_factory=dict)
    caches: dict[str, Cache] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list)
    steps: dict[str, StepConfig] = Field(default_factory=dict)
    deploy: DeployConfig = Field(default_factory=DeployConfig)


class Env:
    """The build's environment variables, with Railpack's helpers for RAILPACK_* options."""

    def __init__(self, variables: dict[str, str] | None = None) -> None:
        self.variables = dict(variables or {})

    def get(self, name: str) -> str | None:
        """A variable's value, or None when unset or empty."""
        value = self.variables.get(name)
        return value if value else None

    def railpack(self, name: str) -> str | None:
        """RAILPACK_<name>."""
        return self.get(f"RAILPACK_{name}")

    def railpack_list(self, name: str) -> list[str]:
        """RAILPACK_<name> as a space-separated list."""
        return (self.railpack(name) or "").split()

    def is_truthy(self, name: str) -> bool:
        """RAILPACK_<name> set to 1/true/yes."""
        return (self.railpack(name) or "").lower() in {"1", "true", "yes"}

    def secret_names(self) -> list[str]:
        """Names of the variables given to the build: available to commands as secrets, never stored."""
        return sorted(self.variables)


def strip_jsonc(text: str) -> str:
    """Remove // and /* */ comments and trailing commas outside strings, so json can parse it."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch in "}]":
            k = len(out) - 1
            while k >= 0 and out[k].isspace():
                k -= 1
            if k >= 0 and out[k] == ",":
                del out[k]
            out.append(ch)
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


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


def config_from_env(env: Env) -> Config:
    """The parts of a Config that RAILPACK_* variables set; they win over railpack.json."""
    config = Config()
    if cmd := env.railpack("INSTALL_CMD"):
        config.steps["install"] = StepConfig(commands=[ExecCommand(cmd=cmd)])
    if cmd := env.railpack("BUILD_CMD"):
        config.steps["build"] = StepConfig(commands=[ExecCommand(cmd=cmd)])
    if cmd := env.railpack("START_CMD"):
        config.deploy.start_command = cmd
    for spec in env.railpack_list("PACKAGES"):
        name, _, version = spec.partition("@")
        config.packages[name] = version or "latest"
    config.build_apt_packages = env.railpack_list("BUILD_APT_PACKAGES")
    config.deploy.apt_packages = env.railpack_list("DEPLOY_APT_PACKAGES")
    return config
