"""``ebi verify``'s checks, on rows as ClickHouse returns them (the SQL itself runs in
tests/integration/test_signing.py)."""

from __future__ import annotations

import time
from typing import Any

from schemas.catalog import default_catalog
from schemas.catalog.declarations import HAZARD, TELEMETRY
from schemas.codec import AvroSerializer, SerializationContext
from schemas.registry import InMemoryRegistry
from sinks.clickhouse import QueryResult
from sinks.clickhouse.schema import Field, table_specs
from streams.signing.keys import KeyRef, key_id_of, new_private_key
from streams.signing.signer import KeySigner
from streams.signing.stored import StoredVerifier, _same
from streams.signing.wire import digest, read_headers
from tests.unit.sinks.fakes import MODERN

CATALOG = default_catalog()
NOW = int(time.time() * 1000)
REGISTRY = InMemoryRegistry()
SER = AvroSerializer(REGISTRY)
PRIVATE = new_private_key()
KEY = KeyRef(key_id_of(PRIVATE), "GATEWAY", "gw-1", "ent-1", PRIVATE.public_key())
SIGNER = KeySigner(PRIVATE)


class Canned:
    features = MODERN

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.sql: list[str] = []

    def query(self, sql: str) -> QueryResult:
        self.sql.append(sql)
        return QueryResult([], [], self.rows)


def text(f: Field, value: Any) -> Any:
    """A value as the SELECT of StoredVerifier returns it."""
    if value is None:
        return None
    if f.kind == "bytes":
        return bytes(value).hex().upper()
    if f.kind == "boolean":
        return "1" if value else "0"
    return str(value)


def signed(topic: str, record: dict[str, Any]) -> tuple[bytes, bytes, bytes]:
    value = SER(record, SerializationContext(f"t.{topic}", CATALOG.topic(topic).record))
    key = str(record[CATALOG.topic(topic).key]).encode()
    _, signature = read_headers(SIGNER.sign(topic, key, value))
    found = digest(value)
    assert found is not None
    return value, signature, found


HAZ = {"hazard_id": "hz-1", "version": 2, "enterprise_id": "ent-1", "region_code": "110101",
       "category": "fire", "level": "MAJOR", "status": "RECTIFYING", "found_at": NOW - 9000,
       "rectification_deadline": None, "updated_at": NOW - 1000, "description": "d"}


def checker(rows: list[tuple[Any, ...]], fetched: dict[Any, Any] | None = None
            ) -> StoredVerifier:
    return StoredVerifier(Canned(rows), "db", CATALOG, {KEY.key_id: KEY}, REGISTRY,  # type: ignore[arg-type]
                          lambda coords: fetched or {})


def hazard_row(stored: dict[str, Any], *, key_id: str | None = KEY.key_id,
               signature: bytes | None = None, value: bytes | None = None) -> tuple[Any, ...]:
    data, sig, found = signed("hazards", HAZ)
    v = checker([])
    spec = table_specs(CATALOG)["hazards_raw"]
    compared = v._compared(HAZARD, spec)
    return ("t.hazards", "0", "7", key_id, (signature or sig).hex().upper(),
            found.hex().upper(), (value or data).hex().upper(),
            *(text(f, stored.get(f.name)) for f in compared))


def test_an_evidence_record_verifies_field_by_field() -> None:
    verifier = checker([hazard_row(HAZ)])
    report = verifier.check(HAZARD, 0, 100)
    assert report.counts == {"VERIFIED": 1} and report.failed() == 0
    sql = verifier.backend.sql[0]    # type: ignore[attr-defined]
    assert "FROM db.hazards_raw FINAL WHERE received_at >= toDateTime(0)" in sql
    assert "toUnixTimestamp64Milli(found_at)" in sql


def test_a_changed_row_a_changed_signature_and_an_unknown_key_fail() -> None:
    tampered = checker([hazard_row(dict(HAZ, status="CLOSED"))]).check(HAZARD, 0, 100)
    assert tampered.counts == {"TAMPERED": 1}
    assert "status: stored CLOSED, signed RECTIFYING" in tampered.findings[0].detail
    bad = checker([hazard_row(HAZ, signature=b"\x01" * 64)]).check(HAZARD, 0, 100)
    assert bad.counts == {"BAD_SIGNATURE": 1}
    swapped = checker([hazard_row(HAZ, value=signed("hazards", dict(HAZ, version=3))[0])])
    assert swapped.check(HAZARD, 0, 100).counts == {"TAMPERED": 1}
    unknown = checker([hazard_row(HAZ, key_id="f" * 32)]).check(HAZARD, 0, 100)
    assert unknown.counts == {"UNKNOWN_KEY": 1}
    unsigned = checker([hazard_row(HAZ, key_id=None)]).check(HAZARD, 0, 100)
    assert unsigned.counts == {"UNSIGNED": 1}
    assert unsigned.failed() == 1 and unsigned.failed(allow_unsigned=True) == 0


ENV = {"gateway_id": "gw-1", "enterprise_id": "ent-1", "sequence": 4, "sent_at": NOW - 500,
       "readings": [{"reading_id": f"r-{i}", "sensor_id": "s-1", "metric": "METHANE",
                     "value": 0.1 * i, "unit": "PERCENT_VOL", "quality": "GOOD",
                     "event_time": NOW - 1000 + i} for i in range(3)]}


def telemetry_rows(readings: list[dict[str, Any]]) -> tuple[list[tuple[Any, ...]], bytes]:
    value, sig, found = signed("telemetry", ENV)
    spec = table_specs(CATALOG)["readings_raw"]
    compared = checker([])._compared(TELEMETRY, spec)
    rows = [("t.telemetry", "1", "9", KEY.key_id, sig.hex().upper(), found.hex().upper(),
             *(text(f, {**ENV, **r}.get(f.name)) for f in compared)) for r in readings]
    return rows, value


def test_telemetry_is_compared_with_the_input_message_while_kafka_has_it() -> None:
    rows, value = telemetry_rows(ENV["readings"][:2])      # one reading was rejected
    coords = ("t.telemetry", 1, 9)
    ok = checker(rows, {coords: (b"gw-1", value)}).check(TELEMETRY, 0, 100)
    assert ok.counts == {"VERIFIED": 1}
    assert checker(rows).check(TELEMETRY, 0, 100).counts == {"UNCHECKED": 1}
    changed, _ = telemetry_rows([dict(ENV["readings"][0], value=9.0)])
    bad = checker(changed, {coords: (b"gw-1", value)}).check(TELEMETRY, 0, 100)
    assert bad.counts == {"TAMPERED": 1} and "value of row r-0" in bad.findings[0].detail
    other = checker(rows, {coords: (b"gw-1", value + b"x")}).check(TELEMETRY, 0, 100)
    assert other.counts == {"TAMPERED": 1}
    invented, _ = telemetry_rows([dict(ENV["readings"][0], reading_id="r-99")])
    assert checker(invented, {coords: (b"gw-1", value)}).check(
        TELEMETRY, 0, 100).counts == {"TAMPERED": 1}


def test_values_compare_by_kind() -> None:
    assert _same("double", "1500000", 1.5e6) and _same("double", "nan", float("nan"))
    assert _same("timestamp", "1767225600000", 1_767_225_600_000)
    assert _same("boolean", "1", True) and not _same("boolean", "0", True)
    assert _same("bytes", "00FF", b"\x00\xff") and _same("string", None, None)
    assert not _same("string", None, "x")
