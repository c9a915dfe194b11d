"""Which build arguments a Dockerfile declares: only those receive an app's plain variables (as Railway does)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_DIRECTIVE = re.compile(r"#\s*escape\s*=\s*(\S)", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _escape_char(lines: list[str]) -> str:
    """The parser directive `# escape=`` ` changes the line-continuation character (only at the very top)."""
    for line in lines:
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        if m := _DIRECTIVE.fullmatch(stripped):
            return m.group(1)
    return "\\"


def _instructions(text: str) -> Iterable[str]:
    """Logical instructions: continuations joined, comments and blank lines dropped."""
    lines = text.splitlines()
    escape = _escape_char(lines)
    current: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue  # a comment inside a continued instruction is skipped, as BuildKit does
        if line.endswith(escape):
            current.append(line[: -len(escape)])
            continue
        current.append(line)
        yield " ".join(current)
        current = []
    if current:
        yield " ".join(current)


def declared_args(dockerfile_text: str) -> set[str]:
    """Every name an `ARG` instruction declares, in any stage or before the first `FROM`."""
    names: set[str] = set()
    for instruction in _instructions(dockerfile_text):
        keyword, _, rest = instruction.partition(" ")
        if keyword.upper() != "ARG":
            continue
        for token in rest.split():
            m = _NAME.match(token)
            if m and (len(m.group(0)) == len(token) or token[len(m.group(0))] == "="):
                names.add(m.group(0))
    return names


@dataclass(frozen=True)
class DockerfileVariables:
    """How an app's variables reach a Dockerfile build: build args, secret ids, and what to warn about."""

    build_args: dict[str, str]
    secrets: list[str]
    warnings: list[str]


def dockerfile_variables(
    dockerfile_text: str, plain: Mapping[str, str], secret_names: Iterable[str]
) -> DockerfileVariables:
    """Plain variables become build args for declared ARGs; secrets only reach `RUN --mount=type=secret`."""
    declared = declared_args(dockerfile_text)
    secrets = sorted(set(secret_names))
    warnings = [
        f"warning: {name} is a secret and is not passed as a build argument (ARG {name}); "
        f"read it in a RUN step with --mount=type=secret,id={name} (it is at /run/secrets/{name})"
        for name in secrets
        if name in declared
    ]
    build_args = {name: value for name, value in plain.items() if name in declared}
    return DockerfileVariables(build_args=build_args, secrets=secrets, warnings=warnings)
