"""Which records a key's owner may send: gateways, enterprises, regions."""

from __future__ import annotations

import pytest

from schemas.catalog.declarations import HAZARD, INCIDENT, SENSOR, TELEMETRY
from streams.signing.identity import covers, level, mismatch, owner_mismatch, within
from streams.signing.keys import KeyRef, new_private_key


def key(kind: str, owner: str, enterprise: str = "") -> KeyRef:
    return KeyRef(f"id-{kind}-{owner}", kind, owner, enterprise,
                  new_private_key().public_key())


@pytest.mark.parametrize(("scope", "code", "inside"), [
    ("000000", "320102", True), ("320000", "320102", True), ("320000", "330102", False),
    ("320100", "320102", True), ("320100", "320200", False), ("320102", "320102", True),
    ("320102", "320103", False), ("320102", "32010", False), ("110000", "110101", True),
])
def test_regions_nest_by_their_code(scope: str, code: str, inside: bool) -> None:
    assert within(scope, code) is inside


def test_levels() -> None:
    assert [level(c) for c in ("000000", "320000", "320100", "320102")] == [
        "national", "province", "city", "county"]


def test_a_gateway_key_binds_its_gateway_and_enterprise() -> None:
    spec = TELEMETRY.signed
    assert spec is not None
    gw = key("GATEWAY", "gw-a", "ent-a")
    assert mismatch(spec, gw, {"gateway_id": "gw-a", "enterprise_id": "ent-a"}) is None
    assert "gateway gw-b is not the key's gateway gw-a" in str(
        mismatch(spec, gw, {"gateway_id": "gw-b", "enterprise_id": "ent-a"}))
    assert "enterprise ent-b" in str(
        mismatch(spec, gw, {"gateway_id": "gw-a", "enterprise_id": "ent-b"}))
    # an enterprise key may not send telemetry (only its gateways do)
    assert "may not sign" in str(mismatch(spec, key("ENTERPRISE", "ent-a", "ent-a"),
                                          {"gateway_id": "gw-a", "enterprise_id": "ent-a"}))


def test_hazards_come_from_their_enterprise_through_a_gateway_or_its_own_key() -> None:
    spec = HAZARD.signed
    assert spec is not None
    record = {"hazard_id": "hz-1", "enterprise_id": "ent-a"}
    assert mismatch(spec, key("GATEWAY", "gw-a", "ent-a"), record) is None
    assert mismatch(spec, key("ENTERPRISE", "ent-a", "ent-a"), record) is None
    assert mismatch(spec, key("ENTERPRISE", "ent-b", "ent-b"), record) is not None
    assert mismatch(spec, key("REGIONAL", "320000"), record) is not None
    # the hazard is B's: A may not close it, even naming itself
    state = {"versions": {}, "enterprise_id": "ent-b"}
    assert "another owner" in str(owner_mismatch(spec, key("GATEWAY", "gw-a", "ent-a"), state))
    assert owner_mismatch(spec, key("GATEWAY", "gw-b", "ent-b"), state) is None
    assert owner_mismatch(spec, key("GATEWAY", "gw-a", "ent-a"), {"versions": {}}) is None
    assert owner_mismatch(spec, key("GATEWAY", "gw-a", "ent-a"), None) is None


def test_incidents_come_from_a_system_whose_region_covers_them() -> None:
    spec = INCIDENT.signed
    assert spec is not None
    report = {"incident_id": "inc-1", "region_code": "320102"}
    assert mismatch(spec, key("REGIONAL", "320102"), report) is None
    assert mismatch(spec, key("REGIONAL", "320000"), report) is None
    assert "outside the key's region 320103" in str(
        mismatch(spec, key("REGIONAL", "320103"), report))
    assert mismatch(spec, key("GATEWAY", "gw-a", "ent-a"), report) is not None
    # a malformed code names no region: validation rejects it (BAD_REGION_CODE)
    assert mismatch(spec, key("REGIONAL", "320103"), {**report, "region_code": "BAD"}) is None
    state = {"region_code": "320102"}
    assert owner_mismatch(spec, key("REGIONAL", "320000"), state) is None
    assert owner_mismatch(spec, key("REGIONAL", "330000"), state) is not None


def test_registrations_come_from_the_registration_authority() -> None:
    spec = SENSOR.signed
    assert spec is not None
    assert mismatch(spec, key("REGISTRAR", "registrar"), {"sensor_id": "s"}) is None
    assert mismatch(spec, key("GATEWAY", "gw-a", "ent-a"), {"sensor_id": "s"}) is not None


def test_unknown_attributes_are_a_programming_error() -> None:
    with pytest.raises(ValueError):
        covers(key("GATEWAY", "g", "e"), "planet", "earth")
