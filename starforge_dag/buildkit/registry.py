"""Registry side of a build: push through a Docker Engine and ask the registry for manifest digests.

Errors are `core.errors` kinds: unreachable daemon/registry is transient, refusals permanent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

import httpx

from ..core.errors import PermanentBuildError, TransientBuildError
from ..core.models import ImageRef

ENGINE_API = "v1.41"
MANIFEST_ACCEPT = (
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json"
)
_TRANSIENT_PUSH = re.compile(
    r"connection refused|connection reset|i/o timeout|timeout|EOF|temporar|503|502|504|too many requests|429",
    re.IGNORECASE,
)
_QUIET_STATUSES = {"Pushing", "Waiting", "Preparing"}


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry; kept out of logs and reprs."""

    username: str
    password: str = field(repr=False)
    server: str = ""

    def header(self) -> str:
        payload = {"username": self.username, "password": self.password, "serveraddress": self.server}
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def _engine(docker_sock: str, timeout: float | None) -> httpx.Client:
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=docker_sock), base_url="http://docker", timeout=timeout, trust_env=False
    )


def _is_local(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0][1:]
    return name in ("localhost", "::1") or name.startswith("127.")


def push_image(
    docker_sock: str,
    image: str,
    auth: RegistryAuth | None = None,
    on_line: Callable[[str], None] | None = None,
    timeout: float | None = 600.0,
) -> str:
    """Push a daemon-stored image and return the manifest digest the registry accepted."""
    ref = ImageRef.parse(image)
    headers = {"X-Registry-Auth": auth.header() if auth else base64.b64encode(b"{}").decode()}
    url = f"/{ENGINE_API}/images/{quote(ref.name, safe='/:')}/push"
    digest: str | None = None
    try:
        with (
            _engine(docker_sock, timeout) as engine,
            engine.stream("POST", url, params={"tag": ref.tag}, headers=headers) as response,
        ):
            if response.status_code != 200:
                body = response.read().decode(errors="replace").strip()
                kind = TransientBuildError if response.status_code >= 500 else PermanentBuildError
                raise kind(
                    f"push of {ref.ref} refused by the Docker daemon ({response.status_code}): {body}", step="push"
                )
            for raw in response.iter_lines():
                if not raw.strip():
                    continue
                event = json.loads(raw)
                if "error" in event or "errorDetail" in event:
                    message = event.get("errorDetail", {}).get("message") or event.get("error", "")
                    kind = TransientBuildError if _TRANSIENT_PUSH.search(message) else PermanentBuildError
                    raise kind(f"push of {ref.ref} failed: {message}", step="push")
                aux = event.get("aux") or {}
                if aux.get("Digest"):
                    digest = aux["Digest"]
                line = _progress_line(event)
                if line and on_line:
                    on_line(line)
    except httpx.TransportError as exc:
        raise TransientBuildError(f"Docker daemon unreachable while pushing {ref.ref}: {exc}", step="push") from exc
    if not digest:
        raise PermanentBuildError(f"push of {ref.ref} reported no digest", step="push")
    return digest


def _progress_line(event: dict) -> str | None:
    """One readable line per push event; byte-level progress updates are dropped."""
    status = event.get("status")
    if not status or status in _QUIET_STATUSES:
        return None
    return f"{event['id']}: {status}" if event.get("id") else status


def remove_image(docker_sock: str, image: str) -> None:
    """Untag an image in the daemon's store; layers still used by other images stay."""
    try:
        with _engine(docker_sock, 60.0) as engine:
            response = engine.delete(f"/{ENGINE_API}/images/{quote(image, safe='/:@')}")
    except httpx.TransportError as exc:
        raise TransientBuildError(f"Docker daemon unreachable while removing {image}: {exc}") from exc
    if response.status_code not in (200, 404):
        raise PermanentBuildError(f"removing {image} failed ({response.status_code}): {response.text.strip()}")


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_DEFAULT_TOKEN_LIFETIME_S = 60


@dataclass(frozen=True)
class Challenge:
    """A registry's `WWW-Authenticate` answer: `Basic realm=...` or `Bearer realm=...,service=...,scope=...`."""

    scheme: str
    params: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> Challenge | None:
        scheme, _, rest = header.strip().partition(" ")
        if not scheme:
            return None
        return cls(scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest)))


@dataclass(frozen=True)
class Token:
    """A bearer token for one scope set; `expires_in` seconds after `issued_at` (unix seconds)."""

    token: str = field(repr=False)
    expires_in: int
    issued_at: int

    @property
    def fresh(self) -> bool:
        return time.time() < self.issued_at + self.expires_in * 0.9


class RegistryClient:
    """The Docker Registry v2 API with Basic or Bearer-token auth (the token fetched with basic credentials).

    Credentials go in an Authorization header only, never in a URL, a log line or an error message.
    Tokens are cached per (realm, service, scopes) until 90% of their lifetime has passed.
    """

    def __init__(
        self,
        auth: RegistryAuth | Mapping[str, RegistryAuth] | None = None,
        *,
        insecure: bool | None = None,
        timeout: float = 30.0,
    ):
        self._auth = auth
        self._insecure = insecure
        self._timeout = timeout
        self._tokens: dict[tuple[str, str, tuple[str, ...]], Token] = {}
        self._realms: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def auth_for(self, host: str) -> RegistryAuth | None:
        """The credentials for a registry host (one RegistryAuth applies to every host)."""
        if self._auth is None or isinstance(self._auth, RegistryAuth):
            return self._auth
        return self._auth.get(host)

    def _http(self, host: str) -> httpx.Client:
        plain = _is_local(host) if self._insecure is None else self._insecure
        return httpx.Client(timeout=self._timeout, verify=not plain, trust_env=not _is_local(host))

    def _base(self, host: str) -> str:
        plain = _is_local(host) if self._insecure is None else self._insecure
        return f"{'http' if plain else 'https'}://{host}"

    def token_realm(self, host: str) -> tuple[str, str]:
        """The (realm, service) the registry itself names in its Bearer challenge on /v2/ (cached per host)."""
        with self._lock:
            known = self._realms.get(host)
        if known is not None:
            return known
        try:
            with self._http(host) as client:
                response = client.get(f"{self._base(host)}/v2/")
        except httpx.TransportError as exc:
            raise TransientBuildError(f"registry {host} unreachable: {type(exc).__name__}") from None
        challenge = Challenge.parse(response.headers.get("WWW-Authenticate", ""))
        if response.status_code != 401 or challenge is None or challenge.scheme != "bearer":
            raise PermanentBuildError(f"registry {host} does not use token auth")
        found = (challenge.params.get("realm", ""), challenge.params.get("service", ""))
        with self._lock:
            self._realms[host] = found
        return found

    def fetch_token(self, host: str, realm: str, service: str, scopes: Sequence[str]) -> Token:
        """A token for `scopes` from the registry's token realm, with the host's credentials (cached)."""
        key = (realm, service, tuple(sorted(set(scopes))))
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and cached.fresh:
            return cached
        if not realm.startswith(("https://", "http://")):
            raise PermanentBuildError(f"registry {host} named an unusable token realm")
        auth = self.auth_for(host)
        params: list[tuple[str, str | int | float | bool | None]] = [("service", service)] if service else []
        params += [("scope", scope) for scope in key[2]]
        try:
            with httpx.Client(timeout=self._timeout, trust_env=not _is_local(host)) as client:
                response = client.get(realm, params=params, auth=(auth.username, auth.password) if auth else None)
        except httpx.TransportError as exc:
            raise TransientBuildError(f"token service of registry {host} unreachable: {type(exc).__name__}") from None
        if response.status_code in (401, 403):
            who = f"user {auth.username!r}" if auth else "anonymous access"
            raise PermanentBuildError(
                f"registry {host} refused the credentials ({who}) at its token service ({response.status_code})"
            )
        if response.status_code != 200:
            kind = TransientBuildError if response.status_code >= 500 else PermanentBuildError
            raise kind(f"token request to registry {host} failed ({response.status_code})")
        try:
            body = response.json()
            value = body.get("token") or body["access_token"]
        except (ValueError, KeyError, AttributeError):
            raise PermanentBuildError(f"token service of registry {host} answered without a token") from None
        issued = body.get("issued_at")
        try:
            issued_at = int(datetime.fromisoformat(issued.replace("Z", "+00:00")).timestamp()) if issued else 0
        except (AttributeError, ValueError):
            issued_at = 0
        token = Token(value, int(body.get("expires_in") or _DEFAULT_TOKEN_LIFETIME_S), issued_at or int(time.time()))
        with self._lock:
            self._tokens[key] = token
        return token

    def _authorization(self, host: str, challenge: Challenge | None, scope: str) -> str | None:
        if challenge is None:
            return None
        auth = self.auth_for(host)
        if challenge.scheme == "bearer":
            scopes = [challenge.params.get("scope") or scope]
            token = self.fetch_token(
                host, challenge.params.get("realm", ""), challenge.params.get("service", ""), scopes
            )
            return f"Bearer {token.token}"
        if challenge.scheme == "basic" and auth is not None:
            return "Basic " + base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
        return None

    def _authorized(
        self, client: httpx.Client, method: str, url: str, headers: dict[str, str], ref: ImageRef, action: str
    ) -> httpx.Response:
        """Send once; on a 401, answer the registry's challenge (Basic, or a Bearer token for its scope) and resend."""
        host = ref.registry
        response = client.request(method, url, headers=headers)
        if response.status_code != 401:
            return response
        challenge = Challenge.parse(response.headers.get("WWW-Authenticate", ""))
        authorization = self._authorization(host, challenge, f"repository:{ref.repository}:{action}")
        if authorization is None:
            raise PermanentBuildError(f"registry {host} wants credentials for {ref.ref} and none are set")
        headers["Authorization"] = authorization
        response = client.request(method, url, headers=headers)
        if response.status_code in (401, 403):
            auth = self.auth_for(host)
            who = f"user {auth.username!r}" if auth else "anonymous access"
            raise PermanentBuildError(
                f"registry {host} refused the credentials ({who}) for {ref.ref} ({response.status_code})"
            )
        return response

    def manifest_digest(self, image: str | ImageRef) -> str:
        """The registry's own digest of a tag's manifest (Docker-Content-Digest), as a pull by digest verifies it."""
        ref = image if isinstance(image, ImageRef) else ImageRef.parse(image)
        host = ref.registry
        url = f"{self._base(host)}/v2/{ref.repository}/manifests/{ref.digest or ref.tag}"
        headers = {"Accept": MANIFEST_ACCEPT}
        try:
            with self._http(host) as client:
                response = self._authorized(client, "HEAD", url, headers, ref, "pull")
                if response.status_code == 200 and response.headers.get("Docker-Content-Digest"):
                    return response.headers["Docker-Content-Digest"]
                if response.status_code == 200:
                    body = client.get(url, headers=headers)
                    if body.status_code == 200:
                        digest = body.headers.get("Docker-Content-Digest")
                        return digest or "sha256:" + hashlib.sha256(body.content).hexdigest()
                    response = body
        except httpx.TransportError as exc:
            raise TransientBuildError(f"registry {host} unreachable: {type(exc).__name__}: {exc}") from None
        if response.status_code == 404:
            raise PermanentBuildError(f"registry has no manifest for {ref.ref} (404)")
        kind = (
            TransientBuildError if response.status_code >= 500 or response.status_code == 429 else PermanentBuildError
        )
        raise kind(f"registry has no manifest for {ref.ref} ({response.status_code})")

    def delete_manifest(self, image: str | ImageRef) -> bool:
        """`DELETE /v2/<name>/manifests/<digest>`: True if deleted, False if it was already gone."""
        ref = image if isinstance(image, ImageRef) else ImageRef.parse(image)
        if not ref.digest:
            raise ValueError(f"{ref.ref} is not pinned by digest")
        host = ref.registry
        url = f"{self._base(host)}/v2/{ref.repository}/manifests/{ref.digest}"
        try:
            with self._http(host) as client:
                response = self._authorized(client, "DELETE", url, {"Accept": MANIFEST_ACCEPT}, ref, "delete")
        except httpx.TransportError as exc:
            raise TransientBuildError(f"registry {host} unreachable: {type(exc).__name__}: {exc}") from None
        if response.status_code in (200, 202):
            return True
        if response.status_code == 404:
            return False
        if response.status_code == 405:
            raise PermanentBuildError(f"registry {host} has deletion disabled (storage.delete.enabled)")
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientBuildError(f"registry answered {response.status_code} deleting {ref.ref}")
        raise PermanentBuildError(
            f"registry refused to delete {ref.ref} ({response.status_code}): {response.text[:200]}"
        )


def manifest_digest(
    image: str, auth: RegistryAuth | None = None, insecure: bool | None = None, timeout: float = 30.0
) -> str:
    """The registry's own digest of a tag's manifest, as pulling by digest would verify it."""
    return RegistryClient(auth, insecure=insecure, timeout=timeout).manifest_digest(image)
