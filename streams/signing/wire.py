"""What a signature covers, and the headers that carry it.

The signed message is::

    b"ebi-record/1\\n" | u16 len + logical topic | u32 len + key (0xFFFFFFFF: no key)
                      | 0x01 + SHA-256(framed value)   (0x00 for a tombstone)

so a signature cannot be moved to another topic (of any deployment prefix), another key, or
another value; signing the 32-byte digest keeps the signature of a large envelope cheap and
lets a stored record carry the digest without its bytes. Key ids are fingerprints: the first
16 bytes of the SHA-256 of the raw 32-byte public key, in hex.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping
from typing import Any

KEY_ID_HEADER = "ebi-key-id"
SIGNATURE_HEADER = "ebi-signature"
DOMAIN = b"ebi-record/1\n"
SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32
_NO_KEY = 0xFFFFFFFF


def digest(value: bytes | None) -> bytes | None:
    """SHA-256 of a message's value; None for a tombstone (no value)."""
    return None if value is None else hashlib.sha256(value).digest()


def signed_message(logical_topic: str, key: bytes | None, value_digest: bytes | None) -> bytes:
    """The bytes a sender signs for one message (see the module docstring)."""
    topic = logical_topic.encode()
    parts = [DOMAIN, struct.pack(">H", len(topic)), topic]
    if key is None:
        parts.append(struct.pack(">I", _NO_KEY))
    else:
        parts += [struct.pack(">I", len(key)), key]
    parts.append(b"\x00" if value_digest is None else b"\x01" + value_digest)
    return b"".join(parts)


def fingerprint(public_key: bytes) -> str:
    """The key id of a raw Ed25519 public key."""
    return hashlib.sha256(public_key).digest()[:16].hex()


def headers(key_id: str, signature: bytes) -> list[tuple[str, bytes]]:
    return [(KEY_ID_HEADER, key_id.encode()), (SIGNATURE_HEADER, signature)]


class HeaderProblem(ValueError):
    """The signature headers are missing or malformed."""


def read_headers(found: Iterable[tuple[str, Any]] | Mapping[str, Any] | None
                 ) -> tuple[str, bytes]:
    """(key id, signature) from a message's headers (a list of pairs, as Kafka clients give
    them, or a mapping); HeaderProblem when either is missing, repeated or malformed."""
    pairs = list(found.items()) if isinstance(found, Mapping) else list(found or ())
    key_ids = [v for k, v in pairs if k == KEY_ID_HEADER]
    signatures = [v for k, v in pairs if k == SIGNATURE_HEADER]
    if not key_ids and not signatures:
        raise HeaderProblem(f"unsigned: no {KEY_ID_HEADER} and {SIGNATURE_HEADER} headers")
    if len(key_ids) != 1 or len(signatures) != 1:
        raise HeaderProblem(f"{len(key_ids)} {KEY_ID_HEADER} and {len(signatures)} "
                            f"{SIGNATURE_HEADER} headers (one of each expected)")
    raw_id, signature = key_ids[0], signatures[0]
    if not isinstance(raw_id, bytes | bytearray) or not isinstance(signature,
                                                                  bytes | bytearray):
        raise HeaderProblem("signature headers without a value")
    if len(signature) != SIGNATURE_BYTES:
        raise HeaderProblem(f"{SIGNATURE_HEADER} has {len(signature)} bytes, an Ed25519 "
                            f"signature {SIGNATURE_BYTES}")
    try:
        key_id = bytes(raw_id).decode("ascii")
    except UnicodeDecodeError:
        raise HeaderProblem(f"{KEY_ID_HEADER} is not ASCII") from None
    if not 0 < len(key_id) <= 64:
        raise HeaderProblem(f"{KEY_ID_HEADER} has {len(key_id)} characters")
    return key_id, bytes(signature)
