"""A read-only view of an app's source directory that only opens the files it is asked for.

Planning must cost in proportion to the files read, not the size of the tree: every
lookup is by name, and globbing is bounded (one directory level at a time, a cap on
matches), so a repo with a huge `node_modules` or thousands of unrelated files plans as
fast as a small one.
"""

from __future__ import annotations

import fnmatch
import json
import os
import tomllib
from pathlib import Path
from typing import Any

import yaml

# libyaml's loader when present: the pure-Python one dominates planning time for pnpm workspaces.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Directories never searched by globs: they hold dependencies or VCS data, not app code.
IGNORED_DIRS = frozenset(
    {".git", "node_modules", ".venv", "venv", "__pycache__", "target", "vendor", ".next", "dist", "build"}
)


class SourceTree:
    """Cached, counted access to the files of one app's source directory."""

    def __init__(self, root: str | os.PathLike[str], max_glob_matches: int = 200) -> None:
        self.root = Path(root).resolve()
        self.max_glob_matches = max_glob_matches
        self._texts: dict[str, str | None] = {}
        self._listings: dict[str, list[os.DirEntry[str]]] = {}
        self.files_read = 0
        self.dirs_listed = 0

    def _path(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def has_file(self, rel: str) -> bool:
        """True when `rel` is a regular file inside the app."""
        return self._path(rel).is_file()

    def has_dir(self, rel: str) -> bool:
        """True when `rel` is a directory inside the app."""
        return self._path(rel).is_dir()

    def exists(self, rel: str) -> bool:
        """True when `rel` exists inside the app, file or directory (Railpack's HasFile)."""
        return self._path(rel).exists()

    def is_executable(self, rel: str) -> bool:
        """True when `rel` is a regular file with an execute bit."""
        path = self._path(rel)
        return path.is_file() and os.access(path, os.X_OK)

    def has_any(self, *names: str) -> bool:
        """True when any of the named files exists."""
        return any(self.has_file(n) for n in names)

    def first_file(self, *names: str) -> str | None:
        """The first of `names` that exists, in the order given."""
        return next((n for n in names if self.has_file(n)), None)

    def read_text(self, rel: str) -> str | None:
        """The file's text, or None when it does not exist or is not text."""
        if rel not in self._texts:
            try:
                text: str | None = self._path(rel).read_text(encoding="utf-8").replace("\r\n", "\n")
                self.files_read += 1
            except (OSError, UnicodeDecodeError):
                text = None
            self._texts[rel] = text
        return self._texts[rel]

    def read_json(self, rel: str) -> Any:
        """Parsed JSON, or None when missing or malformed."""
        text = self.read_text(rel)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            pass
        try:
            return json.loads(strip_jsonc(text))
        except ValueError:
            return None

    def read_toml(self, rel: str) -> dict[str, Any] | None:
        """Parsed TOML, or None when missing or malformed."""
        text = self.read_text(rel)
        if text is None:
            return None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return None

    def read_yaml(self, rel: str) -> Any:
        """Parsed YAML, or None when missing or malformed."""
        text = self.read_text(rel)
        if text is None:
            return None
        try:
            return yaml.load(text, Loader=_YAML_LOADER)
        except yaml.YAMLError:
            return None

    def list_dir(self, rel: str = "") -> list[os.DirEntry[str]]:
        """The entries of one directory, sorted by name (empty when missing)."""
        key = rel.strip("/")
        if key not in self._listings:
            try:
                with os.scandir(self._path(key) if key else self.root) as it:
                    entries = sorted(it, key=lambda e: e.name)
                self.dirs_listed += 1
            except OSError:
                entries = []
            self._listings[key] = entries
        return self._listings[key]

    def glob(self, pattern: str, max_depth: int = 3) -> list[str]:
        """Paths matching `pattern` (`*`, `?`, `{a,b}`, `**` for up to `max_depth` directory levels).

        Stops after `max_glob_matches` results and never enters IGNORED_DIRS, so its cost is
        bounded by the directories the pattern can reach, not by the size of the tree.
        """
        out: list[str] = []
        for expanded in _expand_braces(pattern):
            parts = [p for p in expanded.strip("/").split("/") if p]
            self._glob(parts, "", max_depth, out)
        return sorted(dict.fromkeys(out))

    def find_files(self, pattern: str, max_depth: int = 3) -> list[str]:
        """Regular files matching `pattern`."""
        return [p for p in self.glob(pattern, max_depth) if self.has_file(p)]

    def find_dirs(self, pattern: str, max_depth: int = 3) -> list[str]:
        """Directories matching `pattern`."""
        return [p for p in self.glob(pattern, max_depth) if self.has_dir(p)]

    def has_match(self, pattern: str) -> bool:
        """True when anything matches `pattern`."""
        return bool(self.glob(pattern))

    def read_first(self, *names: str) -> tuple[str, str] | None:
        """(name, text) of the first of `names` that exists."""
        for name in names:
            text = self.read_text(name) if self.has_file(name) else None
            if text is not None:
                return name, text
        return None

    def _glob(self, parts: list[str], base: str, depth_left: int, out: list[str]) -> None:
        if len(out) >= self.max_glob_matches or not parts:
            return
        head, rest = parts[0], parts[1:]
        if head == "**":
            self._glob(rest, base, depth_left, out)
            if depth_left > 0:
                for entry in self.list_dir(base):
                    if entry.is_dir() and entry.name not in IGNORED_DIRS and not entry.name.startswith("."):
                        self._glob(parts, _join(base, entry.name), depth_left - 1, out)
            return
        if not any(ch in head for ch in "*?["):
            path = _join(base, head)
            if rest:
                if self.has_dir(path):
                    self._glob(rest, path, depth_left, out)
            elif self._path(path).exists():
                out.append(path)
            return
        for entry in self.list_dir(base):
            if len(out) >= self.max_glob_matches:
                return
            if not fnmatch.fnmatchcase(entry.name, head):
                continue
            path = _join(base, entry.name)
            if rest:
                if entry.is_dir() and entry.name not in IGNORED_DIRS:
                    self._glob(rest, path, depth_left, out)
            else:
                out.append(path)


def _expand_braces(pattern: str) -> list[str]:
    """`a/{b,c}` → [`a/b`, `a/c`] (one level of alternatives, as in shell globs)."""
    start = pattern.find("{")
    end = pattern.find("}", start)
    if start < 0 or end < 0:
        return [pattern]
    head, body, tail = pattern[:start], pattern[start + 1 : end], pattern[end + 1 :]
    return [e for alt in body.split(",") for e in _expand_braces(head + alt + tail)]


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


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
