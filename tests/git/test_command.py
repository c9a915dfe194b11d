"""The one way git runs: a fresh environment, only allowed protocols, and a deadline that kills everything git started."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from starforge_dag.core.inputs import RepoUrlPolicy
from starforge_dag.git.command import Git, GitFailed, GitTimeout, git_env, redact_url

HTTP_LOCAL = RepoUrlPolicy(schemes=("http",), hosts=("127.0.0.1",))


def test_the_environment_carries_nothing_of_the_callers_git_settings(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.setenv("GIT_DIR", "/etc")
    monkeypatch.setenv("GIT_SSH_COMMAND", "touch /tmp/x")
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file:ext")
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'protocol.allow'='always'")
    env = git_env(RepoUrlPolicy(), host_env=os.environ)
    assert "GIT_DIR" not in env and "GIT_ALLOW_PROTOCOL" not in env and "GIT_CONFIG_PARAMETERS" not in env
    assert env["GIT_SSH_COMMAND"] == "ssh -o BatchMode=yes" and env["GIT_TERMINAL_PROMPT"] == "0"
    assert (env["GIT_CONFIG_NOSYSTEM"], env["GIT_CONFIG_GLOBAL"]) == ("1", "/dev/null")


def test_only_the_policys_schemes_are_allowed_and_hooks_are_off(tmp_path: Path) -> None:
    git = Git(RepoUrlPolicy(schemes=("https", "ssh")))
    listed = git.run("config", "--list", "--show-scope", cwd=tmp_path)
    assert "command\tprotocol.allow=never" in listed
    assert "command\tprotocol.https.allow=always" in listed and "command\tprotocol.ssh.allow=always" in listed
    assert "protocol.file.allow" not in listed and "protocol.ext.allow" not in listed
    assert "command\tcore.hookspath=/dev/null" in listed and "command\tfetch.fsckobjects=true" in listed
    assert "global\t" not in listed and "system\t" not in listed


def test_the_callers_global_config_is_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text('[url "file:///etc/"]\n\tinsteadOf = https://github.com/\n')
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(GitFailed):
        Git(RepoUrlPolicy(), host_env=(("HOME", str(home)),)).run("config", "--get-regexp", "^url\\.", cwd=tmp_path)


def test_of_the_host_environment_only_path_home_and_proxies_reach_git() -> None:
    host = {"PATH": "/opt/git/bin", "HOME": "/home/op", "HTTPS_PROXY": "http://proxy:3128", "AWS_SECRET": "x"}
    env = git_env(RepoUrlPolicy(), host_env=host)
    assert (env["PATH"], env["HOME"], env["HTTPS_PROXY"]) == ("/opt/git/bin", "/home/op", "http://proxy:3128")
    assert "AWS_SECRET" not in env
    assert git_env(RepoUrlPolicy())["PATH"] == "/usr/local/bin:/usr/bin:/bin" and "HOME" not in git_env(RepoUrlPolicy())


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers: a remote that would hang git forever."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.timeout(60)
def test_a_remote_that_never_answers_is_cut_off_with_everything_git_started(silent_server: int, tmp_path) -> None:
    url = f"http://127.0.0.1:{silent_server}/stalled.git"
    with pytest.raises(GitTimeout, match="timed out after 2s"):
        Git(HTTP_LOCAL, timeout_s=2).run("ls-remote", "--", url, cwd=tmp_path)
    assert [cmd for cmd in _command_lines() if f":{silent_server}/" in cmd] == []  # git-remote-http is gone too


def test_credentials_in_urls_are_masked() -> None:
    assert redact_url("fatal: https://x-access-token:ghs_abc@github.com/a/b.git") == (
        "fatal: https://***@github.com/a/b.git"
    )


def _command_lines() -> list[str]:
    lines = []
    for proc in Path("/proc").iterdir():
        try:
            lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return lines
