"""Registry side of a build: push through a Docker Engine and ask the registry for manifest digests.

Public API:
    RegistryAuth(username, password, server="")       credentials; repr never shows the password
    RegistryAuth.header() -> str                       the base64 X-Registry-Auth value
    push_image(docker_sock, image, auth=None, on_line=None) -> str
        POST /v1.41/images/{name}/push?tag=T on the Docker socket; on_line gets each progress
        line; returns the pushed manifest digest (the stream's aux.Digest).
    manifest_digest(image, auth=None, insecure=None) -> str
        HEAD/GET /v2/<repo>/manifests/<tag> with OCI and Docker Accept headers -> Docker-Content-Digest.
    remove_image(docker_sock, image) -> None          untag an image in the Docker daemon's store
Errors are `core.errors` kinds: unreachable daemon/registry is transient, refusals permanent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
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


def _bearer_token(client: httpx.Client, challenge: str, auth: RegistryAuth | None) -> str:
    """Answer a `Bearer realm=...,service=...,scope=...` challenge with a token."""
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = params.pop("realm", "")
    if not realm:
        raise PermanentBuildError(f"registry sent an unusable auth challenge: {challenge}")
    basic = (auth.username, auth.password) if auth else None
    response = client.get(realm, params=params, auth=basic)
    if response.status_code != 200:
        raise PermanentBuildError(f"registry token request failed ({response.status_code})")
    body = response.json()
    return body.get("token") or body["access_token"]


def manifest_digest(
    image: str, auth: RegistryAuth | None = None, insecure: bool | None = None, timeout: float = 30.0
) -> str:
    """The registry's own digest of a tag's manifest, as pulling by digest would verify it."""
    ref = ImageRef.parse(image)
    plain_http = _is_local(ref.registry) if insecure is None else insecure
    url = f"{'http' if plain_http else 'https'}://{ref.registry}/v2/{ref.repository}/manifests/{ref.digest or ref.tag}"
    headers = {"Accept": MANIFEST_ACCEPT}
    try:
        with httpx.Client(timeout=timeout, verify=not plain_http, trust_env=not _is_local(ref.registry)) as client:
            response = client.head(url, headers=headers)
            if response.status_code == 401:
                challenge = response.headers.get("WWW-Authenticate", "")
                if challenge.lower().startswith("bearer"):
                    headers["Authorization"] = f"Bearer {_bearer_token(client, challenge, auth)}"
                elif auth:
                    token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
                    headers["Authorization"] = f"Basic {token}"
                response = client.head(url, headers=headers)
            if response.status_code == 200 and response.headers.get("Docker-Content-Digest"):
                return response.headers["Docker-Content-Digest"]
            if response.status_code == 200:
                body = client.get(url, headers=headers)
                body.raise_for_status()
                return body.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body.content).hexdigest()
    except httpx.TransportError as exc:
        raise TransientBuildError(f"registry {ref.registry} unreachable: {exc}") from exc
    kind = TransientBuildError if response.status_code >= 500 else PermanentBuildError
    raise kind(f"registry has no manifest for {ref.ref} ({response.status_code})")
