"""One validator per kind of untrusted input (repo URL, ref, commit id, text): pure, so every layer can use them."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_URL_CHARS = 2048
MAX_REF_BYTES = 255  # the builds table's ref column; git itself has no limit
KNOWN_SCHEMES = frozenset({"https", "http", "ssh", "git", "file"})
_COMMIT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(.*)", re.DOTALL)
_SCP_LIKE = re.compile(r"(?:([A-Za-z0-9._~-]+)@)?([A-Za-z0-9.-]+):(.*)", re.DOTALL)
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")
_USERINFO = re.compile(r"[A-Za-z0-9._~%!$&'()*+,;=:-]*")
_PORT = re.compile(r"[0-9]{1,5}")
_HELPER = re.compile(r"[^/:]*::")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


class InvalidInput(ValueError):
    """Outside input that must be refused; the message says what was wrong and is safe to show to the sender."""


@dataclass(frozen=True)
class RepoUrlPolicy:
    """Which repository URLs git may talk to: schemes, and hosts (`*` any, `*.example.com` a domain's subdomains)."""

    schemes: tuple[str, ...] = ("https",)
    hosts: tuple[str, ...] = ("github.com",)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.schemes) - KNOWN_SCHEMES)
        if unknown:
            raise InvalidInput(
                f"git scheme(s) {', '.join(unknown)} cannot be allowed; choose from {', '.join(sorted(KNOWN_SCHEMES))}"
            )

    @classmethod
    def parse(cls, schemes: str, hosts: str) -> RepoUrlPolicy:
        """From the comma-separated settings (`https,ssh`, `github.com,*.corp.example`)."""
        return cls(
            schemes=tuple(s.strip().lower() for s in schemes.split(",") if s.strip()),
            hosts=tuple(h.strip().lower() for h in hosts.split(",") if h.strip()),
        )

    def allows_host(self, host: str, port: int | None) -> bool:
        host = host.lower()
        for allowed in self.hosts:
            if allowed == "*" or allowed == host or (port is not None and allowed == f"{host}:{port}"):
                return True
            if allowed.startswith("*.") and host.endswith(allowed[1:]):
                return True
        return False


@dataclass(frozen=True)
class RepoUrl:
    """A repository URL that passed the policy: git gets `url` unchanged."""

    url: str
    scheme: str  # ssh for scp-like `user@host:path`
    host: str  # empty for file://
    path: str
    scp_like: bool = False


def check_text(value: str, what: str, max_chars: int = 1000) -> str:
    """Refuse strings no database column or log should see: NUL, lone surrogates, absurd length."""
    if len(value) > max_chars:
        raise InvalidInput(f"{what} is longer than {max_chars} characters")
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} is not valid Unicode (lone surrogate)") from None
    return value


def check_commit_id(value: str, what: str = "commit id") -> str:
    """Exactly 40 (SHA-1) or 64 (SHA-256) lowercase hex digits: nothing else names a commit unambiguously."""
    if not isinstance(value, str) or not _COMMIT_ID.fullmatch(value):
        shown = repr(value[:80]) if isinstance(value, str) else type(value).__name__
        raise InvalidInput(f"{what} {shown} is not a full commit id (40 or 64 lowercase hex digits)")
    return value


def check_ref(ref: str, what: str = "ref") -> str:
    """A full ref name by `git check-ref-format` rules (no one-level names, no `@{`, no `..`, no control chars)."""
    check_text(ref, what, max_chars=MAX_REF_BYTES)
    if len(ref.encode("utf-8")) > MAX_REF_BYTES:
        raise InvalidInput(f"{what} is longer than {MAX_REF_BYTES} bytes")
    problem = _ref_problem(ref)
    if problem:
        raise InvalidInput(f"{what} {ref[:80]!r} is not a valid git ref: {problem}")
    return ref


def _ref_problem(ref: str) -> str | None:
    if not ref:
        return "it is empty"
    if ref == "@":
        return "it is '@'"
    match = _REF_FORBIDDEN.search(ref)
    if match:
        return f"it contains {match.group()!r}"
    if ".." in ref:
        return "it contains '..'"
    if "@{" in ref:
        return "it contains '@{'"
    if ref.startswith("/") or ref.endswith("/") or "//" in ref:
        return "it has an empty path component"
    if ref.endswith("."):
        return "it ends with '.'"
    if "/" not in ref:
        return "it has only one level"
    for part in ref.split("/"):
        if part.startswith("."):
            return "a component starts with '.'"
        if part.endswith(".lock"):
            return "a component ends with '.lock'"
    return None


def check_branch(name: str, what: str = "branch") -> str:
    """A branch name as `git check-ref-format --branch` takes it, without the `@{-N}` shorthands."""
    if not isinstance(name, str) or name.startswith("-") or name == "HEAD":
        raise InvalidInput(f"{what} {str(name)[:80]!r} is not a valid branch name")
    check_ref("refs/heads/" + name, what)
    return name


def check_repo_url(url: str, policy: RepoUrlPolicy) -> RepoUrl:
    """The one gate for repository URLs: no transport helpers, options or local paths; scheme and host allowed."""
    if not isinstance(url, str) or not url:
        raise InvalidInput("repository URL is empty")
    check_text(url, "repository URL", max_chars=MAX_URL_CHARS)
    shown = url[:120]
    if url.startswith("-"):
        raise InvalidInput(f"repository URL {shown!r} starts with '-' (it would be read as a git option)")
    if _HELPER.match(url):
        raise InvalidInput(
            f"repository URL {shown!r} is not allowed: git transport helpers (`ext::`, `fd::`) are refused"
        )
    if not url.isascii() or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise InvalidInput(f"repository URL {shown!r} contains whitespace, control or non-ASCII characters")
    parsed = _parse(url)
    if parsed is None:
        raise InvalidInput(
            f"repository URL {shown!r} is not allowed: local paths and malformed URLs are refused; "
            "use https://host/owner/repo.git"
        )
    if parsed.scheme not in policy.schemes:
        allowed = ", ".join(policy.schemes) or "none"
        raise InvalidInput(
            f"repository URL scheme {parsed.scheme!r} is not allowed (allowed: {allowed}; STARFORGE_GIT_ALLOWED_SCHEMES)"
        )
    if parsed.scheme != "file":
        host, port = _split_port(parsed.host, shown)
        if not policy.allows_host(host, port):
            allowed = ", ".join(policy.hosts) or "none"
            raise InvalidInput(
                f"repository host {host!r} is not allowed (allowed: {allowed}; STARFORGE_GIT_ALLOWED_HOSTS)"
            )
    return parsed


def _parse(url: str) -> RepoUrl | None:
    """Split a URL as git does; None for anything git would treat as a transport helper or a local path."""
    match = _SCHEME.fullmatch(url)
    if match:
        scheme, rest = match.group(1).lower(), match.group(2)
        if scheme == "file":
            authority, _, path = rest.partition("/")
            if authority not in ("", "localhost") or not path:
                return None
            return RepoUrl(url=url, scheme=scheme, host="", path="/" + path)
        authority, slash, path = rest.partition("/")
        userinfo, at, hostport = authority.rpartition("@")
        if (at and (not _USERINFO.fullmatch(userinfo) or userinfo.startswith("-"))) or not hostport:
            return None
        if not _HOST.fullmatch(hostport.rsplit(":", 1)[0] if not hostport.endswith("]") else hostport):
            return None
        return RepoUrl(url=url, scheme=scheme, host=hostport, path=slash + path)
    if "::" in url:
        return None
    scp = _SCP_LIKE.fullmatch(url)
    if scp and "/" not in scp.group(2) and not scp.group(2).startswith("-") and "." in scp.group(2):
        return RepoUrl(url=url, scheme="ssh", host=scp.group(2), path=scp.group(3), scp_like=True)
    return None


def _split_port(hostport: str, shown: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        host, _, rest = hostport.partition("]")
        host += "]"
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = hostport.partition(":")
    if not _HOST.fullmatch(host):
        raise InvalidInput(f"repository URL {shown!r} has an invalid host")
    if not port_text:
        return host.lower(), None
    if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
        raise InvalidInput(f"repository URL {shown!r} has an invalid port")
    return host.lower(), int(port_text)
