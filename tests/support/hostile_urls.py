"""Hostile input for the security suite: URLs that would run a command or read the host, and the canary they touch."""

from __future__ import annotations

from pathlib import Path

from starforge_dag.core.inputs import KNOWN_SCHEMES, RepoUrlPolicy

# Every scheme and every host: what is refused under it is refused whatever an operator allows.
PERMISSIVE = RepoUrlPolicy(schemes=tuple(sorted(KNOWN_SCHEMES)), hosts=("*",))


def command_urls(canary: Path) -> list[str]:
    """URLs (and URL-shaped options) that make git run `touch canary`, or block on a descriptor, if passed through."""
    return [
        f"ext::sh -c touch% {canary}",
        f"ext::sh -c 'touch {canary}'",
        "fd::17",
        "fd::0,1/repo",
        f"--upload-pack=touch {canary}",
        f"--config=core.sshCommand=touch {canary}",
        f"-uhttps://github.com/{canary}",
        f"ssh://-oProxyCommand=touch%20{canary}/repo.git",
        f"ssh://-oProxyCommand=touch {canary}/repo.git",
        f"-oProxyCommand=touch {canary}@github.com:acme/web.git",
        f"transport::https://github.com/acme/web.git{canary}",
    ]


def local_urls() -> list[str]:
    """URLs that would read the build host's own files."""
    return ["/etc", "/srv/other-tenant.git", "../other-tenant.git", "./repo", "~/repo.git", "C:/repo", "repo"]


def refused_by_default_urls() -> list[str]:
    """Well-formed URLs the default policy (https to github.com) refuses: scheme, host and lookalikes."""
    return [
        "file:///srv/other-tenant.git",
        "file://localhost/srv/other-tenant.git",
        "http://github.com/acme/web.git",
        "git://github.com/acme/web.git",
        "ssh://git@github.com/acme/web.git",
        "git@github.com:acme/web.git",
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1:5000/v2/",
        "https://github.com.evil.example/acme/web.git",
        "https://github.com@evil.example/acme/web.git",
        "https://evil.example#@github.com/acme/web.git",
        "https://github.com:99999/acme/web.git",
        "https://github.com/acme/web.git\n[core]\n\tsshCommand = touch /tmp/x",
        "https://github.com/acme/we b.git",
        "https://gith\u00fcb.com/acme/web.git",
        "https://github.com/acme/\x00web.git",
        "gopher://github.com/acme/web.git",
        "",
    ]
