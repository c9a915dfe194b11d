"""The App's credentials as GitHub checks them: RS256 JWTs, the installation tokens it mints, the App endpoints."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import Response

from .answers import Answer, answer, page
from .records import EmuInstallation, EmuToken, iso

if TYPE_CHECKING:
    from .emulator import GitHubEmulator

PERMISSIONS = {"contents": "read", "statuses": "write", "checks": "read", "deployments": "write", "metadata": "read"}


def new_private_key() -> str:
    """A fresh RSA key in PEM, like the one GitHub lets an App owner download."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


def public_key(private_key: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_private_key(private_key.encode(), None).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("a GitHub App's private key is an RSA key")
    return key


def require_jwt(emu: GitHubEmulator, request: Request) -> None:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential:
        raise Answer(401, "A JSON web token could not be decoded")
    try:
        claims = jwt.decode(
            credential,
            emu._public_key,
            algorithms=["RS256"],
            options={"require": ["iat", "exp", "iss"]},
            leeway=60,
        )
    except jwt.PyJWTError as exc:
        raise Answer(401, f"A JSON web token could not be decoded ({type(exc).__name__})") from None
    if str(claims["iss"]) != str(emu.app_id):
        raise Answer(401, "Integration not found")
    if int(claims["exp"]) - int(claims["iat"]) > 11 * 60:
        raise Answer(401, "Expiration time' claim ('exp') is too far in the future")
    with emu._lock:
        emu.jwts_seen.append(credential)


def require_token(emu: GitHubEmulator, request: Request) -> EmuInstallation:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() not in ("token", "bearer") or not credential:
        raise Answer(401, "Requires authentication")
    return installation_for(emu, credential)


def installation_for(emu: GitHubEmulator, credential: str) -> EmuInstallation:
    """The installation a live token was minted for."""
    with emu._lock:
        token = emu.tokens.get(credential)
        if token is None or token.revoked or token.expires_at <= datetime.now(UTC):
            raise Answer(401, "Bad credentials")
        inst = emu.installations.get(token.installation_id)
    if inst is None:
        raise Answer(401, "Bad credentials")
    return inst


def installation_json(emu: GitHubEmulator, inst: EmuInstallation) -> dict[str, Any]:
    return {
        "id": inst.id,
        "account": {"login": inst.account, "id": inst.account_id, "type": "Organization"},
        "app_id": emu.app_id,
        "target_type": "Organization",
        "repository_selection": "selected",
        "permissions": PERMISSIONS,
        "events": ["push", "check_suite"],
        "suspended_at": None,
        "access_tokens_url": f"{emu.api_url}/app/installations/{inst.id}/access_tokens",
    }


def get_app(emu: GitHubEmulator, request: Request, _payload: Any) -> Response:
    require_jwt(emu, request)
    return answer(emu.rate_limit, {"id": emu.app_id, "slug": "starforge", "name": "Starforge", "html_url": emu.api_url})


def list_installations(emu: GitHubEmulator, request: Request, _payload: Any) -> Response:
    require_jwt(emu, request)
    with emu._lock:
        items = [installation_json(emu, i) for i in emu.installations.values()]
    return answer(emu.rate_limit, page(request, items))


def access_token(emu: GitHubEmulator, request: Request, _payload: Any, inst_id: str) -> Response:
    require_jwt(emu, request)
    with emu._lock:
        inst = emu.installations.get(int(inst_id))
        if inst is None:
            raise Answer(404, "Not Found")
        token = "ghs_" + secrets.token_urlsafe(27)
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=emu.token_ttl_s)
        emu.tokens[token] = EmuToken(inst.id, expires)
    body = {"token": token, "expires_at": iso(expires), "permissions": PERMISSIONS, "repository_selection": "selected"}
    return answer(emu.rate_limit, body, 201)
