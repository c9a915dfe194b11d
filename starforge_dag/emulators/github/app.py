"""The emulator's ASGI app: the git remote under `/_git/`, every other path routed to a REST endpoint, faults first."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from . import auth, checks, deliveries, deployments, pulls, repos, statuses
from .answers import Answer, answer, error
from .remote import git_http
from .repos import GIT_PREFIX

if TYPE_CHECKING:
    from .emulator import GitHubEmulator

_OWNER_REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
_DEPLOYMENT = _OWNER_REPO + r"/deployments/(?P<deployment_id>[0-9]{1,18})"
ROUTES: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = [
    ("GET", re.compile(r"/app"), auth.get_app),
    ("GET", re.compile(r"/app/installations"), auth.list_installations),
    ("POST", re.compile(r"/app/installations/(?P<inst_id>\d+)/access_tokens"), auth.access_token),
    ("GET", re.compile(r"/app/hook/deliveries"), deliveries.list_deliveries),
    ("POST", re.compile(r"/app/hook/deliveries/(?P<delivery_id>\d+)/attempts"), deliveries.redeliver),
    ("GET", re.compile(r"/installation/repositories"), repos.installation_repositories),
    ("GET", re.compile(_OWNER_REPO + r"/installation"), repos.repo_installation),
    ("GET", re.compile(_OWNER_REPO), repos.get_repo),
    ("GET", re.compile(r"/repositories/(?P<repo_id>\d+)"), repos.get_repo_by_id),
    ("GET", re.compile(_OWNER_REPO + r"/branches/(?P<branch>.+)"), repos.get_branch),
    ("POST", re.compile(_OWNER_REPO + r"/statuses/(?P<sha>[^/]+)"), statuses.create_status),
    ("GET", re.compile(_OWNER_REPO + r"/commits/(?P<ref>[^/]+)/check-suites"), checks.list_check_suites),
    ("GET", re.compile(_OWNER_REPO + r"/collaborators/(?P<user>[^/]+)/permission"), pulls.collaborator_permission),
    ("POST", re.compile(_OWNER_REPO + r"/deployments"), deployments.create_deployment),
    ("GET", re.compile(_OWNER_REPO + r"/deployments"), deployments.list_deployments),
    ("POST", re.compile(_DEPLOYMENT + r"/statuses"), deployments.create_deployment_status),
    ("GET", re.compile(_DEPLOYMENT + r"/statuses"), deployments.list_deployment_statuses),
]


async def asgi(emu: GitHubEmulator, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
    if scope["type"] != "http":
        return
    request = Request(scope, receive)
    path = request.url.path
    if path.startswith(GIT_PREFIX):
        body = await request.body()
        response = await asyncio.to_thread(git_http, emu, request, body)
    else:
        response = await _api(emu, request)
    with emu._lock:
        emu.requests.append((request.method, path, response.status_code))
    await response(scope, receive, send)


async def _api(emu: GitHubEmulator, request: Request) -> Response:
    faults = emu.faults
    fault = faults.draw()
    if faults.slow_s:
        await asyncio.sleep(faults.slow_s)
    if fault == "slow":
        await asyncio.sleep(max(faults.slow_s, 2.0))
    elif fault == "5xx":
        return answer(emu.rate_limit, {"message": "Server Error"}, 502)
    elif fault == "rate_limit":
        return faults.rate_limited()
    body = await request.body()
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        return error(emu.rate_limit, 400, "Problems parsing JSON")
    for method, pattern, handler in ROUTES:
        if method != request.method:
            continue
        match = pattern.fullmatch(request.url.path)
        if match:
            try:
                handled = await asyncio.to_thread(handler, emu, request, payload, **match.groupdict())
            except Answer as raised:
                return error(emu.rate_limit, raised.status, raised.message)
            if fault == "lost_answer":  # the call took effect, its answer never arrives
                return answer(emu.rate_limit, {"message": "Server Error"}, 502)
            return handled
    return error(emu.rate_limit, 404, "Not Found")
