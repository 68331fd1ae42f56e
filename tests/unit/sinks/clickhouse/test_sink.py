from __future__ import annotations

from typing import Any

import pytest

from schemas.catalog import default_catalog
from schemas.codec import AvroSerializer, SerializationContext
from schemas.registry import InMemoryRegistry
from sinks.base import BackpressureError
from sinks.clickhouse import TransientError
from sinks.clickhouse.encoding import EnvelopeDecoder
from sinks.clickhouse.sink import ClickHouseSink, RetryPolicy
from streams.metrics import Metrics
from tests.unit.sinks import factories as f
from tests.unit.sinks.fakes import FakeBackend

CATALOG = default_catalog()
RECORDS = {f"p.{name}": topic.record for name, (topic, _) in CATALOG.routes().items()}


class Harness:
    def __init__(self, backend: FakeBackend | None = None) -> None:
        self.registry = InMemoryRegistry()
        self.serializer = AvroSerializer(self.registry)
        self.backend = backend or FakeBackend()
        self.metrics = Metrics.create()
        self.decoder = EnvelopeDecoder(
            CATALOG, self.registry, lambda name: f"p.{name}",
            lambda topic, code: self.metrics.rejects.labels(topic, code).inc())
        self.sink = ClickHouseSink(self.backend, self.metrics, max_rows=1000,
                                   max_seconds=1.0, retry=RetryPolicy(attempts=2, delay=0.0),
                                   sleep=lambda s: None, catalog=CATALOG)
        self.offsets: dict[str, int] = {}

    def send(self, topic: str, record: dict[str, Any], partition: int = 0) -> None:
        data = self.serializer(record, SerializationContext(topic, RECORDS[topic]))
        self.send_bytes(topic, data, partition)

    def send_bytes(self, topic: str, data: bytes | None, partition: int = 0) -> None:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        envelope, rows = self.decoder(data, None, topic, partition, offset)
        self.sink.add(envelope, topic, partition, offset, max(rows, 1))

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


def test_writes_tables_then_the_ledger_last() -> None:
    h = Harness()
    h.send("p.telemetry.clean", f.telemetry(0, readings=4, duplicates=1))
    h.send("p.incidents.clean", f.incident(0))
    h.send("p.alerts", f.alert(1))
    assert h.sink.flush() == {("p.telemetry.clean", 0): 1, ("p.incidents.clean", 0): 1,
                              ("p.alerts", 0): 1}
    tables = [t for t, _ in h.backend.inserts]
    assert tables == ["readings_raw", "incident_reports_raw", "alerts_raw", "ledger", "consumed"]
    ledger = h.backend.rows("ledger")
    assert [(r["record_type"], r["readings_in"], r["accepted"], r["duplicates"])
            for r in ledger] == [("telemetry", 5, 4, 1), ("incident", 1, 1, 0)]
    assert h.metric("ebi_sink_rows_total", table="readings_raw") == 4


def test_replayed_envelopes_are_skipped_by_the_ledger() -> None:
    h = Harness()
    h.send("p.telemetry.clean", f.telemetry(0))
    h.sink.flush()
    # the worker replays input offset 0 (new clean offset), and sends offset 1
    h.send("p.telemetry.clean", f.telemetry(0))
    h.send("p.telemetry.clean", f.telemetry(1))
    h.send("p.telemetry.clean", f.telemetry(1))  # twice in one batch
    h.sink.flush()
    assert len(h.backend.rows("readings_raw")) == 6
    assert [r["source_offset"] for r in h.backend.rows("ledger")] == [0, 1]
    assert h.sink.skipped_replays == 2


def test_worker_duplicates_reach_only_the_ledger() -> None:
    h = Harness()
    h.send("p.incidents.clean", f.incident(0))
    h.send("p.incidents.clean", f.incident(1, duplicate=True))
    h.sink.flush()
    assert len(h.backend.rows("incident_reports_raw")) == 1
    assert [r["duplicate"] for r in h.backend.rows("ledger")] == [0, 1]


def test_whole_message_dead_letters_are_ledgered_reading_ones_are_not() -> None:
    h = Harness()
    h.send("p.deadletter", f.dead_letter(3))
    h.send("p.deadletter", f.dead_letter(4, record_index=2, code="OUT_OF_RANGE",
                                         stage="validate"))
    h.sink.flush()
    assert len(h.backend.rows("dead_letters_raw")) == 2
    assert [(r["source_offset"], r["outcome"]) for r in h.backend.rows("ledger")] == [
        (3, "deadletter")]


def test_rows_clickhouse_rejects_go_to_the_dead_letters_rest_is_written() -> None:
    backend = FakeBackend()
    backend.reject = lambda table, row: table == "readings_raw" and row["reading_id"] in (
        "rd-0-1-2", "rd-0-2-0")
    h = Harness(backend)
    for offset in range(4):
        h.send("p.telemetry.clean", f.telemetry(offset, readings=3))
    h.sink.flush()
    written = {r["reading_id"] for r in backend.rows("readings_raw")}
    assert len(written) == 10 and "rd-0-1-2" not in written
    dead = backend.rows("dead_letters_raw")
    assert sorted((d["source_offset"], d["record_index"], d["stage"]) for d in dead) == [
        (1, 2, "sink"), (2, 0, "sink")]
    assert all(d["error_code"] == "SINK_REJECTED" for d in dead)
    assert [r["sink_rejected"] for r in backend.rows("ledger")] == [0, 1, 1, 0]


def test_undecodable_clean_message_becomes_a_sink_dead_letter() -> None:
    h = Harness()
    envelope, rows = h.decoder(b"garbage", b"k", "p.alerts", 0, 7)
    h.sink.add(envelope, "p.alerts", 0, 7, rows)
    assert h.sink.flush() == {("p.alerts", 0): 8}
    (dead,) = h.backend.rows("dead_letters_raw")
    assert (dead["error_code"], dead["source_topic"], dead["source_offset"]) == (
        "NOT_CONFLUENT_FRAMED", "p.alerts", 7)
    assert h.backend.rows("ledger") == []


def test_reading_arrays_of_unequal_length_are_a_permanent_error() -> None:
    h = Harness()
    ragged = f.telemetry(5, readings=3)
    ragged["value"] = ragged["value"][:2]
    h.send("p.telemetry.clean", ragged)
    h.send("p.telemetry.clean", f.telemetry(6, readings=2))
    assert h.sink.flush() == {("p.telemetry.clean", 0): 2}
    (dead,) = h.backend.rows("dead_letters_raw")
    assert (dead["error_code"], dead["stage"], dead["source_topic"], dead["source_offset"]) == (
        "RAGGED_COLUMNS", "sink", "telemetry", 5)
    assert "value=2" in dead["error_message"] and dead["clean_offset"] == 0
    assert len(h.backend.rows("readings_raw")) == 2
    assert h.metric("ebi_rejects_total", topic="p.telemetry.clean", reason="RAGGED_COLUMNS") == 1


def test_transient_errors_retry_then_apply_backpressure() -> None:
    h = Harness()
    h.send("p.alerts", f.alert(1))
    h.backend.failures = [TransientError("down")]
    h.sink.flush()  # one retry is enough
    assert h.metric("ebi_sink_retries_total", table="alerts_raw") == 1
    h.send("p.alerts", f.alert(2))
    h.backend.failures = [TransientError("down")] * 2
    with pytest.raises(BackpressureError) as info:
        h.sink.flush()
    assert info.value.retry_after > 0 and h.sink.pending()
    assert h.sink.flush() == {("p.alerts", 0): 2}
    assert h.sink.failures == 0


def test_a_ledger_row_clickhouse_rejects_becomes_a_dead_letter_not_an_exit() -> None:
    backend = FakeBackend()
    backend.reject = lambda table, row: table == "ledger" and row["source_offset"] == 1
    h = Harness(backend)
    for o in range(3):
        h.send("p.incidents.clean", f.incident(o))
    assert h.sink.flush() == {("p.incidents.clean", 0): 3}
    assert sorted(r["source_offset"] for r in backend.rows("ledger")) == [0, 2]
    (dead,) = backend.rows("dead_letters_raw")
    assert (dead["error_code"], dead["stage"], dead["source_offset"]) == (
        "LEDGER_REJECTED", "sink", 1)


def test_a_poison_pill_is_quarantined_after_its_attempts_and_the_rest_is_written() -> None:
    h = Harness()
    h.send("p.alerts", f.alert(1))
    envelope, rows = h.decoder(h.serializer(f.alert(2), SerializationContext(
        "p.alerts", "Alert")), None, "p.alerts", 0, 9)
    del envelope.record["alert_type"]   # the encoder cannot handle it (not ClickHouse's doing)
    h.sink.add(envelope, "p.alerts", 0, 9, rows)
    for _ in range(2):          # poison_attempts is 3: two retries ask for a pause
        with pytest.raises(BackpressureError):
            h.sink.flush()
    assert h.sink.flush() == {("p.alerts", 0): 10}
    assert [r["alert_id"] for r in h.backend.rows("alerts_raw")] == ["al-1"]
    (dead,) = h.backend.rows("dead_letters_raw")
    assert dead["error_code"] == "QUARANTINED" and "KeyError" in dead["error_message"]
    assert h.metric("ebi_quarantined_total", stage="sink") == 1


def test_readings_already_stored_of_a_recheck_envelope_are_duplicates_not_rows() -> None:
    h = Harness()
    h.send("p.telemetry.clean", f.telemetry(0, readings=4))
    h.sink.flush()
    again = f.telemetry(1, readings=4)        # a replay: the same reading ids, new offset
    for name in ("reading_id", "event_time"):
        again[name] = f.telemetry(0, readings=4)[name]
    again["reading_id"][3] = "rd-new"
    again["recheck"] = True
    h.send("p.telemetry.clean", again)
    h.sink.flush()
    assert sorted(r["reading_id"] for r in h.backend.rows("readings_raw")) == sorted(
        [*f.telemetry(0, readings=4)["reading_id"], "rd-new"])
    second = [r for r in h.backend.rows("ledger") if r["source_offset"] == 1]
    assert [(r["accepted"], r["duplicates"]) for r in second] == [(1, 3)]
