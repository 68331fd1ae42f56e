"""The worker's signature check: every way a message can fail it."""

from __future__ import annotations

from schemas.catalog.declarations import ENTERPRISE, TELEMETRY
from streams.signing.keys import KeyRef, key_id_of, new_private_key
from streams.signing.signer import KeySigner
from streams.signing.verify import BAD_SIGNATURE, IDENTITY_MISMATCH, Rejected, Signed, Verifier
from streams.signing.wire import headers

VALUE = b"\x00\x00\x00\x00\x07envelope"


def setup(kind: str = "GATEWAY", valid_from: int = 0,
          revoked_at: int | None = None) -> tuple[KeySigner, dict[str, KeyRef]]:
    private = new_private_key()
    ref = KeyRef(key_id_of(private), kind, "gw-a", "ent-a", private.public_key(), valid_from,
                 revoked_at)
    return KeySigner(private), {ref.key_id: ref}


def verify(keys: dict[str, KeyRef], found: object, topic: str = "telemetry",
           key: bytes = b"gw-a", value: bytes | None = VALUE, at: int = 10_000,
           anchors: dict[str, KeyRef] | None = None) -> Signed | Rejected:
    spec = TELEMETRY.signed if topic != "enterprises" else ENTERPRISE.signed
    assert spec is not None
    return Verifier(keys, anchors or {}).verify(spec, topic, key, value, found, at)  # type: ignore[arg-type]


def test_a_signed_message_verifies_and_says_who_signed() -> None:
    signer, keys = setup()
    got = verify(keys, signer.sign("telemetry", b"gw-a", VALUE))
    assert isinstance(got, Signed)
    assert got.key.owner_id == "gw-a" and got.fields()["key_id"] == signer.key_id
    assert len(got.fields()["signature"]) == 64 and len(got.fields()["signed_digest"]) == 32


def test_every_failure_is_bad_signature_with_its_reason() -> None:
    signer, keys = setup()
    good = signer.sign("telemetry", b"gw-a", VALUE)
    cases = {
        "unsigned": verify(keys, None),
        "is not a registered key": verify({}, good),
        "does not match": verify(keys, good, value=VALUE + b"x"),
        "signed for another topic": verify(keys, good, topic="heartbeats"),
        "or key": verify(keys, good, key=b"gw-b"),
        "64": verify(keys, headers(signer.key_id, good[1][1][:-1])),
    }
    for why, got in cases.items():
        assert isinstance(got, Rejected) and got.code == BAD_SIGNATURE, why
        assert why in got.message, (why, got.message)
    unknown = verify({}, good)
    assert isinstance(unknown, Rejected) and unknown.unknown_key
    assert unknown.key_id == signer.key_id and unknown.signature == good[1][1]


def test_revoked_and_not_yet_valid_keys_by_arrival_time() -> None:
    signer, keys = setup(valid_from=5_000, revoked_at=20_000)
    good = signer.sign("telemetry", b"gw-a", VALUE)
    assert isinstance(verify(keys, good, at=10_000), Signed)
    early, late = verify(keys, good, at=4_999), verify(keys, good, at=20_000)
    assert isinstance(early, Rejected) and "valid from 5000" in early.message
    assert isinstance(late, Rejected) and "revoked at 20000" in late.message


def test_a_key_of_the_wrong_kind_is_an_identity_mismatch() -> None:
    signer, keys = setup(kind="REGIONAL")
    got = verify(keys, signer.sign("telemetry", b"gw-a", VALUE))
    assert isinstance(got, Rejected) and got.code == IDENTITY_MISMATCH
    assert "may not sign" in got.message


def test_registrations_verify_only_against_the_trust_anchors() -> None:
    signer, anchors = setup(kind="REGISTRAR")
    tombstone = signer.sign("enterprises", b"ent-b", None)
    assert isinstance(verify({}, tombstone, "enterprises", b"ent-b", None, anchors=anchors),
                      Signed)
    gateway, keys = setup()             # a registered gateway key is not an anchor
    forged = gateway.sign("enterprises", b"ent-b", None)
    got = verify(keys, forged, "enterprises", b"ent-b", None, anchors=anchors)
    assert isinstance(got, Rejected) and got.code == BAD_SIGNATURE
    assert "trust anchors" in got.message and not got.unknown_key
