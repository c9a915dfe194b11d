"""The GitHub App: RS256 JWTs, cached installation tokens, and the few REST calls Starforge makes.

githubkit signs the App's JWTs and speaks to the API; this module keeps installation tokens
(one per installation per process, renewed shortly before they expire or when GitHub answers 401)
and turns GitHub's answers into typed models and classified errors. A token is handed only to the
HTTP client and to git's environment: never put in a URL, a log line or an exception message.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import GitHubException, RateLimitExceeded, RequestFailed, RequestTimeout
from pydantic import BaseModel, ConfigDict

DEFAULT_API_URL = "https://api.github.com"
REFRESH_BEFORE = timedelta(minutes=5)  # a token closer than this to its expiry is renewed before use
_TIMEOUT_S = 15.0


class GitHubAppError(Exception):
    """GitHub refused or could not answer; `status` is the HTTP status (0: no answer), `retry_after` in seconds."""

    def __init__(self, message: str, *, status: int = 0, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return self.status == 0 or self.status >= 500 or self.retry_after is not None


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Account(_Model):
    login: str
    id: int
    type: str = "User"


class Installation(_Model):
    id: int
    account: Account
    repository_selection: str = "all"
    suspended_at: str | None = None


class Repository(_Model):
    id: int
    name: str
    full_name: str
    private: bool = False
    clone_url: str
    default_branch: str = "main"
    archived: bool = False


class Delivery(_Model):
    """One attempt of an App webhook delivery, as GitHub's deliveries API lists it."""

    id: int
    guid: str
    delivered_at: str
    redelivery: bool = False
    status: str
    status_code: int
    event: str
    action: str | None = None
    installation_id: int | None = None
    repository_id: int | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


class SuiteApp(_Model):
    id: int | None = None
    slug: str | None = None
    name: str | None = None


class CheckSuite(_Model):
    """One check suite of a commit, as the checks API lists it."""

    id: int
    head_sha: str
    status: str | None = None
    conclusion: str | None = None
    app: SuiteApp | None = None
    latest_check_runs_count: int | None = None


@dataclass
class _Token:
    value: str
    expires_at: datetime


_tokens: dict[tuple[str, int, int], _Token] = {}
_tokens_lock = threading.Lock()


def load_private_key(value: str) -> str:
    """A PEM key given inline, or the path of a file holding one."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        return text + "\n"
    path = Path(text).expanduser()
    if not path.is_file():
        raise GitHubAppError("the GitHub App private key is neither a PEM key nor the path of a readable file")
    return path.read_text()


def git_auth_config(token: str, clone_url: str) -> dict[str, str]:
    """git config for cloning with an installation token, scoped to the clone URL's scheme, host and port.

    It reaches git in GIT_CONFIG_* environment variables, so the token is never part of the URL, the
    command line, the remote's configuration in `.git/config`, or git's own error messages.
    """
    parts = urlsplit(clone_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise GitHubAppError(f"clone URL scheme {parts.scheme!r} cannot carry an installation token")
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/"
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {f"http.{origin}.extraHeader": f"Authorization: Basic {basic}"}


class GitHubApp:
    """One GitHub App on one API endpoint; cheap to build, opens an HTTP client per call."""

    def __init__(
        self, app_id: int | str, private_key: str, api_url: str = DEFAULT_API_URL, timeout_s: float = _TIMEOUT_S
    ):
        if not str(app_id).strip().isdigit():
            raise GitHubAppError(f"GitHub App id {app_id!r} is not a number")
        self.app_id = int(app_id)
        self._private_key = load_private_key(private_key)
        self.api_url = api_url.rstrip("/")
        self.timeout_s = timeout_s
        self._cache = MemCacheStrategy()  # the JWT is reused per instance, never across keys

    def __repr__(self) -> str:
        return f"GitHubApp(app_id={self.app_id}, api_url={self.api_url!r})"

    # -- clients ------------------------------------------------------------------------------

    def _github(self, auth: Any) -> GitHub:
        return GitHub(
            auth,
            base_url=self.api_url + "/",
            auto_retry=False,  # callers decide: the status sender backs off on its own schedule
            http_cache=False,  # branch heads and deliveries must be fresh
            timeout=self.timeout_s,
            user_agent="starforge",
            cache_strategy=self._cache,
        )

    def _call(self, auth: Any, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(auth, method, path, **kwargs)[0]

    def _request(self, auth: Any, method: str, path: str, **kwargs: Any) -> tuple[Any, httpx.Headers]:
        """One request: (JSON answer, headers); errors become GitHubAppError without any credential in them."""
        try:
            with self._github(auth) as gh:
                response = gh.request(method, path, **kwargs)
                return (response.json() if response.content else None), response.headers
        except RateLimitExceeded as exc:
            raise GitHubAppError(
                f"GitHub rate limit on {method} {path}",
                status=exc.response.status_code,
                retry_after=max(exc.retry_after.total_seconds(), 1.0),
            ) from None
        except RequestFailed as exc:
            raise GitHubAppError(
                f"GitHub answered {exc.response.status_code} to {method} {path}: {_message(exc.response.raw_response)}",
                status=exc.response.status_code,
            ) from None
        except RequestTimeout:
            raise GitHubAppError(f"GitHub did not answer {method} {path} in {self.timeout_s:.0f}s") from None
        except GitHubException as exc:
            cause = exc.exc if hasattr(exc, "exc") else exc
            raise GitHubAppError(f"GitHub could not be reached for {method} {path}: {type(cause).__name__}") from None
        except httpx.HTTPError as exc:
            raise GitHubAppError(f"GitHub could not be reached for {method} {path}: {type(exc).__name__}") from None

    def _as_app(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._call(self._app_auth(), method, path, **kwargs)

    def _app_auth(self) -> AppAuthStrategy:
        return AppAuthStrategy(self.app_id, self._private_key)

    def _as_installation(self, installation_id: int, method: str, path: str, **kwargs: Any) -> Any:
        """Call as the installation; a 401 means the token was revoked: renew it once and try again."""
        token = self.installation_token(installation_id)
        try:
            return self._call(TokenAuthStrategy(token), method, path, **kwargs)
        except GitHubAppError as exc:
            if exc.status != 401:
                raise
        self.forget_token(installation_id, token)
        return self._call(TokenAuthStrategy(self.installation_token(installation_id)), method, path, **kwargs)

    # -- tokens -------------------------------------------------------------------------------

    def installation_token(self, installation_id: int) -> str:
        """A token of the installation, reused until REFRESH_BEFORE its expiry."""
        key = (self.api_url, self.app_id, int(installation_id))
        with _tokens_lock:
            cached = _tokens.get(key)
        if cached is not None and cached.expires_at - REFRESH_BEFORE > datetime.now(UTC):
            return cached.value
        data = self._as_app("POST", f"/app/installations/{int(installation_id)}/access_tokens")
        if not isinstance(data, dict) or not isinstance(data.get("token"), str) or not data.get("expires_at"):
            raise GitHubAppError(f"GitHub's access token answer for installation {installation_id} is malformed")
        token = _Token(data["token"], _parse_time(data["expires_at"]))
        with _tokens_lock:
            _tokens[key] = token
        return token.value

    def forget_token(self, installation_id: int, token: str | None = None) -> None:
        """Drop a cached token (all of them for the installation when `token` is None)."""
        key = (self.api_url, self.app_id, int(installation_id))
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached is not None and (token is None or cached.value == token):
                del _tokens[key]

    # -- App-level calls (JWT) ----------------------------------------------------------------

    def app_info(self) -> dict[str, Any]:
        data = self._as_app("GET", "/app")
        return {k: data.get(k) for k in ("id", "slug", "name", "html_url") if isinstance(data, dict)}

    def installations(self) -> list[Installation]:
        return [Installation.model_validate(i) for i in self._pages(self._as_app, "/app/installations")]

    def repo_installation(self, full_name: str) -> int:
        """The installation that serves `owner/name` (404 when the App is not installed there)."""
        data = self._as_app("GET", f"/repos/{_repo_path(full_name)}/installation")
        return int(data["id"])

    def deliveries(self, per_page: int = 100, max_pages: int = 10) -> list[Delivery]:
        """The App's recent webhook deliveries, newest first."""
        out: list[Delivery] = []
        cursor: str | None = None
        for _ in range(max_pages):
            params: dict[str, Any] = {"per_page": per_page}
            if cursor:
                params["cursor"] = cursor
            data, headers = self._request(self._app_auth(), "GET", "/app/hook/deliveries", params=params)
            out += [Delivery.model_validate(d) for d in data or []]
            cursor = _next_cursor(headers.get("link", ""))
            if not cursor:
                break
        return out

    def redeliver(self, delivery_id: int) -> None:
        self._as_app("POST", f"/app/hook/deliveries/{int(delivery_id)}/attempts")

    # -- installation calls -------------------------------------------------------------------

    def installation_repositories(self, installation_id: int) -> list[Repository]:
        repos: list[Repository] = []
        page = 1
        while True:
            data = self._as_installation(
                installation_id, "GET", "/installation/repositories", params={"per_page": 100, "page": page}
            )
            batch = data.get("repositories", []) if isinstance(data, dict) else []
            repos += [Repository.model_validate(r) for r in batch]
            if len(batch) < 100:
                return repos
            page += 1

    def repository(self, installation_id: int, full_name: str) -> Repository:
        return Repository.model_validate(
            self._as_installation(installation_id, "GET", f"/repos/{_repo_path(full_name)}")
        )

    def repository_by_id(self, installation_id: int, repo_id: int) -> Repository:
        """Repositories are followed by id: a rename or transfer changes the name, not the id."""
        return Repository.model_validate(self._as_installation(installation_id, "GET", f"/repositories/{int(repo_id)}"))

    def branch_head(self, installation_id: int, full_name: str, branch: str) -> str | None:
        """The commit a branch points at, or None when the branch does not exist."""
        try:
            data = self._as_installation(
                installation_id, "GET", f"/repos/{_repo_path(full_name)}/branches/{quote(branch, safe='')}"
            )
        except GitHubAppError as exc:
            if exc.status == 404:
                return None
            raise
        return str(data["commit"]["sha"])

    def check_suites(self, installation_id: int, full_name: str, sha: str, max_pages: int = 10) -> list[CheckSuite]:
        """Every check suite GitHub reports for the commit (checks:read), oldest first."""
        suites: list[CheckSuite] = []
        path = f"/repos/{_repo_path(full_name)}/commits/{quote(sha, safe='')}/check-suites"
        for number in range(1, max_pages + 1):
            data = self._as_installation(installation_id, "GET", path, params={"per_page": 100, "page": number})
            batch = data.get("check_suites") if isinstance(data, dict) else None
            if not isinstance(batch, list):
                raise GitHubAppError(f"GitHub's check suites answer for {sha[:12]} is malformed")
            try:
                suites += [CheckSuite.model_validate(s) for s in batch]
            except ValueError:
                raise GitHubAppError(f"GitHub's check suites answer for {sha[:12]} is malformed") from None
            if len(batch) < 100:
                break
        return suites

    def create_status(
        self,
        installation_id: int,
        full_name: str,
        sha: str,
        state: str,
        *,
        description: str,
        target_url: str | None,
        context: str,
    ) -> None:
        body: dict[str, Any] = {"state": state, "description": description[:140], "context": context}
        if target_url:
            body["target_url"] = target_url
        self._as_installation(installation_id, "POST", f"/repos/{_repo_path(full_name)}/statuses/{sha}", json=body)

    def create_deployment(self, installation_id: int, full_name: str, body: dict[str, Any]) -> int:
        """A new deployment of a ref; its id. A 202 (GitHub merged the default branch first) creates none."""
        data = self._as_installation(installation_id, "POST", f"/repos/{_repo_path(full_name)}/deployments", json=body)
        if not isinstance(data, dict) or not isinstance(data.get("id"), int):
            raise GitHubAppError(f"GitHub created no deployment: {str((data or {}).get('message', ''))[:200]}")
        return int(data["id"])

    def deployments(self, installation_id: int, full_name: str, *, ref: str, environment: str) -> list[dict[str, Any]]:
        """The deployments of a ref to an environment, newest first (the first page of 100)."""
        data = self._as_installation(
            installation_id,
            "GET",
            f"/repos/{_repo_path(full_name)}/deployments",
            params={"ref": ref, "environment": environment, "per_page": 100},
        )
        return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []

    def create_deployment_status(
        self,
        installation_id: int,
        full_name: str,
        deployment_id: int,
        state: str,
        *,
        description: str,
        log_url: str | None = None,
        environment_url: str | None = None,
    ) -> None:
        body: dict[str, Any] = {"state": state, "description": description[:140]}
        if log_url:
            body["log_url"] = log_url
        if environment_url:
            body["environment_url"] = environment_url
        path = f"/repos/{_repo_path(full_name)}/deployments/{int(deployment_id)}/statuses"
        self._as_installation(installation_id, "POST", path, json=body)

    def deployment_states(self, installation_id: int, full_name: str, deployment_id: int) -> list[str]:
        """The states of a deployment's statuses, newest first (the first page of 100)."""
        path = f"/repos/{_repo_path(full_name)}/deployments/{int(deployment_id)}/statuses"
        data = self._as_installation(installation_id, "GET", path, params={"per_page": 100})
        return [str(s.get("state")) for s in data if isinstance(s, dict)] if isinstance(data, list) else []

    def clone_config(self, installation_id: int, clone_url: str) -> dict[str, str]:
        return git_auth_config(self.installation_token(installation_id), clone_url)

    # -- helpers ------------------------------------------------------------------------------

    def _pages(self, call: Any, path: str) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            batch = call("GET", path, params={"per_page": 100, "page": page})
            if not isinstance(batch, list):
                return
            yield from batch
            if len(batch) < 100:
                return
            page += 1


def _repo_path(full_name: str) -> str:
    owner, sep, name = full_name.partition("/")
    if not sep or not owner or not name or "/" in name:
        raise GitHubAppError(f"{full_name!r} is not owner/name")
    return f"{quote(owner, safe='')}/{quote(name, safe='')}"


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _next_cursor(link: str) -> str | None:
    for part in link.split(","):
        if 'rel="next"' in part and "cursor=" in part:
            return part.split("cursor=", 1)[1].split("&", 1)[0].split(">", 1)[0]
    return None


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase or "no message"
    return str(data.get("message", "no message"))[:200] if isinstance(data, dict) else "no message"
