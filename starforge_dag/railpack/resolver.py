"""Tool versions: what each provider asks for, where that request came from, and how it becomes a version.

Providers record a default and then override it from each version source in Railpack's
order (a later `version()` call wins), so the recorded source always names the file or
variable that decided. Turning a request such as `>=20 <23` or `^3.11` into an installable
version is a `VersionResolver`'s job: the offline one keeps the fuzzy version and lets mise
pick the newest match when the image is built; another resolver (one that asks mise's
registries, say) plugs in without any provider changing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

DEFAULT_SOURCE = "railpack default"


class VersionResolver(Protocol):
    """Turns a requested version of a tool into the version written to the image's mise config."""

    def resolve(self, name: str, requested: str, is_available: Callable[[str], bool] | None = None) -> str:
        """The version to install; raise ValueError when none can satisfy the request."""
        ...


class OfflineVersionResolver:
    """Resolves without the network: the request reduced to the fuzzy form mise understands."""

    def resolve(self, name: str, requested: str, is_available: Callable[[str], bool] | None = None) -> str:
        """`>=20 <23` → `20`, `^3.11` → `3`, `v1.2` → `1.2`, `14.x` → `14`, `*` → `latest`."""
        return fuzzy_version(requested)


def fuzzy_version(version: str) -> str:
    """Reduce an npm/pip-style constraint to the version prefix mise resolves to its newest match."""
    version = version.strip()
    if version in {"", "*"}:
        return "latest"
    if ">=" in version or "<" in version:
        parts = version.split()
        for i, part in enumerate(parts):
            if part.startswith(">="):
                value = part[2:] or (parts[i + 1] if i + 1 < len(parts) else "")
                return value.strip().split(".")[0]
    if version.startswith("^"):
        return version[1:].split(".")[0]
    version = version.removeprefix("~").removeprefix("v").replace(".x", "").replace(".*", "")
    return version.rstrip(".")


@dataclass
class RequestedPackage:
    """A tool a plan installs, the version asked for and the source that asked."""

    name: str
    version: str
    source: str = DEFAULT_SOURCE
    skip_mise_install: bool = False
    is_available: Callable[[str], bool] | None = None


@dataclass
class ResolvedPackage:
    """A requested package with the version the resolver chose."""

    name: str
    requested_version: str
    resolved_version: str
    source: str


class PackageRequests:
    """Every tool version requested while planning, in request order."""

    def __init__(self) -> None:
        self.packages: dict[str, RequestedPackage] = {}

    def default(self, name: str, version: str) -> str:
        """Request `name` at its default version (resetting any earlier request)."""
        self.packages[name] = RequestedPackage(name, version)
        return name

    def version(self, name: str, version: str, source: str) -> None:
        """Override the requested version; the last source to set it decides."""
        if name in self.packages:
            self.packages[name].version = version.strip()
            self.packages[name].source = source

    def get(self, name: str) -> RequestedPackage | None:
        """The request for `name`, if any."""
        return self.packages.get(name)

    def resolve(self, resolver: VersionResolver) -> dict[str, ResolvedPackage]:
        """Resolve every request; raises ValueError when a request cannot be satisfied."""
        return {
            name: ResolvedPackage(name, pkg.version, resolver.resolve(name, pkg.version, pkg.is_available), pkg.source)
            for name, pkg in self.packages.items()
        }


# Files mise reads tool versions from, highest precedence first within a directory.
MISE_CONFIG_FILES = (
    "mise.toml",
    ".mise.toml",
    "mise/config.toml",
    ".mise/config.toml",
    ".config/mise.toml",
    ".config/mise/config.toml",
)
TOOL_VERSIONS = ".tool-versions"
# Idiomatic version files per tool (the tools Railpack enables them for).
IDIOMATIC_FILES: dict[str, tuple[str, ...]] = {
    "python": (".python-version", ".python-versions"),
    "node": (".nvmrc", ".node-version"),
    "ruby": (".ruby-version", "Gemfile"),
    "elixir": (".exenv-version",),
    "go": (".go-version",),
    "java": (".java-version", ".sdkmanrc"),
    "yarn": (".yvmrc",),
    "bun": (".bun-version",),
    "deno": (".deno-version",),
    "dotnet": ("global.json",),
    "rust": ("rust-toolchain.toml", "rust-toolchain"),
}
# Every file that can set a version: copied into the mise step so the build sees the same config.
SUPPORTING_MISE_FILES = (
    *MISE_CONFIG_FILES,
    TOOL_VERSIONS,
    *(f for files in IDIOMATIC_FILES.values() for f in files if f != "rust-toolchain"),
)
MISE_CONFIG_GLOBS = ("mise.*.toml", ".mise.*.toml", ".config/mise/conf.d/*.toml")

_GEMFILE_RUBY = re.compile(r"""^\s*ruby\s+['"]([^'"]+)['"]""", re.MULTILINE)


def idiomatic_version(tool: str, filename: str, text: str) -> str | None:
    """The version an idiomatic file asks for, read the way mise's plugin for `tool` reads it."""
    if filename == "Gemfile":
        match = _GEMFILE_RUBY.search(text)
        return match.group(1) if match else None
    if filename == "global.json":
        import json

        try:
            sdk = json.loads(text).get("sdk") or {}
        except (ValueError, AttributeError):
            return None
        return sdk.get("version") if isinstance(sdk, dict) else None
    if filename.startswith("rust-toolchain"):
        match = re.search(r"""channel\s*=\s*['"]([^'"]+)['"]""", text)
        return match.group(1) if match else (text.strip() or None)
    if filename == ".sdkmanrc":
        match = re.search(r"^\s*java\s*=\s*(\S+)", text, re.MULTILINE)
        return match.group(1) if match else None
    lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    first = next((ln for ln in lines if ln), None)
    if first is None:
        return None
    if tool == "node":
        first = first.removeprefix("v")
        if first.startswith("lts/"):
            return "lts"
    if tool == "python":
        first = first.removeprefix("python-")
    return first
