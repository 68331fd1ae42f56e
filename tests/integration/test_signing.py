"""Records bound to their sender, on the session's secured stack (Kafka SASL_SSL with the
ACLs of deploy/access/local.toml, Apicurio, the Debian ClickHouse server, `ebi worker`,
`ebi sink`): each spoofing case is written by a real principal and ends in ClickHouse as a
dead letter or a flag with its reason; then `ebi verify` proves the stored records and
catches a row changed in ClickHouse.

Keys: the session's dev keyring (tests/integration/conftest.py). Enterprise A's gateway
(principal gateway-a) signs with gateway A's key; the county system (regional-32) with the
key of county 320102; the provincial bureau with the key of province 320000.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from schemas.catalog import default_catalog
from sinks.clickhouse import connect
from streams import clients
from streams.kafkaio import Coordinates, publish
from streams.settings import Settings
from streams.signing.devkeys import DevKeyring
from streams.signing.keys import new_private_key
from streams.signing.signer import KeySigner
from streams.worker.app import changelog_topic
from streams.worker.topics import ensure_topics
from tests.integration.conftest import as_principal, unique
from tests.integration.test_sink_kit import ebi, env_for
from tests.integration.test_worker_kit import WorkerProcess

pytestmark = pytest.mark.integration
CATALOG = default_catalog()
NOW = int(time.time() * 1000)
ENT_A, ENT_B, GW_A, GW_B = "ent-sig-a", "ent-sig-b", "gw-sig-a", "gw-sig-b"
COUNTY, PROVINCE = "320102", "320000"


def reading(n: int, sensor: str) -> dict[str, Any]:
    return {"reading_id": f"sig-{sensor}-{n}", "sensor_id": sensor, "metric": "METHANE",
            "value": 0.2, "unit": "PERCENT_VOL", "quality": "GOOD",
            "event_time": NOW - 60_000 + n}


def envelope(gateway: str, enterprise: str, seq: int, sensors: tuple[str, ...]
             ) -> dict[str, Any]:
    return {"gateway_id": gateway, "enterprise_id": enterprise, "sequence": seq,
            "sent_at": NOW - 30_000 + seq,
            "readings": [reading(seq * 10 + i, s) for i, s in enumerate(sensors)]}


def heartbeat(gateway: str, enterprise: str, seq: int) -> dict[str, Any]:
    return {"gateway_id": gateway, "enterprise_id": enterprise, "sent_at": NOW - 20_000 + seq,
            "sequence": seq, "interval_s": 3600, "firmware": None}


def hazard(enterprise: str, version: int, status: str) -> dict[str, Any]:
    return {"hazard_id": "hz-sig-b", "version": version, "enterprise_id": enterprise,
            "region_code": COUNTY, "category": "fire", "level": "MAJOR", "status": status,
            "found_at": NOW - 86_400_000, "rectification_deadline": None,
            "updated_at": NOW - 10_000 + version, "description": "blocked fire exit"}


def report(n: int, region: str, publication: str, deaths: int = 0) -> dict[str, Any]:
    return {"incident_id": f"inc-sig-{n}", "report_id": f"rep-sig-{n}", "stage": "INITIAL",
            "kind": "NATURAL_DISASTER", "industry": None, "disaster_category": "FLOOD_DROUGHT",
            "occurred_at": NOW - 600_000, "reported_at": NOW - 60_000,
            "reporting_unit": f"bureau {region}", "reporting_level": "COUNTY",
            "region_code": COUNTY, "declared_level": "ORDINARY", "deaths": deaths,
            "missing": 0, "serious_injuries": 0, "direct_economic_loss_cny": 0.0,
            "affected_population": 100, "description": "flood", "publication": publication}


def q(s: Settings, sql: str) -> list[list[str]]:
    done = ebi(s, "query", "--format", "csv", sql)
    assert done.returncode == 0, done.stderr
    return [line.split(",") for line in done.stdout.strip().splitlines()[1:]]


def dead_letters_at(s: Settings, coords: Coordinates) -> list[tuple[str, str, str]]:
    """(error code, stage, record_index or NULL) of the dead letters of one input message."""
    topic, partition, offset = coords
    rows = q(s, f"SELECT error_code, stage, ifNull(toString(record_index), 'NULL') FROM "
                f"dead_letters WHERE source_topic = '{topic}' AND source_partition = "
                f"{partition} AND source_offset = {offset} ORDER BY error_code")
    return [(r[0], r[1], r[2]) for r in rows]


def test_spoofed_records_are_refused_and_stored_ones_verify(
        settings: Settings, clickhouse_server_url: str) -> None:
    db = unique("signing")
    s = settings.replace(topic_prefix=f"{db}.", topic_partitions=2,
                         worker_id=unique("ebi-signing"), sink_group=unique("signing-sink"),
                         clickhouse_url=f"{clickhouse_server_url.rsplit('/', 1)[0]}/{db}")
    ensure_topics(s, CATALOG)
    for table in CATALOG.state_groups():
        ensure_topics(s, CATALOG, changelogs=[changelog_topic(s, table)], partitions=2)
    assert ebi(s, "migrate").returncode == 0
    principals = ("gateway-a", "gateway-b", "regional-32", "simulator")
    grant_roles(s, principals)          # the principals' ACLs on this test's topics too
    registry = clients.registry(s)
    keyring = DevKeyring.existing(s.data_dir)
    assert keyring is not None, "the session fixtures make the dev keyring"
    # the registration authority registers both enterprises and their sensors (signed with
    # the dev authority's key); the dev signer registers each sender's key on first use
    publish(s, registry, [
        *(("enterprises", ent, {"enterprise_id": ent, "name": ent, "region_code": COUNTY,
                                "industry": "chemicals", "updated_at": NOW - 86_400_000})
          for ent in (ENT_A, ENT_B)),
        *(("sensors", sid, {"sensor_id": sid, "enterprise_id": ent, "gateway_id": gw,
                            "metric": "METHANE", "unit": "PERCENT_VOL", "alarm_level1": None,
                            "alarm_level2": None, "updated_at": NOW - 86_400_000})
          for sid, ent, gw in (("s-sig-a", ENT_A, GW_A), ("s-sig-b", ENT_B, GW_B)))])
    gateway_a = as_principal(s, "gateway-a")
    gateway_b = as_principal(s, "gateway-b")
    county = as_principal(s, "regional-32")
    registrar = as_principal(s, "simulator")        # holds the registrar role (and others)
    key_a = keyring.key("GATEWAY", GW_A, ENT_A)[1]
    key_b = keyring.key("GATEWAY", GW_B, ENT_B)[1]
    county_key = keyring.key("REGIONAL", COUNTY)[1]
    province_key = keyring.key("REGIONAL", PROVINCE)[1]
    # honest traffic first (its keys registered by the admin's dev signer)
    honest = publish(s, registry, [
        ("telemetry", GW_A, envelope(GW_A, ENT_A, 1, ("s-sig-a",) * 3)),
        ("telemetry", GW_B, envelope(GW_B, ENT_B, 1, ("s-sig-b",) * 3)),
        ("heartbeats", GW_B, heartbeat(GW_B, ENT_B, 1)),
        ("hazards", "hz-sig-b", hazard(ENT_B, 1, "FOUND")),
        ("incidents", "inc-sig-1", report(1, COUNTY, "INTERNAL", deaths=5)),
        ("incidents", "inc-sig-3", dict(report(3, PROVINCE, "AUTHORISED"),
                                        region_code=PROVINCE)),
    ])
    # gateway A, with its own principal and key, posting as B
    as_b = publish(gateway_a, registry, [
        ("telemetry", GW_B, envelope(GW_B, ENT_B, 2, ("s-sig-b",))),     # B's gateway
        ("heartbeats", GW_B, heartbeat(GW_B, ENT_B, 2)),
        ("telemetry", GW_A, envelope(GW_A, ENT_A, 2, ("s-sig-a", "s-sig-b"))),  # B's sensor
        ("hazards", "hz-sig-b", hazard(ENT_A, 2, "CLOSED")),             # closes B's hazard
        ("hazards", "hz-sig-b", hazard(ENT_B, 3, "CLOSED")),             # ... in B's name
    ], signer=key_a)
    # unsigned, signed by nobody we know, and B's signature on an altered message
    stranger = KeySigner(new_private_key())
    unsigned = publish(gateway_b, registry, [
        ("telemetry", GW_B, envelope(GW_B, ENT_B, 3, ("s-sig-b",)))], signer=None)
    unknown = publish(gateway_b, registry, [
        ("telemetry", GW_B, envelope(GW_B, ENT_B, 4, ("s-sig-b",)))], signer=stranger)
    altered = publish(gateway_b, registry, [
        ("telemetry", GW_B, envelope(GW_B, ENT_B, 5, ("s-sig-b",)))],
        signer=Replaying(key_b, envelope(GW_B, ENT_B, 6, ("s-sig-b",)), s, registry))
    # AUTHORISED from a county system (refused) and from the province (honoured)
    published = publish(county, registry, [
        ("incidents", "inc-sig-2", report(2, COUNTY, "AUTHORISED"))], signer=county_key)
    by_province = publish(county, registry, [   # (the test's principal; the key decides)
        ("incidents", "inc-sig-4", report(4, PROVINCE, "AUTHORISED"))], signer=province_key)
    # a deregistration of B: a gateway may not write it at all, and one signed with A's key
    # by a principal that may is not applied
    with pytest.raises(RuntimeError, match=r"TOPIC_AUTHORIZATION_FAILED|[Aa]uthorization"):
        publish(gateway_a, registry, [("enterprises", ENT_B, None)], signer=key_a)
    tombstone = publish(registrar, registry, [("enterprises", ENT_B, None)], signer=key_a)
    after = publish(s, registry, [("telemetry", GW_B, envelope(GW_B, ENT_B, 7, ("s-sig-b",)))])

    worker = WorkerProcess(s).start()
    sink_log = open(s.data_dir / f"{s.sink_group}.log", "wb")  # noqa: SIM115 - the child's
    sink = subprocess.Popen([sys.executable, "-m", "streams", "sink"], env=env_for(s),
                            stdout=sink_log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while True:
            done = ebi(s, "reconcile")
            settled = done.returncode == 0 and "in flight" not in done.stdout
            if settled and q(s, "SELECT count() FROM dead_letters WHERE "
                                f"source_topic = '{s.topic('enterprises')}'"):
                break
            assert time.monotonic() < deadline, done.stdout[-3000:] + worker.tail()
            assert worker.alive(), worker.tail()
            assert sink.poll() is None, (s.data_dir / f"{s.sink_group}.log").read_text()
            time.sleep(3)
        # honest records are stored with their signature
        assert [r[0] for r in q(s, "SELECT count() FROM readings WHERE key_id IS NOT NULL "
                                   "AND length(signature) = 64")] == [str(3 + 3 + 1 + 1)]
        assert dead_letters_at(s, honest[0]) == []
        # A posting as B
        b_gateway, b_heartbeat, b_sensor, closed_as_a, closed_as_b = as_b
        for coords in (b_gateway, b_heartbeat, closed_as_a, closed_as_b):
            assert dead_letters_at(s, coords) == [("IDENTITY_MISMATCH", "verify", "NULL")]
        assert dead_letters_at(s, b_sensor) == [("IDENTITY_MISMATCH", "validate", "1")]
        assert q(s, "SELECT status FROM hazards WHERE hazard_id = 'hz-sig-b'") == [["FOUND"]]
        # unsigned, unknown key, altered
        for coords, why in ((unsigned[0], "unsigned"), (unknown[0], "not a registered key"),
                            (altered[0], "does not match")):
            assert dead_letters_at(s, coords) == [("BAD_SIGNATURE", "verify", "NULL")]
            topic, partition, offset = coords
            message = q(s, f"SELECT error_message FROM dead_letters WHERE source_topic = "
                           f"'{topic}' AND source_partition = {partition} AND "
                           f"source_offset = {offset}")
            assert why in ",".join(message[0]), message
        # the forged deregistration: dead-lettered, not applied (B's next envelope is fine)
        assert dead_letters_at(s, tombstone[0]) == [("BAD_SIGNATURE", "verify", "NULL")]
        assert dead_letters_at(s, after[0]) == []
        assert q(s, "SELECT count() FROM readings WHERE sequence = 7") == [["1"]]
        # publication: the county's AUTHORISED is stored INTERNAL, flagged and alerted
        flags = q(s, "SELECT report_id, publication, has(flags, 'UNAUTHORISED_PUBLICATION') "
                     "FROM incident_reports ORDER BY report_id")
        assert flags == [["rep-sig-1", "INTERNAL", "0"], ["rep-sig-2", "INTERNAL", "1"],
                         ["rep-sig-3", "AUTHORISED", "0"], ["rep-sig-4", "AUTHORISED", "0"]]
        assert dead_letters_at(s, published[0]) == [] == dead_letters_at(s, by_province[0])
        assert q(s, "SELECT subject_id FROM alerts WHERE alert_type = "
                    "'UNAUTHORISED_PUBLICATION'") == [["inc-sig-2"]]
        assert q(s, "SELECT incident_id FROM published_incidents ORDER BY incident_id") == [
            ["inc-sig-3"], ["inc-sig-4"]]
        # every dead letter above is in the ledger like any other
        assert ebi(s, "reconcile").returncode == 0
        # ebi verify: the stored records are their senders'
        verified = ebi(s, "verify", timeout=180)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "incident_reports_raw: 4 message(s): 4 verified" in verified.stdout
        assert "readings_raw: " in verified.stdout and "TAMPERED" not in verified.stdout
        # ... and a row changed in ClickHouse is caught
        backend = connect(s.clickhouse)
        try:
            backend.command(f"ALTER TABLE {db}.incident_reports_raw UPDATE deaths = 0 "
                            "WHERE report_id = 'rep-sig-1'")
            wait_for_mutations(backend, db)
        finally:
            backend.close()
        tampered = ebi(s, "verify", "--table", "incident_reports_raw", timeout=180)
        assert tampered.returncode == 1, tampered.stdout + tampered.stderr
        assert "TAMPERED" in tampered.stdout and "deaths: stored 0, signed 5" in \
            tampered.stdout, tampered.stdout
    finally:
        sink.terminate()
        code = sink.wait(60)
        sink_log.close()
        assert worker.stop() == 0, worker.tail()
    assert code == 0


def grant_roles(s: Settings, principals: tuple[str, ...]) -> None:
    """The ACLs of the principals' roles (deploy/access/local.toml) on ``s``'s topics, added
    beside the session's (``ebi access apply`` would replace those)."""
    from streams.access import kafka_acls
    from streams.access.declaration import load_declaration

    declared = load_declaration().principals
    kafka_acls.grant(clients.admin(s), [g for p in principals for role in declared[p]
                                        for g in kafka_acls.role_grants(role, p, s)])


def wait_for_mutations(backend: Any, db: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while backend.query(f"SELECT count() FROM system.mutations WHERE database = '{db}' "
                        "AND is_done = 0").scalar() not in (0, "0"):
        assert time.monotonic() < deadline, "the ALTER UPDATE did not finish"
        time.sleep(0.5)


class Replaying:
    """Signs every message with the signature of another one (a replayed signature)."""

    def __init__(self, signer: KeySigner, original: dict[str, Any], s: Settings,
                 registry: Any) -> None:
        from schemas.codec import AvroSerializer, SerializationContext

        value = AvroSerializer(registry)(original, SerializationContext(
            s.topic("telemetry"), "TelemetryBatch"))
        self.headers = signer.sign("telemetry", original["gateway_id"].encode(), value)

    def prepare(self, items: Any) -> None:
        return None

    def sign(self, *args: Any, **kwargs: Any) -> list[tuple[str, bytes]]:
        return self.headers
