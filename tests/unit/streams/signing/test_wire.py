"""What a signature covers, and reading its headers."""

from __future__ import annotations

import pytest

from streams.signing.keys import new_private_key
from streams.signing.signer import KeySigner
from streams.signing.wire import (
    HeaderProblem,
    digest,
    fingerprint,
    headers,
    read_headers,
    signed_message,
)


def test_the_signed_message_binds_topic_key_and_value() -> None:
    base = signed_message("telemetry", b"gw-1", digest(b"value"))
    assert base != signed_message("hazards", b"gw-1", digest(b"value"))
    assert base != signed_message("telemetry", b"gw-2", digest(b"value"))
    assert base != signed_message("telemetry", b"gw-1", digest(b"other"))
    assert base != signed_message("telemetry", None, digest(b"value"))
    # a tombstone differs from an empty value; lengths are framed, so fields cannot shift
    assert signed_message("t", b"k", None) != signed_message("t", b"k", digest(b""))
    assert signed_message("ab", b"c", None) != signed_message("a", b"bc", None)


def test_headers_round_trip_and_key_ids_are_fingerprints() -> None:
    signer = KeySigner(new_private_key())
    found = signer.sign("telemetry", b"gw-1", b"\x00\x00\x00\x00\x01abc")
    key_id, signature = read_headers(found)
    assert key_id == signer.key_id and len(key_id) == 32 and len(signature) == 64
    assert read_headers(dict(found)) == (key_id, signature)
    assert fingerprint(b"\x01" * 32) != fingerprint(b"\x02" * 32)


@pytest.mark.parametrize(("found", "why"), [
    (None, "unsigned"),
    ([], "unsigned"),
    ([("ebi-key-id", b"k")], "0 ebi-signature"),
    (headers("k", b"s" * 64) + headers("k", b"s" * 64), "2 ebi-key-id"),
    (headers("k", b"short"), "5 bytes"),
    ([("ebi-key-id", b"\xff"), ("ebi-signature", b"s" * 64)], "not ASCII"),
    ([("ebi-key-id", None), ("ebi-signature", b"s" * 64)], "without a value"),
])
def test_missing_or_malformed_headers_are_named(found: object, why: str) -> None:
    with pytest.raises(HeaderProblem, match=why):
        read_headers(found)  # type: ignore[arg-type]
