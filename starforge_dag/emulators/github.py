"""A GitHub emulator: the REST endpoints a GitHub App uses, App webhooks, and a private git smart-HTTP remote.

It is a real HTTP server (Starlette under uvicorn on a free port). App calls are authenticated with
RS256 JWTs checked against the App's public key, installation calls with the tokens it minted
(they expire and can be revoked); git clones need `x-access-token:<token>` Basic auth for private
repositories. Answers carry GitHub's shapes and `x-ratelimit-*` headers, and scripted faults (5xx,
403/429 rate limits, slow answers) hit a chosen fraction of API calls. Webhooks are signed like
GitHub's, and a chosen fraction of them is dropped (recorded as failed deliveries, redeliverable).
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
import secrets
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from starforge_dag.github.signature import sign

RATE_LIMIT = 5000
DOCS = "https://docs.github.com/rest"
GIT_PREFIX = "/_git/"


def new_private_key() -> str:
    """A fresh RSA key in PEM, like the one GitHub lets an App owner download."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


@dataclass
class Faults:
    """What fraction of API calls fail, how, and how slowly every call answers."""

    fail_fraction: float = 0.0
    kinds: tuple[str, ...] = ("5xx", "rate_limit")
    slow_s: float = 0.0
    retry_after_s: int = 1
    seed: int = 0
    scripted: list[str] = field(default_factory=list)  # forced faults for the next calls, in order

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def draw(self) -> str | None:
        if self.scripted:
            return self.scripted.pop(0)
        if self.fail_fraction and self._random.random() < self.fail_fraction:
            return self._random.choice(self.kinds)
        return None


@dataclass
class EmuRepo:
    id: int
    owner: str
    name: str
    path: Path
    private: bool = True
    default_branch: str = "main"
    installation_id: int | None = None

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class EmuInstallation:
    id: int
    account: str
    account_id: int


@dataclass
class EmuToken:
    installation_id: int
    expires_at: datetime
    revoked: bool = False


@dataclass
class EmuDelivery:
    id: int
    guid: str
    event: str
    action: str | None
    body: bytes
    installation_id: int | None
    repository_id: int | None
    redelivery: bool
    delivered_at: datetime
    status_code: int = 0
    status: str = "pending"


@dataclass
class RecordedStatus:
    repo_id: int
    sha: str
    state: str
    description: str
    target_url: str | None
    context: str
    at: datetime


class GitHubEmulator:
    """Start with `start()` (or as a context manager); `api_url` is what the App's settings point at."""

    def __init__(
        self,
        *,
        app_id: int = 4242,
        private_key: str | None = None,
        webhook_secret: str = "",
        webhook_url: str | None = None,
        token_ttl_s: int = 3600,
        drop_fraction: float = 0.0,
        seed: int = 0,
    ):
        self.app_id = app_id
        self.private_key = private_key or new_private_key()
        public_key = serialization.load_pem_private_key(self.private_key.encode(), None).public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise ValueError("a GitHub App's private key is an RSA key")
        self._public_key = public_key
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.token_ttl_s = token_ttl_s
        self.drop_fraction = drop_fraction
        self.drop_redeliveries = False  # True: redeliveries are dropped at the same rate as first deliveries
        self.faults = Faults(seed=seed)
        self._drops = random.Random(seed + 1)
        self._lock = threading.RLock()
        self._ids = iter(range(1000, 10**9))
        self.repos: dict[int, EmuRepo] = {}
        self.installations: dict[int, EmuInstallation] = {}
        self.tokens: dict[str, EmuToken] = {}
        self.jwts_seen: list[str] = []
        self.statuses: list[RecordedStatus] = []
        self.deliveries: list[EmuDelivery] = []
        self.requests: list[tuple[str, str, int]] = []
        self._remaining = RATE_LIMIT
        self._served: ServedApp | None = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GitHubEmulator:
        self._served = ServedApp(self._asgi, name="GitHub emulator").start()
        self.port = self._served.port
        return self

    def stop(self) -> None:
        if self._served is not None:
            self._served.stop()

    def __enter__(self) -> GitHubEmulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- scripting (tests and the demo) -------------------------------------------------------

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def add_installation(self, account: str) -> int:
        inst = EmuInstallation(self._next_id(), account, self._next_id())
        with self._lock:
            self.installations[inst.id] = inst
        return inst.id

    def add_repo(
        self, owner: str, name: str, path: Path | str, *, installation_id: int | None, private: bool = True
    ) -> EmuRepo:
        """Serve the bare repository at `path` as owner/name, reachable through the installation."""
        default = _git(Path(path), "symbolic-ref", "--short", "HEAD").strip() or "main"
        repo = EmuRepo(self._next_id(), owner, name, Path(path), private, default, installation_id)
        with self._lock:
            self.repos[repo.id] = repo
        return repo

    def install(self, account: str, repo_ids: list[int]) -> int:
        """A new installation serving these repositories; sends the `installation` created event."""
        inst_id = self.add_installation(account)
        with self._lock:
            for rid in repo_ids:
                self.repos[rid].installation_id = inst_id
        self.send_event(
            "installation",
            {
                "action": "created",
                "installation": self._installation_json(self.installations[inst_id]),
                "repositories": [self._repo_brief(self.repos[r]) for r in repo_ids],
                "sender": {"login": account, "id": self.installations[inst_id].account_id},
            },
            installation_id=inst_id,
        )
        return inst_id

    def add_repos_to_installation(self, installation_id: int, repo_ids: list[int]) -> None:
        with self._lock:
            for rid in repo_ids:
                self.repos[rid].installation_id = installation_id
            inst = self.installations[installation_id]
        self.send_event(
            "installation_repositories",
            {
                "action": "added",
                "installation": self._installation_json(inst),
                "repository_selection": "selected",
                "repositories_added": [self._repo_brief(self.repos[r]) for r in repo_ids],
                "repositories_removed": [],
            },
            installation_id=installation_id,
        )

    def uninstall(self, installation_id: int) -> None:
        """The account removed the App: its tokens stop working and the `installation` deleted event is sent."""
        with self._lock:
            inst = self.installations.pop(installation_id)
            repos = [r for r in self.repos.values() if r.installation_id == installation_id]
            for repo in repos:
                repo.installation_id = None
            for token in self.tokens.values():
                if token.installation_id == installation_id:
                    token.revoked = True
        self.send_event(
            "installation",
            {
                "action": "deleted",
                "installation": self._installation_json(inst),
                "repositories": [self._repo_brief(r) for r in repos],
                "sender": {"login": inst.account, "id": inst.account_id},
            },
            installation_id=installation_id,
        )

    def rename_repo(self, repo_id: int, name: str, owner: str | None = None) -> None:
        with self._lock:
            repo = self.repos[repo_id]
            repo.name = name
            repo.owner = owner or repo.owner

    def revoke_tokens(self) -> None:
        with self._lock:
            for token in self.tokens.values():
                token.revoked = True

    def expire_tokens(self) -> None:
        with self._lock:
            for token in self.tokens.values():
                token.expires_at = datetime.now(UTC) - timedelta(seconds=1)

    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self.tokens)

    def statuses_for(self, repo_id: int, sha: str) -> list[RecordedStatus]:
        with self._lock:
            return [s for s in self.statuses if s.repo_id == repo_id and s.sha == sha]

    def push(self, repo_id: int, branch: str, before: str, after: str) -> EmuDelivery:
        """Send the `push` event of a push that already happened in the repository (before → after)."""
        repo = self.repos[repo_id]
        commits = _commits(repo.path, before, after)
        head = commits[-1] if commits else {"id": after, "message": "", "timestamp": _iso(datetime.now(UTC))}
        payload = {
            "ref": f"refs/heads/{branch}",
            "before": before,
            "after": after,
            "created": set(before) == {"0"},
            "deleted": False,
            "forced": False,
            "repository": self._repo_json(repo),
            "installation": {"id": repo.installation_id},
            "head_commit": head,
            "commits": commits,
            "pusher": {"name": repo.owner, "email": None},
            "sender": {"login": repo.owner, "id": 1},
        }
        return self.send_event("push", payload, installation_id=repo.installation_id, repository_id=repo.id)

    def send_event(
        self, event: str, payload: dict[str, Any], *, installation_id: int | None, repository_id: int | None = None
    ) -> EmuDelivery:
        """Deliver a signed App webhook, or drop it (a failed delivery) with probability `drop_fraction`."""
        body = json.dumps(payload).encode()
        delivery = EmuDelivery(
            id=self._next_id(),
            guid=str(uuid.uuid4()),
            event=event,
            action=payload.get("action"),
            body=body,
            installation_id=installation_id,
            repository_id=repository_id,
            redelivery=False,
            delivered_at=datetime.now(UTC),
        )
        with self._lock:
            self.deliveries.append(delivery)
            dropped = self._drops.random() < self.drop_fraction
        if dropped:
            delivery.status_code, delivery.status = 0, "failed to connect to host"
        else:
            self._deliver(delivery)
        return delivery

    def _deliver(self, delivery: EmuDelivery) -> None:
        if not self.webhook_url:
            delivery.status_code, delivery.status = 0, "no webhook URL configured"
            return
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/emulator",
            "X-GitHub-Event": delivery.event,
            "X-GitHub-Delivery": delivery.guid,
            "X-GitHub-Hook-ID": "1",
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-GitHub-Hook-Installation-Target-ID": str(self.app_id),
        }
        if self.webhook_secret:
            headers["X-Hub-Signature-256"] = sign(self.webhook_secret.encode(), delivery.body)
        try:
            answer = httpx.post(self.webhook_url, content=delivery.body, headers=headers, timeout=10)
            delivery.status_code = answer.status_code
            delivery.status = "OK" if answer.is_success else f"Invalid HTTP Response: {answer.status_code}"
        except httpx.HTTPError as exc:
            delivery.status_code, delivery.status = 0, f"failed: {type(exc).__name__}"

    # -- the HTTP server ----------------------------------------------------------------------

    async def _asgi(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path = request.url.path
        if path.startswith(GIT_PREFIX):
            body = await request.body()
            response = await asyncio.to_thread(self._git_http, request, body)
        else:
            response = await self._api(request)
        with self._lock:
            self.requests.append((request.method, path, response.status_code))
        await response(scope, receive, send)

    async def _api(self, request: Request) -> Response:
        fault = self.faults.draw()
        if self.faults.slow_s:
            await asyncio.sleep(self.faults.slow_s)
        if fault == "slow":
            await asyncio.sleep(max(self.faults.slow_s, 2.0))
        elif fault == "5xx":
            return self._answer({"message": "Server Error"}, 502)
        elif fault == "rate_limit":
            return self._rate_limited()
        body = await request.body()
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return self._answer({"message": "Problems parsing JSON", "documentation_url": DOCS}, 400)
        for method, pattern, handler in self._routes:
            if method != request.method:
                continue
            match = pattern.fullmatch(request.url.path)
            if match:
                try:
                    return await asyncio.to_thread(handler, self, request, payload, **match.groupdict())
                except _Answer as answer:
                    return self._answer({"message": answer.message, "documentation_url": DOCS}, answer.status)
        return self._answer({"message": "Not Found", "documentation_url": DOCS}, 404)

    def _answer(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        with self._lock:
            self._remaining = max(self._remaining - 1, 0) or RATE_LIMIT
            remaining = self._remaining
        base = {
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-used": str(RATE_LIMIT - remaining),
            "x-ratelimit-reset": str(int(time.time()) + 3600),
            "x-ratelimit-resource": "core",
            "x-github-request-id": uuid.uuid4().hex[:20].upper(),
            "x-github-api-version-selected": "2022-11-28",
        }
        return JSONResponse(data, status_code=status, headers={**base, **(headers or {})})

    def _rate_limited(self) -> Response:
        """Half primary (403, remaining 0, reset soon), half secondary (429 with retry-after)."""
        reset = int(time.time()) + self.faults.retry_after_s
        if self.faults._random.random() < 0.5:
            return JSONResponse(
                {"message": "API rate limit exceeded for installation.", "documentation_url": DOCS},
                status_code=403,
                headers={
                    "x-ratelimit-limit": str(RATE_LIMIT),
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-used": str(RATE_LIMIT),
                    "x-ratelimit-reset": str(reset),
                    "x-ratelimit-resource": "core",
                    "retry-after": str(self.faults.retry_after_s),
                },
            )
        return JSONResponse(
            {"message": "You have exceeded a secondary rate limit.", "documentation_url": DOCS},
            status_code=429,
            headers={"retry-after": str(self.faults.retry_after_s)},
        )

    # -- authentication -----------------------------------------------------------------------

    def _require_jwt(self, request: Request) -> None:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credential:
            raise _Answer(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(
                credential,
                self._public_key,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"]},
                leeway=60,
            )
        except jwt.PyJWTError as exc:
            raise _Answer(401, f"A JSON web token could not be decoded ({type(exc).__name__})") from None
        if str(claims["iss"]) != str(self.app_id):
            raise _Answer(401, "Integration not found")
        if int(claims["exp"]) - int(claims["iat"]) > 11 * 60:
            raise _Answer(401, "Expiration time' claim ('exp') is too far in the future")
        with self._lock:
            self.jwts_seen.append(credential)

    def _require_token(self, request: Request) -> EmuInstallation:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer") or not credential:
            raise _Answer(401, "Requires authentication")
        return self._installation_for(credential)

    def _installation_for(self, credential: str) -> EmuInstallation:
        with self._lock:
            token = self.tokens.get(credential)
            if token is None or token.revoked or token.expires_at <= datetime.now(UTC):
                raise _Answer(401, "Bad credentials")
            inst = self.installations.get(token.installation_id)
        if inst is None:
            raise _Answer(401, "Bad credentials")
        return inst

    def _repo_by_name(self, inst: EmuInstallation | None, owner: str, name: str) -> EmuRepo:
        with self._lock:
            for repo in self.repos.values():
                same = repo.owner.lower() == owner.lower() and repo.name.lower() == name.lower()
                if same and (inst is None or repo.installation_id == inst.id):
                    return repo
        raise _Answer(404, "Not Found")

    def _repo_by_id(self, inst: EmuInstallation, repo_id: str) -> EmuRepo:
        with self._lock:
            repo = self.repos.get(int(repo_id))
        if repo is None or repo.installation_id != inst.id:
            raise _Answer(404, "Not Found")
        return repo

    # -- JSON shapes --------------------------------------------------------------------------

    def _installation_json(self, inst: EmuInstallation) -> dict[str, Any]:
        return {
            "id": inst.id,
            "account": {"login": inst.account, "id": inst.account_id, "type": "Organization"},
            "app_id": self.app_id,
            "target_type": "Organization",
            "repository_selection": "selected",
            "permissions": {"contents": "read", "statuses": "write", "metadata": "read"},
            "events": ["push"],
            "suspended_at": None,
            "access_tokens_url": f"{self.api_url}/app/installations/{inst.id}/access_tokens",
        }

    def clone_url(self, repo: EmuRepo) -> str:
        return f"{self.api_url}{GIT_PREFIX}{repo.full_name}.git"

    def _repo_brief(self, repo: EmuRepo) -> dict[str, Any]:
        return {"id": repo.id, "name": repo.name, "full_name": repo.full_name, "private": repo.private}

    def _repo_json(self, repo: EmuRepo) -> dict[str, Any]:
        return {
            **self._repo_brief(repo),
            "node_id": base64.b64encode(f"R_{repo.id}".encode()).decode(),
            "owner": {"login": repo.owner, "id": 1, "type": "Organization"},
            "html_url": f"{self.api_url}/{repo.full_name}",
            "url": f"{self.api_url}/repos/{repo.full_name}",
            "clone_url": self.clone_url(repo),
            "default_branch": repo.default_branch,
            "visibility": "private" if repo.private else "public",
            "archived": False,
            "fork": False,
        }

    # -- endpoints ----------------------------------------------------------------------------

    def _get_app(self, request: Request, _payload: Any) -> Response:
        self._require_jwt(request)
        return self._answer({"id": self.app_id, "slug": "starforge", "name": "Starforge", "html_url": self.api_url})

    def _list_installations(self, request: Request, _payload: Any) -> Response:
        self._require_jwt(request)
        with self._lock:
            items = [self._installation_json(i) for i in self.installations.values()]
        return self._answer(_page(request, items))

    def _access_token(self, request: Request, _payload: Any, inst_id: str) -> Response:
        self._require_jwt(request)
        with self._lock:
            inst = self.installations.get(int(inst_id))
            if inst is None:
                raise _Answer(404, "Not Found")
            token = "ghs_" + secrets.token_urlsafe(27)
            expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=self.token_ttl_s)
            self.tokens[token] = EmuToken(inst.id, expires)
        return self._answer(
            {
                "token": token,
                "expires_at": _iso(expires),
                "permissions": {"contents": "read", "statuses": "write", "metadata": "read"},
                "repository_selection": "selected",
            },
            201,
        )

    def _repo_installation(self, request: Request, _payload: Any, owner: str, name: str) -> Response:
        self._require_jwt(request)
        repo = self._repo_by_name(None, owner, name)
        with self._lock:
            inst = self.installations.get(repo.installation_id or -1)
        if inst is None:
            raise _Answer(404, "Not Found")
        return self._answer(self._installation_json(inst))

    def _installation_repositories(self, request: Request, _payload: Any) -> Response:
        inst = self._require_token(request)
        with self._lock:
            repos = [self._repo_json(r) for r in self.repos.values() if r.installation_id == inst.id]
        page = _page(request, repos)
        return self._answer({"total_count": len(repos), "repository_selection": "selected", "repositories": page})

    def _get_repo(self, request: Request, _payload: Any, owner: str, name: str) -> Response:
        return self._answer(self._repo_json(self._repo_by_name(self._require_token(request), owner, name)))

    def _get_repo_by_id(self, request: Request, _payload: Any, repo_id: str) -> Response:
        return self._answer(self._repo_json(self._repo_by_id(self._require_token(request), repo_id)))

    def _get_branch(self, request: Request, _payload: Any, owner: str, name: str, branch: str) -> Response:
        repo = self._repo_by_name(self._require_token(request), owner, name)
        sha = _git(repo.path, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}").strip()
        if not sha:
            raise _Answer(404, "Branch not found")
        return self._answer(
            {
                "name": branch,
                "commit": {"sha": sha, "url": f"{self.api_url}/repos/{repo.full_name}/commits/{sha}"},
                "protected": False,
            }
        )

    def _create_status(self, request: Request, payload: Any, owner: str, name: str, sha: str) -> Response:
        repo = self._repo_by_name(self._require_token(request), owner, name)
        if not isinstance(payload, dict) or payload.get("state") not in ("error", "failure", "pending", "success"):
            raise _Answer(422, "Validation Failed: state is not included in the list")
        if not re.fullmatch(r"[0-9a-f]{40}", sha) or not _git(repo.path, "cat-file", "-t", sha).strip() == "commit":
            raise _Answer(422, f"No commit found for SHA: {sha}")
        status = RecordedStatus(
            repo.id,
            sha,
            payload["state"],
            str(payload.get("description") or "")[:140],
            payload.get("target_url"),
            str(payload.get("context") or "default"),
            datetime.now(UTC),
        )
        with self._lock:
            self.statuses.append(status)
            number = len(self.statuses)
        return self._answer(
            {
                "id": number,
                "state": status.state,
                "description": status.description,
                "target_url": status.target_url,
                "context": status.context,
                "created_at": _iso(status.at),
                "updated_at": _iso(status.at),
            },
            201,
        )

    def _list_deliveries(self, request: Request, _payload: Any) -> Response:
        self._require_jwt(request)
        per_page = min(int(request.query_params.get("per_page", "30") or 30), 100)
        cursor = int(request.query_params.get("cursor", "0") or 0)
        with self._lock:
            items = sorted(self.deliveries, key=lambda d: d.id, reverse=True)
        items = [d for d in items if not cursor or d.id < cursor]
        page = items[:per_page]
        headers = {}
        if len(items) > per_page:
            headers["link"] = (
                f'<{self.api_url}/app/hook/deliveries?per_page={per_page}&cursor={page[-1].id}>; rel="next"'
            )
        return self._answer([_delivery_json(d) for d in page], headers=headers)

    def _redeliver(self, request: Request, _payload: Any, delivery_id: str) -> Response:
        self._require_jwt(request)
        with self._lock:
            original = next((d for d in self.deliveries if d.id == int(delivery_id)), None)
        if original is None:
            raise _Answer(404, "Not Found")
        again = EmuDelivery(
            id=self._next_id(),
            guid=original.guid,
            event=original.event,
            action=original.action,
            body=original.body,
            installation_id=original.installation_id,
            repository_id=original.repository_id,
            redelivery=True,
            delivered_at=datetime.now(UTC),
        )
        with self._lock:
            self.deliveries.append(again)
            dropped = self.drop_redeliveries and self._drops.random() < self.drop_fraction
        if dropped:
            again.status_code, again.status = 0, "failed to connect to host"
        else:
            self._deliver(again)
        return self._answer({}, 202)

    _routes: ClassVar[list[tuple[str, re.Pattern[str], Callable[..., Response]]]] = [
        ("GET", re.compile(r"/app"), _get_app),
        ("GET", re.compile(r"/app/installations"), _list_installations),
        ("POST", re.compile(r"/app/installations/(?P<inst_id>\d+)/access_tokens"), _access_token),
        ("GET", re.compile(r"/app/hook/deliveries"), _list_deliveries),
        ("POST", re.compile(r"/app/hook/deliveries/(?P<delivery_id>\d+)/attempts"), _redeliver),
        ("GET", re.compile(r"/installation/repositories"), _installation_repositories),
        ("GET", re.compile(r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/installation"), _repo_installation),
        ("GET", re.compile(r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"), _get_repo),
        ("GET", re.compile(r"/repositories/(?P<repo_id>\d+)"), _get_repo_by_id),
        ("GET", re.compile(r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/branches/(?P<branch>.+)"), _get_branch),
        ("POST", re.compile(r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/statuses/(?P<sha>[^/]+)"), _create_status),
    ]

    # -- git smart HTTP -----------------------------------------------------------------------

    def _git_http(self, request: Request, body: bytes) -> Response:
        """`git http-backend` for one repository, behind installation-token Basic auth for private ones."""
        rest = request.url.path[len(GIT_PREFIX) :]
        match = re.fullmatch(r"([^/]+)/([^/]+?)\.git(/.*)", rest)
        if not match:
            return Response("Not Found\n", 404)
        owner, name, tail = match.groups()
        try:
            repo = self._repo_by_name(None, owner, name)
        except _Answer:
            return Response("Repository not found.\n", 404)
        if tail not in ("/info/refs", "/git-upload-pack"):
            return Response("Forbidden\n", 403)  # read-only remote: no pushes over HTTP
        if repo.private and not self._git_authorized(request, repo):
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

    def _git_authorized(self, request: Request, repo: EmuRepo) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
            inst = self._installation_for(password)
        except (ValueError, _Answer):
            return False
        return user == "x-access-token" and repo.installation_id == inst.id


class ServedApp:
    """An ASGI app under uvicorn in a thread, on a free port of 127.0.0.1 (the emulator, or an API for tests)."""

    def __init__(self, app: Any, *, name: str = "server"):
        self.app = app
        self.name = name
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServedApp:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off", interface="asgi3")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


class _Answer(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _page(request: Request, items: list[Any]) -> list[Any]:
    per_page = min(int(request.query_params.get("per_page", "30") or 30), 100)
    page = max(int(request.query_params.get("page", "1") or 1), 1)
    return items[(page - 1) * per_page : page * per_page]


def _delivery_json(d: EmuDelivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "guid": d.guid,
        "delivered_at": _iso(d.delivered_at),
        "redelivery": d.redelivery,
        "duration": 0.01,
        "status": d.status,
        "status_code": d.status_code,
        "event": d.event,
        "action": d.action,
        "installation_id": d.installation_id,
        "repository_id": d.repository_id,
    }


def _git(path: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else ""


def _commits(path: Path, before: str, after: str) -> list[dict[str, Any]]:
    """The pushed commits, oldest first, as the push payload lists them."""
    span = after if set(before) == {"0"} else f"{before}..{after}"
    out = _git(path, "log", "--reverse", "--max-count=20", "--format=%H%x00%cI%x00%B%x1e", span)
    commits = []
    for record in out.split("\x1e"):
        record = record.strip("\n")
        if not record:
            continue
        sha, stamp, message = record.split("\x00", 2)
        changed = _git(path, "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", sha).split()
        commits.append(
            {"id": sha, "message": message.strip(), "timestamp": stamp, "added": [], "modified": changed, "removed": []}
        )
    return commits
