"""What a variable may be called and hold; each refusal names the rule it broke and nothing is written."""

from __future__ import annotations

import re

from ..core.inputs import InvalidInput

NAME_RULE = "[A-Za-z_][A-Za-z0-9_]*"
MAX_NAME_CHARS = 256
MAX_VALUE_BYTES = 64 * 1024
MAX_PER_SCOPE = 500
RESERVED_PREFIXES = ("STARFORGE_", "DAGSTER_")
_NAME = re.compile(NAME_RULE)


class InvalidVariable(InvalidInput):
    """A variable name or value that breaks a rule."""


class TooManyVariables(InvalidInput):
    """An app or workspace already holds as many variables as it may."""


def check_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidVariable("variable name is empty")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidVariable(f"variable name is longer than {MAX_NAME_CHARS} characters")
    if not _NAME.fullmatch(name):
        raise InvalidVariable(f"variable name {name[:80]!r} does not match {NAME_RULE}")
    upper = name.upper()
    for prefix in RESERVED_PREFIXES:
        if upper.startswith(prefix):
            raise InvalidVariable(f"variable name {name[:80]!r} is refused: names starting with {prefix} are reserved")
    return name


def check_value(name: str, value: str) -> str:
    if not isinstance(value, str):
        raise InvalidVariable(f"value of {name} is not a string")
    if "\x00" in value:
        raise InvalidVariable(f"value of {name} contains a NUL character")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidVariable(f"value of {name} is not valid Unicode (lone surrogate)") from None
    if size > MAX_VALUE_BYTES:
        raise InvalidVariable(f"value of {name} is larger than {MAX_VALUE_BYTES} bytes (64 KiB)")
    return value


def check_count(existing: int, adding: int, scope: str) -> None:
    if existing + adding > MAX_PER_SCOPE:
        raise TooManyVariables(f"{scope} may hold at most {MAX_PER_SCOPE} variables ({existing} set)")
