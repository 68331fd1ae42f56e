"""The local stack's certificate authority, server certificates and generated passwords.

Everything is created once under ``data_dir/secrets`` (directory 0700, files 0600) and kept:

- ``ca.pem`` / ``ca.key``: a self-signed CA (10 years) that every client of the local stack
  trusts (``kafka_ca_file`` / ``registry_ca_file`` default to it);
- ``kafka.pem`` / ``kafka.key`` / ``kafka-keystore.pem`` (key + chain, Kafka's PEM keystore):
  the broker, CN ``ebi-broker``, for 127.0.0.1/localhost, server and client use (its
  inter-broker and controller connections authenticate with it: mutual TLS);
- ``registry.pem`` / ``registry.key``: Apicurio Registry's server certificate;
- ``credentials.toml``: a password per principal (``secrets.token_urlsafe``) and for the
  ClickHouse users.

Rotation: delete the files to replace and run ``ebi stack up`` again (docs/security.md).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from streams.credentials import CA_FILE, CREDENTIALS_FILE, read_credentials, secrets_dir

BROKER_CN = "ebi-broker"
BROKER_PRINCIPAL = f"User:CN={BROKER_CN}"
CLICKHOUSE_USERS = ("default", "ebi_admin", "ebi_sink")


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / CA_FILE

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"

    def keystore(self, name: str) -> Path:
        return self.dir / f"{name}-keystore.pem"


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only (atomically)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def ensure_pki(data_dir: Path) -> Pki:
    """The CA and the server certificates, created if missing."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    pki = Pki(_private_dir(secrets_dir(data_dir)))
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    if not (pki.ca.exists() and pki.ca_key.exists()):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ebi local CA"),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ebi")])
        ca_cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        write_private(pki.ca_key, pem_key(ca_key))
        write_private(pki.ca, ca_cert.public_bytes(serialization.Encoding.PEM))
        for stale in ("kafka", "registry"):  # certificates of an older CA
            pki.cert(stale).unlink(missing_ok=True)

    ca_cert = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    ca_key_loaded = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    for kind, cn in (("kafka", BROKER_CN), ("registry", "ebi-registry")):
        if pki.cert(kind).exists() and pki.key(kind).exists():
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_cert.public_key()), critical=False)  # type: ignore[arg-type]
            .sign(ca_key_loaded, hashes.SHA256())  # type: ignore[arg-type]
        )
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        write_private(pki.key(kind), pem_key(key))
        write_private(pki.cert(kind), cert_pem)
        write_private(pki.keystore(kind), pem_key(key) + cert_pem
                      + ca_cert.public_bytes(serialization.Encoding.PEM))
    return pki


def ensure_credentials(data_dir: Path, principals: Iterable[str],
                       clickhouse_users: Iterable[str] = ()) -> dict[str, dict[str, str]]:
    """A password for every principal and ClickHouse user (the stack's own and
    ``clickhouse_users``, those of the declaration) that has none yet; existing passwords
    are kept. Returns the whole table."""
    table = read_credentials(data_dir)
    changed = False
    clickhouse = list(dict.fromkeys([*CLICKHOUSE_USERS, *clickhouse_users]))
    for section, names in (("principals", list(principals)), ("clickhouse", clickhouse)):
        values = table.setdefault(section, {})
        for name in names:
            if name not in values:
                values[name] = secrets.token_urlsafe(24)
                changed = True
    if changed:
        lines = ["# Generated by `ebi stack up`: the local stack's passwords. Keep it private",
                 "# (0600); delete an entry and run `ebi stack up` to rotate it.", ""]
        for section, values in table.items():
            lines.append(f"[{section}]")
            lines += [f'"{name}" = "{value}"' for name, value in sorted(values.items())]
            lines.append("")
        directory = _private_dir(secrets_dir(data_dir))
        write_private(directory / CREDENTIALS_FILE, "\n".join(lines).encode())
    return table
