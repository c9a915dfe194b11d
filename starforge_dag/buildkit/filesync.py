"""The file-sync side of a session: what the daemon sees of a local directory, as fsutil's sender lists it."""

from __future__ import annotations

import os
import posixpath
import re
import stat as st
from collections.abc import Iterable, Iterator
from functools import lru_cache

from .pb import fsutil_types_pb2

Stat = fsutil_types_pb2.Stat
Packet = fsutil_types_pb2.Packet

# Go's os.FileMode bits: fsutil puts uint32(fi.Mode()) on the wire, not st_mode.
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_CHARDEV = 1 << 21
_GO_STICKY = 1 << 20
_GO_IRREGULAR = 1 << 19
GO_TYPE = _GO_DIR | _GO_SYMLINK | _GO_PIPE | _GO_SOCKET | _GO_DEVICE | _GO_CHARDEV | _GO_IRREGULAR
_GO_KIND = {
    st.S_IFDIR: _GO_DIR,
    st.S_IFLNK: _GO_SYMLINK,
    st.S_IFBLK: _GO_DEVICE,
    st.S_IFCHR: _GO_DEVICE | _GO_CHARDEV,
    st.S_IFIFO: _GO_PIPE,
    st.S_IFSOCK: _GO_SOCKET,
}


def go_file_mode(st_mode: int) -> int:
    """Translate st_mode to Go's os.FileMode, the encoding the receiver expects."""
    mode = (st_mode & 0o777) | _GO_KIND.get(st.S_IFMT(st_mode), 0)
    if st_mode & st.S_ISUID:
        mode |= _GO_SETUID
    if st_mode & st.S_ISGID:
        mode |= _GO_SETGID
    if st_mode & st.S_ISVTX:
        mode |= _GO_STICKY
    return mode


def _clean(path: str) -> str:
    """Go's filepath.Clean for relative slash paths (no POSIX '//' special case)."""
    cleaned = posixpath.normpath(path) if path else "."
    return "/" + cleaned.lstrip("/") if cleaned.startswith("/") else cleaned


def _join(*parts: str) -> str:
    return _clean("/".join(p for p in parts if p))


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str] | None:
    """Compile Go's filepath.Match syntax; None for a malformed pattern (it matches nothing)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            i += 1
            if i == n:
                return None
            out.append(re.escape(pattern[i]))
        elif c == "[":
            i += 1
            negate = i < n and pattern[i] == "^"
            i += negate
            body: list[str] = []
            while i < n and (pattern[i] != "]" or not body):
                if pattern[i] == "\\":
                    i += 1
                    if i == n:
                        return None
                    body.append(re.escape(pattern[i]))
                elif pattern[i] == "-" and body and i + 1 < n and pattern[i + 1] != "]":
                    body.append("-")
                else:
                    body.append(re.escape(pattern[i]))
                i += 1
            if i == n or not body:
                return None
            out.append("[" + ("^" if negate else "") + "".join(body) + "]")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.S)


def _glob_match(pattern: str, name: str) -> bool:
    regex = _glob(pattern)
    return bool(regex and regex.match(name))


def _has_wildcards(text: str) -> bool:
    return any(c in text for c in "*?[\\")


def _match_prefix(pattern: str, name: str) -> tuple[bool, bool]:
    """fsutil's include test: a directory matches a longer pattern partially (its contents may match)."""
    depth = name.count("/")
    partial = pattern.count("/") > depth
    if partial:
        pattern = "/".join(pattern.split("/")[: depth + 1])
    return _glob_match(pattern, name), partial


class _ExcludePattern:
    def __init__(self, text: str):
        self.exclusion = text.startswith("!")
        if self.exclusion:
            text = text[1:]
            if not text:
                raise ValueError('illegal exclusion pattern: "!"')
        self.text = text
        self.dirs = len(text.split("/"))
        self.regex = re.compile(self._translate(text))

    @staticmethod
    def _translate(pattern: str) -> str:
        """Docker's fileutils pattern -> regex: `*` within a name, `**` across names, `\\` escapes."""
        out = ["^"]
        i, n = 0, len(pattern)
        while i < n:
            c = pattern[i]
            if c == "*":
                if i + 1 < n and pattern[i + 1] == "*":
                    i += 1
                    if i + 1 < n and pattern[i + 1] == "/":
                        i += 1
                    out.append(".*" if i + 1 == n else "(.*/)?")
                else:
                    out.append("[^/]*")
            elif c == "?":
                out.append("[^/]")
            elif c in ".$":
                out.append("\\" + c)
            elif c == "\\":
                if i + 1 < n:
                    i += 1
                    out.append(re.escape(pattern[i]))
                else:
                    out.append("\\\\")
            else:
                out.append(c)
            i += 1
        out.append(r"\Z")
        return "".join(out)


class ExcludeMatcher:
    """`.dockerignore` semantics: patterns apply in order, the last match wins, `!` re-includes."""

    def __init__(self, patterns: Iterable[str]):
        self.patterns = [_ExcludePattern(_clean(p.strip())) for p in patterns if p.strip()]
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        parent = posixpath.dirname(path) or "."
        parent_dirs = parent.split("/")
        matched = False
        for pattern in self.patterns:
            hit = pattern.regex.match(path) is not None
            if not hit and parent != "." and pattern.dirs <= len(parent_dirs):
                hit = pattern.regex.match("/".join(parent_dirs[: pattern.dirs])) is not None
            if hit:
                matched = not pattern.exclusion
        return matched

    def may_reinclude_below(self, directory: str) -> bool:
        """An excluded directory is still walked when a `!` pattern names something inside it."""
        prefix = directory + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)


def follow_links(root: str, paths: Iterable[str]) -> list[str]:
    """fsutil's FollowPaths: each path plus every symlink on the way and its target, relative to root."""
    resolved: set[str] = set()

    def read_link(rel: str, wildcard: bool) -> list[str] | None:
        full = os.path.join(root, rel)
        base = posixpath.basename(rel)
        if wildcard and _has_wildcards(base):
            parent = posixpath.dirname(rel)
            try:
                names = sorted(os.listdir(os.path.join(root, parent)))
            except FileNotFoundError:
                return None
            found: list[str] = []
            for name in names:
                if _glob_match(base, name):
                    found += read_link(_join(parent, name), False) or []
            return found or None
        try:
            if not st.S_ISLNK(os.lstat(full).st_mode):
                return None
            link = _clean(os.readlink(full))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return [link if link.startswith("/") else _clean("/" + _join(posixpath.dirname(rel), link))]

    def append(path: str, depth: int) -> None:
        if depth > 255:
            raise OSError(f"too many levels of symbolic links following {path}")
        rest = _clean(path.lstrip("/"))
        current = "."
        while True:
            head, _, rest = rest.partition("/")
            current = _join(current, head)
            targets = read_link(current, True)
            if (not rest or targets is not None) and current in resolved:
                return
            if targets is not None:
                resolved.add(current)
                for target in targets:
                    append(_join(target, rest), depth + 1)
                return
            if not rest:
                resolved.add(current)
                return

    for path in paths:
        append(path, 0)
    return sorted(resolved)


def _dedupe(paths: list[str]) -> list[str] | None:
    out: list[str] = []
    last = ""
    for path in sorted(set(paths)):
        if path == ".":
            return None
        if last and path.startswith(last + "/"):
            continue
        out.append(path)
        last = path
    return out


def _xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    found = {}
    for name in names:
        try:
            found[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return found


def walk(
    root: str | os.PathLike[str],
    includes: Iterable[str] | None = None,
    excludes: Iterable[str] | None = None,
    follow_paths: Iterable[str] | None = None,
    owner: tuple[int, int] | None = None,
) -> Iterator[Stat]:
    """List a directory as fsutil's sender does: depth-first, names in byte order, filters applied."""
    base = os.path.realpath(root)
    include = [_clean(p) for p in includes] if includes is not None else None
    if follow_paths is not None:
        targets = follow_links(base, list(follow_paths))
        include = _dedupe((include or []) + targets)
    matcher = ExcludeMatcher(excludes) if excludes is not None else None
    seen_inodes: dict[int, str] = {}
    last_included_dir = ""

    def included(rel: str, is_dir: bool) -> bool:
        nonlocal last_included_dir
        if include is None or (last_included_dir and rel.startswith(last_included_dir + "/")):
            return True
        matched, partial = False, True
        for pattern in include:
            hit, hit_partial = _match_prefix(pattern, rel)
            if hit:
                matched = True
                if not hit_partial:
                    partial = False
                    break
        if matched and not partial and is_dir:
            last_included_dir = rel
        return matched

    def excluded(rel: str, is_dir: bool) -> bool:
        if matcher is None or not matcher.matches(rel):
            return False
        return not (is_dir and matcher.has_exclusions and matcher.may_reinclude_below(rel))

    def make_stat(full: str, rel: str, info: os.stat_result) -> Stat:
        stat = Stat(path=rel, mode=go_file_mode(info.st_mode), modTime=info.st_mtime_ns)
        stat.uid, stat.gid = owner if owner is not None else (info.st_uid, info.st_gid)
        if not st.S_ISDIR(info.st_mode):
            stat.size = info.st_size
            if st.S_ISBLK(info.st_mode) or st.S_ISCHR(info.st_mode):
                stat.devmajor, stat.devminor = os.major(info.st_rdev), os.minor(info.st_rdev)
            if st.S_ISLNK(info.st_mode):
                stat.linkname = os.readlink(full)
            elif info.st_nlink > 1 and info.st_ino in seen_inodes:
                stat.linkname, stat.size = seen_inodes[info.st_ino], 0
            else:
                seen_inodes.setdefault(info.st_ino, rel)
        stat.xattrs.update(_xattrs(full))
        return stat

    def visit(directory: str, rel_dir: str) -> Iterator[Stat]:
        try:
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            return
        for name in names:
            full = os.path.join(directory, name)
            rel = f"{rel_dir}/{name}" if rel_dir else name
            try:
                info = os.lstat(full)
            except FileNotFoundError:
                continue
            is_dir = st.S_ISDIR(info.st_mode)
            if not included(rel, is_dir) or excluded(rel, is_dir):
                continue
            yield make_stat(full, rel, info)
            if is_dir:
                yield from visit(full, rel)

    yield from visit(base, "")
