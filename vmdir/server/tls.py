"""TLS for LDAPS and StartTLS: the node's certificate (self-signed at first start
until the CA exists, or configured files) and optional client-certificate checking
for SASL EXTERNAL."""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def ensure_self_signed(cert_path: str, key_path: str, hostnames: list[str]) -> bool:
    """Create a self-signed server certificate if ``cert_path`` does not exist. Returns True if created."""
    if os.path.exists(cert_path) and os.path.exists(key_path):
        return False
    os.makedirs(os.path.dirname(cert_path), exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    sans: list[x509.GeneralName] = []
    for h in hostnames:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return True


def server_options(cert_path: str, key_path: str, client_ca_path: str | None = None) -> Any:
    """Twisted TLS options; client certificates are requested (not required) when a CA file is set."""
    from OpenSSL import crypto
    from twisted.internet import ssl

    with open(cert_path, "rb") as f:
        cert = crypto.load_certificate(crypto.FILETYPE_PEM, f.read())
    with open(key_path, "rb") as f:
        key = crypto.load_privatekey(crypto.FILETYPE_PEM, f.read())
    kw: dict[str, Any] = {}
    if client_ca_path:
        with open(client_ca_path, "rb") as f:
            pem = f.read()
        cas = [ssl.Certificate.loadPEM(b) for b in _split_pem(pem)]
        kw = {"verify": True, "caCerts": [c.original for c in cas], "requireCertificate": False}
    return ssl.CertificateOptions(privateKey=key, certificate=cert, **kw)


def _split_pem(pem: bytes) -> list[bytes]:
    out, cur = [], []
    for line in pem.splitlines(keepends=True):
        cur.append(line)
        if line.startswith(b"-----END"):
            out.append(b"".join(cur))
            cur = []
    return out
