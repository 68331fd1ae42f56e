"""Checks of a key registration (the catalog's ``checks`` of the keys topic)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from streams.records.rules import Violation
from streams.signing.wire import PUBLIC_KEY_BYTES, fingerprint

_REGION = re.compile(r"^\d{6}$")


def check_signing_key(record: Mapping[str, Any], policy: Any, now_ms: int) -> list[Violation]:
    out: list[Violation] = []
    raw = record.get("public_key")
    kind = record.get("owner_kind")
    owner = str(record.get("owner_id") or "")
    if not isinstance(raw, bytes | bytearray) or len(raw) != PUBLIC_KEY_BYTES:
        out.append(Violation("public_key", "BAD_KEY",
                             f"an Ed25519 public key has {PUBLIC_KEY_BYTES} raw bytes"))
    elif record.get("key_id") != fingerprint(bytes(raw)):
        out.append(Violation("key_id", "BAD_KEY", "must be the fingerprint of public_key "
                             "(first 16 bytes of its SHA-256, hex)"))
    if not owner:
        out.append(Violation("owner_id", "MISSING", "the key's owner is required"))
    if kind == "GATEWAY" and not record.get("enterprise_id"):
        out.append(Violation("enterprise_id", "MISSING",
                             "a gateway key names the enterprise operating the gateway"))
    if kind == "ENTERPRISE" and record.get("enterprise_id") not in (None, owner):
        out.append(Violation("enterprise_id", "IDENTITY_MISMATCH",
                             "an enterprise key's enterprise_id is its owner_id"))
    if kind == "REGIONAL" and not _REGION.match(owner):
        out.append(Violation("owner_id", "BAD_REGION",
                             "a regional key's owner_id is a six-digit GB/T 2260 code"))
    revoked = record.get("revoked_at")
    valid_from = record.get("valid_from")
    if isinstance(revoked, int) and isinstance(valid_from, int) and revoked < valid_from:
        out.append(Violation("revoked_at", "BAD_TIMESTAMP", "before valid_from"))
    return out
