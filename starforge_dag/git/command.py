"""The one way Starforge runs git: a hardened environment, `--` before URLs and refs, a deadline, no prompts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.inputs import RepoUrlPolicy

HOST_VARIABLES = (  # operator-level settings a git on this host may need; nothing a tenant controls
    "PATH",
    "HOME",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
DEFAULT_TIMEOUT_S = 30.0


class GitFailed(RuntimeError):
    """A git command exited non-zero; `stderr` has git's own words (credentials masked)."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str):
        self.args_ = list(args)
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"git {args[0] if args else ''} failed (exit {returncode}): {stderr}")


class GitTimeout(RuntimeError):
    """A git command ran past its deadline and was killed with everything it started."""


def redact_url(text: str) -> str:
    """Drop credentials embedded in URLs (`https://user:token@host/...`) before text is shown or logged."""
    return _USERINFO.sub(r"\1***@", text)


def git_config(policy: RepoUrlPolicy) -> dict[str, str]:
    """Config every git process gets, children included: only allowed protocols, no hooks, checked objects."""
    config = {
        "protocol.allow": "never",
        "core.hooksPath": "/dev/null",
        "core.fsmonitor": "false",
        "core.askPass": "",
        "credential.helper": "",
        "transfer.fsckObjects": "true",
        "fetch.fsckObjects": "true",
        "fetch.recurseSubmodules": "false",
        "submodule.recurse": "false",
        "http.followRedirects": "false",  # a redirect could lead to a host the policy does not allow
        "http.lowSpeedLimit": "1000",
        "http.lowSpeedTime": "60",
        "advice.detachedHead": "false",
        "init.defaultBranch": "main",
    }
    for scheme in policy.schemes:
        config[f"protocol.{scheme}.allow"] = "always"
    return config


def git_env(
    policy: RepoUrlPolicy,
    extra_config: Sequence[tuple[str, str]] = (),
    host_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A fresh environment: no system or global config, no prompts, config passed so that child gits inherit it.

    `extra_config` (e.g. an auth header for one host) travels the same way: never on the command line or on disk.
    Of `host_env` (the caller's PATH, HOME, proxies) only HOST_VARIABLES pass.
    """
    env = {name: value for name, value in (host_env or {}).items() if name in HOST_VARIABLES}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        {
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "/bin/false",
            "SSH_ASKPASS": "/bin/false",
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
            "GIT_PROTOCOL_FROM_USER": "0",
        }
    )
    config = {**git_config(policy), **dict(extra_config)}
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for i, (key, value) in enumerate(config.items()):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


@dataclass(frozen=True)
class Git:
    """Runs git under one policy; every call has a deadline and kills git's whole process group when it passes."""

    policy: RepoUrlPolicy
    timeout_s: float = DEFAULT_TIMEOUT_S
    extra_config: tuple[tuple[str, str], ...] = ()
    host_env: tuple[tuple[str, str], ...] = ()

    def run(self, *args: str, cwd: Path | None = None, timeout_s: float | None = None) -> str:
        """`git ARGS` in `cwd`; callers put `--` before URLs and refs themselves, this runs exactly what it is given."""
        env = git_env(self.policy, self.extra_config, dict(self.host_env))
        return run_git(args, cwd=cwd, env=env, timeout_s=timeout_s or self.timeout_s)


def run_git(args: Sequence[str], *, cwd: Path | None, env: Mapping[str, str], timeout_s: float) -> str:
    process = subprocess.Popen(
        ["git", *args],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # so a timeout can kill remote helpers and ssh too
    )
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        raise GitTimeout(f"git {args[0]} timed out after {timeout_s:g}s") from None
    except BaseException:
        _kill_group(process)
        process.communicate()
        raise
    if process.returncode != 0:
        text = redact_url(err.decode("utf-8", "replace").strip()) or f"exit {process.returncode}"
        raise GitFailed(args, process.returncode, text)
    return out.decode("utf-8", "replace")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
