"""Signing keys as the worker keeps them: one :class:`KeyRef` per key id, its public key
object built once when the registration arrives (never per message).

A key belongs to one owner: a GATEWAY (``owner_id`` its gateway_id, ``enterprise_id`` the
enterprise operating it), an ENTERPRISE (``owner_id`` = ``enterprise_id``), a REGIONAL system
(``owner_id`` the GB/T 2260 code of its region), or the REGISTRAR (the registration
authority: its keys are the trust anchors of :mod:`.trust`, never on the keys topic). An
owner may hold several valid keys at once (rotation); a key is valid for messages that
reached Kafka from ``valid_from`` until ``revoked_at``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from streams.signing.wire import PUBLIC_KEY_BYTES, fingerprint

KINDS = ("GATEWAY", "ENTERPRISE", "REGIONAL", "REGISTRAR")
REGISTRAR = "REGISTRAR"


class SigningError(RuntimeError):
    """A key cannot be read or made (the message says which file and why)."""


@dataclass(frozen=True, slots=True)
class KeyRef:
    key_id: str
    kind: str                  # GATEWAY, ENTERPRISE, REGIONAL, REGISTRAR
    owner_id: str
    enterprise_id: str         # GATEWAY and ENTERPRISE keys; "" otherwise
    public: Ed25519PublicKey
    valid_from: int = 0        # epoch ms
    revoked_at: int | None = None
    check: Callable[[bytes, bytes], None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "check", signature_check(self.public))

    def problem_at(self, arrival_ms: int) -> str | None:
        """Why the key may not sign a message that reached Kafka at ``arrival_ms``."""
        if arrival_ms < self.valid_from:
            return f"key {self.key_id} is valid from {self.valid_from}, the message arrived " \
                   f"at {arrival_ms}"
        if self.revoked_at is not None and arrival_ms >= self.revoked_at:
            return f"key {self.key_id} of {self.owner()} was revoked at {self.revoked_at}"
        return None

    def owner(self) -> str:
        if self.kind == "GATEWAY":
            return f"gateway {self.owner_id} of enterprise {self.enterprise_id}"
        if self.kind == "ENTERPRISE":
            return f"enterprise {self.owner_id}"
        if self.kind == "REGIONAL":
            return f"regional system {self.owner_id}"
        return "the registration authority"

    @property
    def raw(self) -> bytes:
        return raw_public(self.public)


def signature_check(public: Ed25519PublicKey) -> Callable[[bytes, bytes], None]:
    """``check(signature, message)``, raising InvalidSignature when it does not verify:
    libsodium's Ed25519 (PyNaCl; 55 us a signature on the bench machine against 130 us for
    OpenSSL's through cryptography, and stricter: no small-order keys, canonical signatures
    only), cryptography's where PyNaCl is missing."""
    try:
        from nacl.exceptions import CryptoError
        from nacl.signing import VerifyKey
    except ImportError:
        return public.verify
    key = VerifyKey(raw_public(public))

    def check(signature: bytes, message: bytes) -> None:
        try:
            key.verify(message, signature)
        except (CryptoError, ValueError, TypeError) as exc:
            raise InvalidSignature(str(exc)) from exc

    return check


def raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key(raw: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from its 32 raw bytes (ValueError otherwise)."""
    if len(raw) != PUBLIC_KEY_BYTES:
        raise ValueError(f"an Ed25519 public key has {PUBLIC_KEY_BYTES} bytes, not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(bytes(raw))


def key_ref(policy: Any, record: dict[str, Any]) -> KeyRef:
    """A key registration (a SigningKey record that passed its checks) as the worker keeps
    it (the catalog's ``Reference.build`` of the keys topic)."""
    kind = str(record["owner_kind"])
    if kind not in KINDS or kind == REGISTRAR:
        raise ValueError(f"owner_kind {kind!r} cannot be registered on the keys topic")
    raw = bytes(record["public_key"])
    key_id = str(record["key_id"])
    if fingerprint(raw) != key_id:
        raise ValueError(f"key_id {key_id} is not the fingerprint of its public key")
    enterprise = record.get("enterprise_id") or ""
    if kind == "ENTERPRISE":
        enterprise = str(record["owner_id"])
    revoked = record.get("revoked_at")
    return KeyRef(key_id, kind, str(record["owner_id"]), str(enterprise), public_key(raw),
                  int(record["valid_from"]), None if revoked is None else int(revoked))


def registration(key: KeyRef, now_ms: int, note: str = "") -> dict[str, Any]:
    """The SigningKey record that registers ``key`` (ENTERPRISE keys name their enterprise)."""
    return {"key_id": key.key_id, "algorithm": "ED25519", "public_key": key.raw,
            "owner_kind": key.kind, "owner_id": key.owner_id,
            "enterprise_id": key.enterprise_id or None, "valid_from": key.valid_from,
            "revoked_at": key.revoked_at, "updated_at": now_ms, "note": note}


# -- private keys (PEM files) ------------------------------------------------------------------

def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def write_private_key(key: Ed25519PrivateKey, path: Path) -> None:
    """``path`` (created 0600, never overwritten) holds the key as unencrypted PKCS#8 PEM."""
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningError(f"{path} exists; a key file is never overwritten") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def read_private_key(path: str | Path) -> Ed25519PrivateKey:
    """The Ed25519 private key of a PEM file; SigningError naming the file otherwise. A key
    file others may read is refused (it must be 0600 or stricter)."""
    file = Path(path).expanduser()
    try:
        mode = file.stat().st_mode
        data = file.read_bytes()
    except OSError as exc:
        raise SigningError(f"cannot read the signing key {file}: {exc.strerror}") from None
    if mode & 0o077:
        raise SigningError(f"the signing key {file} is readable by others (mode "
                           f"{mode & 0o777:o}); chmod 600 it")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningError(f"{file} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{file} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def key_id_of(key: Ed25519PrivateKey) -> str:
    return fingerprint(raw_public(key.public_key()))
