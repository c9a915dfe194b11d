"""Certificates of one build's machine: Depot hands every build its own CA and client certificate for mTLS."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .records import now


@dataclass(frozen=True)
class Certs:
    ca: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes


def _issue(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: Any, **kind: Any) -> bytes:
    issued_at = now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued_at - dt.timedelta(minutes=5))
        .not_valid_after(issued_at + dt.timedelta(days=1))
    )
    if kind.get("ca"):
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if kind.get("server") else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if kind.get("server"):
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_certs(server_name: str, client_name: str) -> Certs:
    """A CA of one build's machine, its server certificate and the one client certificate it accepts."""
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"depot emulator CA {client_name}")])
    ca = _issue(f"depot emulator CA {client_name}", ca_key, ca_name, ca_key, ca=True)
    server = _issue(server_name, server_key, ca_name, ca_key, server=True)
    client = _issue(client_name, client_key, ca_name, ca_key)
    return Certs(ca, server, _key_pem(server_key), client, _key_pem(client_key))
