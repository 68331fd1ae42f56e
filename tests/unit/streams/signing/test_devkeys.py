"""The local dev keyring and the dev signer."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

from schemas.catalog import default_catalog
from schemas.codec import AvroSerializer, SerializationContext
from schemas.registry import InMemoryRegistry
from streams.settings import Settings
from streams.signing.devkeys import DevKeyring, DevSigner, ensure, keyring_dir
from streams.signing.signer import KeySigner, signer_for
from streams.signing.trust import load_trust
from streams.signing.wire import read_headers

CATALOG = default_catalog()
NOW = int(time.time() * 1000)


def envelope(gateway: str = "gw-1", enterprise: str = "ent-1") -> dict[str, Any]:
    return {"gateway_id": gateway, "enterprise_id": enterprise, "sequence": 1,
            "sent_at": NOW, "readings": []}


def test_the_keyring_is_private_stable_and_trusted(tmp_path: Path) -> None:
    keyring = ensure(Settings(data_dir=tmp_path))
    folder = keyring_dir(tmp_path)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "dev-seed").stat().st_mode & 0o777 == 0o600
    again = DevKeyring.ensure(tmp_path)
    a, _ = keyring.key("GATEWAY", "gw-1", "ent-1")
    b, _ = again.key("GATEWAY", "gw-1", "ent-1")
    assert a.key_id == b.key_id                                # derived, not stored per owner
    assert keyring.key("GATEWAY", "gw-1", "ent-2")[0].key_id != a.key_id
    assert keyring.key("ENTERPRISE", "ent-1")[0].enterprise_id == "ent-1"
    anchors = load_trust(tmp_path / "signing" / "trust.toml")
    assert list(anchors) == [keyring.registrar()[0].key_id]
    assert "dev-seed" not in repr(keyring) and repr(keyring).startswith("DevKeyring(")
    other = DevKeyring.ensure(tmp_path / "other")
    assert other.key("GATEWAY", "gw-1", "ent-1")[0].key_id != a.key_id


def test_signer_for_prefers_the_key_file(tmp_path: Path) -> None:
    from streams.signing.keys import new_private_key, write_private_key

    assert signer_for(Settings(data_dir=tmp_path)) is None       # no keyring, no key file
    ensure(Settings(data_dir=tmp_path))
    assert isinstance(signer_for(Settings(data_dir=tmp_path)), DevSigner)
    path = tmp_path / "own.key"
    write_private_key(new_private_key(), path)
    assert isinstance(signer_for(Settings(data_dir=tmp_path, signing_key_file=str(path))),
                      KeySigner)


def test_the_dev_signer_picks_the_owner_and_registers_its_key_once(tmp_path: Path) -> None:
    keyring = DevKeyring.ensure(tmp_path)
    sent: list[dict[str, Any]] = []
    signer = DevSigner(keyring, CATALOG, sent.extend)
    registry = InMemoryRegistry()
    ser = AvroSerializer(registry)
    value = ser(envelope(), SerializationContext("t.telemetry", "TelemetryBatch"))
    first = signer.sign("telemetry", b"gw-1", value, envelope())
    signer.sign("telemetry", b"gw-1", value, envelope())
    assert [r["owner_kind"] for r in sent] == ["GATEWAY"] and sent[0]["owner_id"] == "gw-1"
    assert read_headers(first)[0] == keyring.key("GATEWAY", "gw-1", "ent-1")[0].key_id
    # raw bytes: the owner the framed value claims, else the gateway the key names
    assert read_headers(signer.sign("telemetry", b"gw-1", value))[0] == sent[0]["key_id"]
    assert read_headers(signer.sign("telemetry", b"gw-1", b"not avro"))[0] == \
        sent[0]["key_id"]
    assert signer.sign("telemetry", b"gw-unknown", b"not avro") == []
    # registrations and their tombstones: the registration authority's key
    registrar = keyring.registrar()[0].key_id
    assert read_headers(signer.sign("sensors", b"s-1", None))[0] == registrar
    # incidents: the regional system of the report's region; hazards: the enterprise
    report = {"incident_id": "i", "region_code": "320102"}
    signer.sign("incidents", b"i", b"x", report)
    signer.sign("hazards", b"h", b"x", {"hazard_id": "h", "enterprise_id": "ent-1"})
    assert [(r["owner_kind"], r["owner_id"]) for r in sent[1:]] == [
        ("REGIONAL", "320102"), ("ENTERPRISE", "ent-1")]


def test_prepare_registers_every_owner_in_one_go(tmp_path: Path) -> None:
    calls: list[list[dict[str, Any]]] = []
    signer = DevSigner(DevKeyring.ensure(tmp_path), CATALOG, calls.append)
    signer.prepare([("telemetry", f"gw-{n}", envelope(f"gw-{n}")) for n in range(5)]
                   + [("enterprises", "ent-1", {"enterprise_id": "ent-1"})])
    assert len(calls) == 1 and len(calls[0]) == 5
    signer.prepare([("telemetry", "gw-1", envelope("gw-1"))])
    assert len(calls) == 1


def test_a_damaged_message_is_signed_as_the_gateway_it_names(tmp_path: Path) -> None:
    signer = DevSigner(DevKeyring.ensure(tmp_path), CATALOG, lambda records: None)
    value = AvroSerializer(InMemoryRegistry())(
        envelope("gw-7", "ent-7"), SerializationContext("t.telemetry", "TelemetryBatch"))
    assert signer.owner("telemetry", b"gw-7", value[:-3], None) == ("GATEWAY", "gw-7", "ent-7")
    assert signer.owner("telemetry", b"gw-8", b"\x00\x00\x00\x00\x01\xff", None) is None


def test_a_catalog_without_signed_types_signs_nothing(tmp_path: Path) -> None:
    from tests.toy.processor import toy_catalog

    ensure(Settings(data_dir=tmp_path))
    signer = signer_for(Settings(data_dir=tmp_path), None, toy_catalog())
    assert signer is not None
    assert signer.sign("wells", b"site-1", b"x", {"site_id": "site-1"}) == []


def test_wild_timestamps_and_cut_reports_still_name_their_region(tmp_path: Path) -> None:
    import fastavro

    from schemas.codec import strip_millis

    signer = DevSigner(DevKeyring.ensure(tmp_path), CATALOG, lambda records: None)
    report = {"incident_id": "i", "report_id": "r", "stage": "INITIAL",
              "kind": "PRODUCTION_SAFETY", "industry": "x", "disaster_category": None,
              "occurred_at": -2**63, "reported_at": NOW, "reporting_unit": "u",
              "reporting_level": "COUNTY", "region_code": "320102",
              "declared_level": "ORDINARY", "deaths": 0, "missing": 0, "serious_injuries": 0,
              "direct_economic_loss_cny": 0.0, "affected_population": 0, "description": "",
              "publication": "INTERNAL"}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(
        strip_millis(CATALOG.schemas.json("IncidentReport"))), report)
    value = b"\x00\x00\x00\x00\x02" + body.getvalue()
    assert signer.owner("incidents", b"i", value, None) == ("REGIONAL", "320102", "")
    cut = value[:value.index(b"320102") + 6]
    assert signer.owner("incidents", b"i", cut, None) == ("REGIONAL", "320102", "")


def test_a_report_with_a_malformed_region_is_signed_by_the_national_system(
        tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []
    signer = DevSigner(DevKeyring.ensure(tmp_path), CATALOG, sent.extend)
    report = {"incident_id": "inc-1", "region_code": "BAD_REGION"}
    assert signer.owner("incidents", b"inc-1", None, report) == ("REGIONAL", "000000", "")
    signer.prepare([("incidents", "inc-1", report)])
    assert [(r["owner_kind"], r["owner_id"]) for r in sent] == [("REGIONAL", "000000")]
