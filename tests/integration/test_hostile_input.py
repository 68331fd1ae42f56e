"""No single message can stop, stall or flood the pipeline: a burst of hostile messages (one
of each kind found by fuzzing and by careless gateways) interleaved with normal traffic, on
the real stack (Kafka, Apicurio, the Debian ClickHouse server, `ebi worker`, `ebi sink`).

Worker and sink never exit; each hostile message has its dead letters with its reason and
exactly one of them carries its bytes; the dead-letter bytes stay within twice the hostile
bytes; the normal traffic all reaches ClickHouse and `ebi reconcile` is clean. Then a dead
letter is replayed once its cause is fixed (a sensor registered late), twice, and the
reading is stored once.
"""

from __future__ import annotations

import io
import json
import signal
import struct
import subprocess
import sys
import time
from typing import Any

import fastavro
import pytest

from schemas.catalog import default_catalog
from schemas.codec import AvroSerializer, SerializationContext, strip_millis
from streams import clients
from streams.kafkaio import publish
from streams.settings import Settings
from streams.worker.app import changelog_topic
from streams.worker.topics import ensure_topics
from tests.integration.conftest import unique
from tests.integration.test_sink_kit import ebi, env_for
from tests.integration.test_worker_kit import WorkerProcess

pytestmark = pytest.mark.integration
CATALOG = default_catalog()
NOW = int(time.time() * 1000)
ENT, GW, GW2 = "ent-hostile", "gw-hostile-1", "gw-hostile-2"


def reading(n: int, sensor: str, value: float = 0.2, rid: str = "",
            at: int | None = None) -> dict[str, Any]:
    return {"reading_id": rid or f"{sensor}-{n}", "sensor_id": sensor, "metric": "METHANE",
            "value": value, "unit": "PERCENT_VOL", "quality": "GOOD",
            "event_time": NOW - 60_000 + n if at is None else at}


def envelope(gateway: str, seq: int, readings: list[dict[str, Any]],
             sent: int | None = None) -> dict[str, Any]:
    return {"gateway_id": gateway, "enterprise_id": ENT, "sequence": seq,
            "sent_at": NOW - 30_000 + seq if sent is None else sent, "readings": readings}


def report(n: int, **changes: Any) -> dict[str, Any]:
    return {"incident_id": f"inc-hostile-{n}", "report_id": f"rep-hostile-{n}",
            "stage": "INITIAL", "kind": "PRODUCTION_SAFETY", "industry": "chemicals",
            "disaster_category": None, "occurred_at": NOW - 600_000, "reported_at": NOW - 60_000,
            "reporting_unit": "unit", "reporting_level": "ENTERPRISE", "region_code": "110101",
            "declared_level": "ORDINARY", "deaths": 0, "missing": 0, "serious_injuries": 0,
            "direct_economic_loss_cny": 0.0, "affected_population": 0, "description": "test",
            "publication": "INTERNAL", **changes}


def framed(s: Settings, logical: str, record: dict[str, Any]) -> bytes:
    topic = CATALOG.topic(logical)
    ser = AvroSerializer(clients.registry(s), millis=True)
    return ser(record, SerializationContext(s.topic(logical), topic.record))


def hostile(s: Settings) -> list[tuple[str, str, bytes | None, set[str]]]:
    """(logical topic, key, bytes, the reason codes its dead letters may have)."""
    registry = clients.registry(s)
    telemetry = framed(s, "telemetry", envelope(GW, 900, [reading(0, "s-1")]))
    string_id = registry.register(f"{unique('hostile')}-value", '"string"')
    wrong = struct.pack(">bI", 0, string_id) + b"\x06abc"
    # an int field (deaths) holding 2**40: written with a schema that says long
    schema = json.loads(CATALOG.schemas.text("IncidentReport"))
    for f in schema["fields"]:
        if f["name"] == "deaths":
            f["type"] = "long"
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(strip_millis(schema)),
                               report(7, deaths=2**40))
    header = framed(s, "incidents", report(0))[:5]
    return [
        ("telemetry", GW, b"\x00\x80\x00\x00\x00" + b"\x02" * 10, {"UNKNOWN_SCHEMA_ID"}),
        ("telemetry", GW, wrong, {"WRONG_SCHEMA"}),
        ("telemetry", GW, b"this is not Avro", {"NOT_CONFLUENT_FRAMED"}),
        ("telemetry", GW, telemetry[:-3], {"TRUNCATED_AVRO"}),
        ("telemetry", GW, None, {"EMPTY_MESSAGE"}),
        ("telemetry", GW, framed(s, "telemetry", envelope(GW, 901, [reading(
            1, "s-1", at=-2**63)])), {"BAD_TIMESTAMP"}),
        ("telemetry", GW, framed(s, "telemetry", envelope(GW, 902, [reading(2, "s-1")],
                                                          sent=-2**63)), {"BAD_TIMESTAMP"}),
        ("incidents", "inc-hostile-1", framed(s, "incidents", report(
            1, occurred_at=-2**63)), {"BAD_TIMESTAMP"}),
        ("incidents", "inc-hostile-2", framed(s, "incidents", report(
            2, direct_economic_loss_cny=float("nan"))), {"OUT_OF_RANGE"}),
        ("incidents", "inc-hostile-7", header + body.getvalue(), {"INVALID_AVRO"}),
        ("telemetry", GW, framed(s, "telemetry", envelope(GW, 903, [
            reading(i, "s-1") for i in range(20_000)])), {"TOO_MANY_READINGS"}),
        ("telemetry", GW, oversize(s), {"OVERSIZE"}),
        ("telemetry", GW, framed(s, "telemetry", envelope(GW, 905, [
            reading(i, "s-unregistered") for i in range(9_000)])), {"UNKNOWN_SENSOR"}),
    ]


def oversize(s: Settings) -> bytes:
    """A valid envelope just over the input limit (1 MiB) and under what the input topics'
    max.message.bytes lets through (1 MiB + 64 KiB): the broker takes it, the worker must
    reject it."""
    data = framed(s, "telemetry", envelope(GW, 904, [reading(i, "s-1", rid=f"{i:0>120}")
                                                     for i in range(7_600)]))
    assert 1_048_576 < len(data) < 1_100_000, len(data)
    return data


def normal(n: int) -> list[tuple[str, str, dict[str, Any]]]:
    items: list[tuple[str, str, dict[str, Any]]] = []
    for seq in range(n):
        for gw, sensors in ((GW, ("s-1", "s-2")), (GW2, ("s-3",))):
            items.append(("telemetry", gw, envelope(gw, seq, [
                reading(seq * 10 + i, sensor) for i in range(5) for sensor in sensors])))
    items.append(("incidents", "inc-normal", report(99)))
    return items


def q(s: Settings, sql: str) -> list[str]:
    done = ebi(s, "query", "--format", "csv", sql)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[1:]


def test_a_burst_of_hostile_messages_stops_nothing(settings: Settings,
                                                    clickhouse_server_url: str) -> None:
    db = unique("hostile")
    s = settings.replace(topic_prefix=f"{db}.", topic_partitions=2,
                         worker_id=unique("ebi-hostile"), sink_group=unique("hostile-sink"),
                         clickhouse_url=f"{clickhouse_server_url.rsplit('/', 1)[0]}/{db}")
    ensure_topics(s, CATALOG)
    ensure_topics(s, CATALOG, changelogs=[changelog_topic(s, "gateways")], partitions=2)
    assert ebi(s, "migrate").returncode == 0
    registry = clients.registry(s)
    publish(s, registry, [("enterprises", ENT, {
        "enterprise_id": ENT, "name": "hostile", "region_code": "110101",
        "industry": "chemicals", "updated_at": NOW - 86_400_000})] + [
        ("sensors", sid, {"sensor_id": sid, "enterprise_id": ENT, "gateway_id": gw,
                          "metric": "METHANE", "unit": "PERCENT_VOL", "alarm_level1": None,
                          "alarm_level2": None, "updated_at": NOW - 86_400_000})
        for sid, gw in (("s-1", GW), ("s-2", GW), ("s-3", GW2))])
    # a value in the gateways' changelog that is not a state (W6): GW2 starts afresh
    raw = clients.producer(s)
    raw.produce(changelog_topic(s, "gateways"), key=GW2.encode(), value=b"not json {")
    raw.flush(10)
    bad = hostile(s)
    good = normal(20)
    producer = clients.producer(s, **{"message.max.bytes": 8_000_000, "linger.ms": 5})
    items: list[tuple[str, str, Any]] = []
    for i, item in enumerate(good):
        items.append(item)
        if i < len(bad):
            items.append(bad[i][:3])
    items += [b[:3] for b in bad[len(good):]]
    worker = WorkerProcess(s).start()
    sink_log = open(s.data_dir / f"{s.sink_group}.log", "wb")  # noqa: SIM115 - the child's
    sink = subprocess.Popen([sys.executable, "-m", "streams", "sink"], env=env_for(s),
                            stdout=sink_log, stderr=subprocess.STDOUT)
    try:
        coords = publish(s, registry, items, producer=producer)
        hostile_at = {c: b for c, (_, _, value) in zip(coords, items, strict=True)
                      for b in bad if b[2] is value}
        deadline = time.monotonic() + 240
        while True:
            done = ebi(s, "reconcile")
            if done.returncode == 0 and "in flight" not in done.stdout:   # all accounted
                break
            assert time.monotonic() < deadline, done.stdout[-3000:] + worker.tail()
            assert worker.alive(), worker.tail()
            assert sink.poll() is None, (s.data_dir / f"{s.sink_group}.log").read_text()
            time.sleep(3)
        assert worker.alive(), worker.tail()
        assert sink.poll() is None
        total_in = total_dead = 0
        for (topic, partition, offset), (_, _, value, codes) in hostile_at.items():
            rows = [r.split(",") for r in q(
                s, f"SELECT error_code, hex(value), isNull(record_index) FROM dead_letters "
                   f"WHERE source_topic = '{topic}' AND source_partition = {partition} AND "
                   f"source_offset = {offset}")]
            assert rows, f"no dead letter for the hostile message at {offset} ({codes})"
            found = {code for code, _, _ in rows}
            assert found <= codes | {"UNKNOWN_SENSOR"} and found & codes, (codes, found)
            carried = [r for r in rows if bytes.fromhex(r[1]) == (value or b"")[:1_048_576]]
            whole = any(alone == "1" for _, _, alone in rows)   # rejected as a whole
            assert len(carried) == (1 if whole else 0) or len(rows) > 10, (codes, len(carried))
            total_in += len(value or b"")
            total_dead += sum(len(v) // 2 for _, v, _ in rows)
        print(f"\nhostile input {total_in} bytes, their dead letters {total_dead} bytes "
              f"({total_dead / total_in:.2f}x)")
        assert total_dead <= 2 * total_in
        readings = q(s, "SELECT count() FROM readings")
        assert readings == [str(20 * 15)]
        # a sensor registered late: its rejected readings replayed once, then again
        publish(s, registry, [("sensors", "s-unregistered", {
            "sensor_id": "s-unregistered", "enterprise_id": ENT, "gateway_id": GW,
            "metric": "METHANE", "unit": "PERCENT_VOL", "alarm_level1": None,
            "alarm_level2": None, "updated_at": NOW - 1000})])
        for _ in range(2):
            replay = ebi(s, "dead-letters", "replay", "--reason", "UNKNOWN_SENSOR")
            assert replay.returncode == 0, replay.stdout + replay.stderr
            deadline = time.monotonic() + 120
            while q(s, "SELECT count() FROM readings WHERE sensor_id = 's-unregistered'") != [
                    "9000"]:
                assert time.monotonic() < deadline, worker.tail()
                time.sleep(2)
        time.sleep(5)
        assert q(s, "SELECT count() FROM readings WHERE sensor_id = 's-unregistered'") == [
            "9000"]
        done = ebi(s, "reconcile")
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        sink.send_signal(signal.SIGTERM)
        code = sink.wait(60)
        sink_log.close()
        assert worker.stop() == 0, worker.tail()
    assert code == 0
