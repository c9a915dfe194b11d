"""The git smart-HTTP remote: `git http-backend` per repository, read-only, private ones behind installation tokens."""

from __future__ import annotations

import base64
import re
import subprocess
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from .answers import Answer
from .auth import installation_for
from .records import EmuRepo
from .repos import GIT_PREFIX, repo_by_name

if TYPE_CHECKING:
    from .emulator import GitHubEmulator


def git_http(emu: GitHubEmulator, request: Request, body: bytes) -> Response:
    """`git http-backend` for one repository, behind installation-token Basic auth for private ones."""
    rest = request.url.path[len(GIT_PREFIX) :]
    match = re.fullmatch(r"([^/]+)/([^/]+?)\.git(/.*)", rest)
    if not match:
        return Response("Not Found\n", 404)
    owner, name, tail = match.groups()
    try:
        repo = repo_by_name(emu, None, owner, name)
    except Answer:
        return Response("Repository not found.\n", 404)
    if tail not in ("/info/refs", "/git-upload-pack"):
        return Response("Forbidden\n", 403)  # read-only remote: no pushes over HTTP
    if repo.private and not _authorized(emu, request, repo):
        return Response("Authentication failed\n", 401, headers={"WWW-Authenticate": 'Basic realm="GitHub"'})
    env = {
        "GIT_PROJECT_ROOT": str(repo.path.parent),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{repo.path.name}{tail}",
        "QUERY_STRING": request.url.query,
        "REQUEST_METHOD": request.method,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "GIT_PROTOCOL": request.headers.get("git-protocol", ""),
        "HTTP_CONTENT_ENCODING": request.headers.get("content-encoding", ""),
        "REMOTE_ADDR": "127.0.0.1",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
    head, _, payload = done.stdout.partition(b"\r\n\r\n")
    headers: dict[str, str] = {}
    status = 200
    for line in head.decode(errors="replace").split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key.lower() == "status":
            status = int(value.split()[0])
        else:
            headers[key] = value
    return Response(payload, status, headers=headers)


def _authorized(emu: GitHubEmulator, request: Request, repo: EmuRepo) -> bool:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        inst = installation_for(emu, password)
    except (ValueError, Answer):
        return False
    return user == "x-access-token" and repo.installation_id == inst.id
