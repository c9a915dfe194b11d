"""Registries that want credentials: real docker-registry processes with htpasswd or token auth, and the token server
a token registry trusts (Docker's token protocol, JWTs with an x5c chain)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from starforge_dag.buildkit.registry import RegistryAuth
from starforge_dag.dev.stack import free_port

REGISTRY_BIN = "/usr/bin/docker-registry"
TOKEN_ISSUER = "starforge-test-issuer"


@contextmanager
def _serve_registry(root: Path, host: str, auth: str, startup_timeout_s: float = 30.0) -> Iterator[None]:
    """docker-registry on `host` with storage under `root` and the given `auth:` section; stopped on exit."""
    (root / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  delete:\n    enabled: true\n  filesystem:\n"
        f"    rootdirectory: {root}/data\nhttp:\n  addr: {host}\nauth:\n{auth}"
    )
    with (root / "registry.log").open("w") as log:
        process = subprocess.Popen([REGISTRY_BIN, "serve", str(root / "config.yml")], stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + startup_timeout_s
            while True:  # the registry has no readiness signal but its first answer
                try:
                    if httpx.get(f"http://{host}/v2/", timeout=1, trust_env=False).status_code == 401:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline and process.poll() is None, (root / "registry.log").read_text()
                time.sleep(0.1)
            yield
        finally:
            process.terminate()
            process.wait(timeout=30)


@dataclass(frozen=True)
class PasswordRegistry:
    host: str
    username: str
    password: str


@contextmanager
def password_registry(root: Path, startup_timeout_s: float = 30.0) -> Iterator[PasswordRegistry]:
    """Serve a registry under `root` that answers 401 to anyone without the password; stopped on exit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # bcrypt, which docker-registry's htpasswd wants, without another dependency

    registry = PasswordRegistry(f"127.0.0.1:{free_port()}", "robot", uuid.uuid4().hex)
    (root / "htpasswd").write_text(
        f"{registry.username}:{crypt.crypt(registry.password, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n"
    )
    auth = f"  htpasswd:\n    realm: starforge-test\n    path: {root}/htpasswd\n"
    with _serve_registry(root, registry.host, auth, startup_timeout_s):
        yield registry


@dataclass
class TokenRegistry:
    """A docker-registry that accepts only bearer tokens, and the token server it trusts."""

    host: str
    realm: str
    service: str
    username: str
    password: str = field(repr=False)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    @property
    def auth(self) -> RegistryAuth:
        return RegistryAuth(self.username, self.password, self.host)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signing_identity(root: Path) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A key and self-signed certificate: the registry trusts tokens whose x5c chain ends in it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "starforge test token issuer")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (root / "token-issuer.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def token_server(registry: TokenRegistry, issuer: str, key: rsa.RSAPrivateKey, cert: x509.Certificate):
    """Docker's token protocol: GET /token?service=&scope= with basic auth -> a JWT granting the scopes."""
    x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            header = self.headers.get("Authorization", "")
            registry.token_requests.append(
                {"path": self.path, "authorization": header, "user_agent": self.headers.get("User-Agent", "")}
            )
            user = None
            if header.startswith("Basic "):
                name, _, secret = base64.b64decode(header[6:]).decode().partition(":")
                if (name, secret) != (registry.username, registry.password):
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}')
                    return
                user = name
            access = []
            for scope in query.get("scope", []):
                kind, _, rest = scope.partition(":")
                repo, _, actions = rest.rpartition(":")
                if user is not None and kind == "repository":
                    access.append({"type": kind, "name": repo, "actions": actions.split(",")})
            now = int(time.time())
            claims = {
                "iss": issuer,
                "sub": user or "",
                "aud": query.get("service", [""])[0],
                "exp": now + 300,
                "nbf": now - 10,
                "iat": now,
                "jti": uuid.uuid4().hex,
                "access": access,
            }
            head = _b64url(json.dumps({"typ": "JWT", "alg": "RS256", "x5c": [x5c]}).encode())
            body = _b64url(json.dumps(claims).encode())
            signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
            token = f"{head}.{body}.{_b64url(signature)}"
            issued = datetime.fromtimestamp(now, UTC).isoformat()
            answer = {"token": token, "access_token": token, "expires_in": 300, "issued_at": issued}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@contextmanager
def token_registry(root: Path) -> Iterator[TokenRegistry]:
    """Serve a registry under `root` with `auth: token`, trusting a token server started here; both stopped on exit."""
    key, cert = signing_identity(root)
    registry = TokenRegistry(f"127.0.0.1:{free_port()}", "", "starforge-test-registry", "robot", uuid.uuid4().hex)
    server = token_server(registry, TOKEN_ISSUER, key, cert)
    registry.realm = f"http://127.0.0.1:{server.server_port}/token"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    auth = (
        f"  token:\n    realm: {registry.realm}\n    service: {registry.service}\n"
        f"    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {root}/token-issuer.pem\n"
    )
    try:
        with _serve_registry(root, registry.host, auth):
            yield registry
    finally:
        server.shutdown()
        server.server_close()


REGISTRY = "127.0.0.1:5000"  # the shared local registry of scripts/services.sh


def push_manifest(repository: str, salt: str) -> str:
    """Put a tiny real image (config blob + manifest) into the local registry; returns the manifest digest."""
    base = f"http://{REGISTRY}/v2/{repository}"
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {"salt": salt}},
        }
    ).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    with httpx.Client(trust_env=False, timeout=30) as client:
        start = client.post(f"{base}/blobs/uploads/")
        assert start.status_code == 202, start.text
        location = start.headers["Location"]
        location = location if location.startswith("http") else f"http://{REGISTRY}{location}"
        sep = "&" if "?" in location else "?"
        put = client.put(
            f"{location}{sep}digest={config_digest}",
            content=config,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert put.status_code == 201, put.text
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config),
                },
                "layers": [],
            }
        ).encode()
        response = client.put(
            f"{base}/manifests/{salt}",
            content=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert response.status_code == 201, response.text
        return response.headers["Docker-Content-Digest"]


def manifest_exists(repository: str, digest: str) -> bool:
    with httpx.Client(trust_env=False, timeout=30) as client:
        response = client.head(
            f"http://{REGISTRY}/v2/{repository}/manifests/{digest}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
    return response.status_code == 200
