"""Key registrations, private key files and the trust anchors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streams.policy import load_policy
from streams.signing.keys import (
    KeyRef,
    SigningError,
    key_id_of,
    key_ref,
    new_private_key,
    raw_public,
    read_private_key,
    registration,
    write_private_key,
)
from streams.signing.rules import check_signing_key
from streams.signing.trust import load_trust, trust_entry

POLICY = load_policy()


def a_key(kind: str = "GATEWAY", owner: str = "gw-1", enterprise: str = "ent-1") -> KeyRef:
    private = new_private_key()
    return KeyRef(key_id_of(private), kind, owner, enterprise, private.public_key(), 1000)


def test_a_registration_round_trips_and_is_checked() -> None:
    ref = a_key()
    record = registration(ref, 2000, "gateway 1 cabinet")
    assert check_signing_key(record, POLICY, 2000) == []
    back = key_ref(POLICY, record)
    assert (back.key_id, back.kind, back.owner_id, back.enterprise_id, back.valid_from,
            back.revoked_at) == (ref.key_id, "GATEWAY", "gw-1", "ent-1", 1000, None)
    assert back.raw == ref.raw


def test_bad_registrations_are_named() -> None:
    ref = a_key()
    good = registration(ref, 2000)
    codes = {v.code for v in check_signing_key(dict(good, key_id="0" * 32), POLICY, 0)}
    assert codes == {"BAD_KEY"}
    assert {v.field for v in check_signing_key(dict(good, public_key=b"x"), POLICY, 0)} == {
        "public_key"}
    assert {v.field for v in check_signing_key(dict(good, enterprise_id=None), POLICY, 0)} \
        == {"enterprise_id"}
    regional = registration(a_key("REGIONAL", "32", ""), 0)
    assert {v.code for v in check_signing_key(regional, POLICY, 0)} == {"BAD_REGION"}
    assert {v.field for v in check_signing_key(dict(good, revoked_at=1), POLICY, 0)} == {
        "revoked_at"}
    with pytest.raises(ValueError, match="fingerprint"):
        key_ref(POLICY, dict(good, key_id="0" * 32))
    with pytest.raises(ValueError, match="cannot be registered"):
        key_ref(POLICY, dict(good, owner_kind="REGISTRAR"))


def test_validity_window() -> None:
    ref = KeyRef("k", "GATEWAY", "gw", "ent", new_private_key().public_key(), 1000, 5000)
    assert ref.problem_at(999) is not None and "valid from" in str(ref.problem_at(999))
    assert ref.problem_at(1000) is None and ref.problem_at(4999) is None
    assert "revoked at 5000" in str(ref.problem_at(5000))


def test_private_key_files_are_0600_and_never_overwritten(tmp_path: Path) -> None:
    key = new_private_key()
    path = tmp_path / "gw.key"
    write_private_key(key, path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert raw_public(read_private_key(path).public_key()) == raw_public(key.public_key())
    with pytest.raises(SigningError, match="never overwritten"):
        write_private_key(new_private_key(), path)
    os.chmod(path, 0o644)
    with pytest.raises(SigningError, match="readable by others"):
        read_private_key(path)
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    os.chmod(bad, 0o600)
    with pytest.raises(SigningError, match="not an unencrypted PEM"):
        read_private_key(bad)
    with pytest.raises(SigningError, match="cannot read"):
        read_private_key(tmp_path / "missing.key")


def test_trust_file(tmp_path: Path) -> None:
    ref = a_key("REGISTRAR", "registrar", "")
    path = tmp_path / "trust.toml"
    path.write_text(trust_entry(ref, 'authority "A"') +
                    "valid_from = 2026-01-01T00:00:00Z\nrevoked_at = 1900000000000\n")
    anchors = load_trust(path)
    assert list(anchors) == [ref.key_id]
    anchor = anchors[ref.key_id]
    assert anchor.kind == "REGISTRAR" and anchor.valid_from == 1_767_225_600_000
    assert anchor.revoked_at == 1_900_000_000_000
    path.write_text('[[registrar]]\npublic_key = "AAAA"\n')
    with pytest.raises(SigningError, match="registrar entry 1: public_key"):
        load_trust(path)
    path.write_text('[[registrars]]\n')
    with pytest.raises(SigningError, match="unknown section"):
        load_trust(path)
    path.write_text(trust_entry(ref).replace(ref.key_id, "0" * 32))
    with pytest.raises(SigningError, match="not the fingerprint"):
        load_trust(path)


def test_signature_checks_agree_with_cryptography() -> None:
    from cryptography.exceptions import InvalidSignature

    from streams.signing.keys import signature_check

    private = new_private_key()
    check = signature_check(private.public_key())
    message = b"topic\x00key\x00" + bytes(32)
    signature = private.sign(message)
    check(signature, message)
    for bad_signature, bad_message in ((signature, message + b"x"),
                                       (bytes(64), message), (signature[:10], message)):
        with pytest.raises(InvalidSignature):
            check(bad_signature, bad_message)
