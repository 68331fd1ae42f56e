"""The pipeline with signatures verified: simulator traffic signed by the dev keyring goes
through untouched, and each spoofing case becomes its dead letter or flag."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from schemas.catalog import default_catalog
from schemas.catalog.declarations import SIGNING_KEY
from schemas.codec import AvroDeserializer, AvroSerializer, SerializationContext
from schemas.records import Source
from schemas.registry import InMemoryRegistry
from streams.metrics import Metrics
from streams.policy import Policy, load_policy
from streams.processors.base import DictStore
from streams.processors.common import Outputs
from streams.processors.context import ProcessorContext
from streams.processors.reference import ReferenceData
from streams.signing.devkeys import DevKeyring, DevSigner
from streams.signing.keys import KeyRef, key_id_of, new_private_key, registration
from streams.signing.senders import SenderCheck
from streams.signing.signer import KeySigner
from streams.signing.trust import load_trust
from streams.signing.verify import Rejected, Verifier
from streams.simulate import SimConfig, Simulator
from streams.worker.pipeline import Pipeline

CATALOG = default_catalog()
NOW = int(time.time() * 1000)


class SignedHarness:
    """The pipeline as the worker runs it, with the reference feed's checks in memory."""

    def __init__(self, policy: Policy, data_dir: Path) -> None:
        self.registry = InMemoryRegistry()
        self.serializer = AvroSerializer(self.registry)
        self.reference = ReferenceData(policy)
        self.keyring = DevKeyring.ensure(data_dir)
        self.verifier = Verifier(self.reference.keys,
                                 load_trust(data_dir / "signing" / "trust.toml"))
        self.stores = {name: DictStore() for name in CATALOG.state_groups()}
        self.pipeline = Pipeline(
            CATALOG, ProcessorContext(policy, self.reference, Metrics.create(CollectorRegistry())),
            AvroDeserializer(self.registry, millis=True), self.stores,
            senders=SenderCheck(self.verifier, policy.raw))
        self.signer = DevSigner(self.keyring, CATALOG, self.register)
        self.offsets: Counter[tuple[str, int]] = Counter()
        self.rejected_registrations: list[Rejected] = []

    def register(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self.feed("keys", record["key_id"], record)

    def frame(self, topic: str, record: dict[str, Any]) -> bytes:
        return self.serializer(record, SerializationContext(f"t.{topic}",
                                                            CATALOG.topic(topic).record))

    def feed(self, topic: str, key: str, value: dict[str, Any] | bytes | None,
             signer: Any = "dev", headers: Any = None) -> Outputs:
        record = value if isinstance(value, dict) else None
        data = self.frame(topic, record) if record is not None else value
        assert not isinstance(data, dict)
        if headers is None and signer is not None:
            signer = self.signer if signer == "dev" else signer
            headers = signer.sign(topic, key.encode(), data, record)
        kind = CATALOG.of_input(topic)
        if kind.reference is not None:    # as the reference feed: verified, then applied
            assert kind.signed is not None
            verdict = self.verifier.verify(kind.signed, topic, key.encode(), data, headers, NOW)
            if isinstance(verdict, Rejected):
                self.rejected_registrations.append(verdict)
            else:
                self.reference.apply(kind, key, record, NOW)
            return Outputs()
        partition = sum(key.encode()) % 4
        offset = self.offsets[(topic, partition)]
        self.offsets[(topic, partition)] += 1
        source = Source(f"t.{topic}", partition, offset, None, NOW)
        signed = self.pipeline.verify(topic, source, key.encode(), data, headers, NOW)
        if isinstance(signed, Rejected):
            return self.pipeline.rejected(topic, source, key.encode(), data, signed, NOW)
        rec, source, out = self.pipeline.decode(topic, source, key.encode(), data, NOW)
        if rec is not None:
            assert data is not None
            out, _ = self.pipeline.apply(topic, rec, source, key.encode(), data, NOW, signed)
        assert out is not None
        return out


@pytest.fixture
def policy() -> Policy:
    return load_policy()


@pytest.fixture
def h(policy: Policy, tmp_path: Path) -> SignedHarness:
    harness = SignedHarness(policy, tmp_path)
    for n, ent in ((1, "ent-a"), (2, "ent-b")):
        harness.feed("enterprises", ent, {"enterprise_id": ent, "name": ent,
                                          "region_code": "320102", "industry": "chemicals",
                                          "updated_at": NOW})
        harness.feed("sensors", f"s-{n}", {
            "sensor_id": f"s-{n}", "enterprise_id": ent, "gateway_id": f"gw-{ent[-1]}",
            "metric": "METHANE", "unit": "PERCENT_VOL", "alarm_level1": None,
            "alarm_level2": None, "updated_at": NOW})
    return harness


def envelope(gateway: str, enterprise: str, sensor: str, seq: int = 1) -> dict[str, Any]:
    return {"gateway_id": gateway, "enterprise_id": enterprise, "sequence": seq,
            "sent_at": NOW - 5000, "readings": [{
                "reading_id": f"{gateway}-{seq}-{sensor}", "sensor_id": sensor,
                "metric": "METHANE", "value": 0.3, "unit": "PERCENT_VOL", "quality": "GOOD",
                "event_time": NOW - 6000}]}


def hazard(enterprise: str, status: str = "FOUND", version: int = 1) -> dict[str, Any]:
    return {"hazard_id": "hz-b-1", "version": version, "enterprise_id": enterprise,
            "region_code": "320102", "category": "fire", "level": "MAJOR", "status": status,
            "found_at": NOW - 86_400_000, "rectification_deadline": None,
            "updated_at": NOW - 1000 + version, "description": ""}


def report(region: str, publication: str = "INTERNAL", n: int = 1) -> dict[str, Any]:
    return {"incident_id": f"inc-{region}-{n}", "report_id": f"rep-{region}-{n}",
            "stage": "INITIAL", "kind": "NATURAL_DISASTER", "industry": None,
            "disaster_category": "FLOOD_DROUGHT", "occurred_at": NOW - 600_000,
            "reported_at": NOW - 60_000, "reporting_unit": "bureau", "reporting_level": "COUNTY",
            "region_code": region, "declared_level": "ORDINARY", "deaths": 0, "missing": 0,
            "serious_injuries": 0, "direct_economic_loss_cny": 0.0,
            "affected_population": 10, "description": "", "publication": publication}


def only_dead(out: Outputs) -> tuple[str, str]:
    assert out.clean is None and len(out.dead_letters) == 1, out
    letter = out.dead_letters[0]
    assert letter["value"] and letter["source"]["topic"].startswith("t.")
    return letter["error_code"], letter["error_message"]


def test_signed_records_pass_and_keep_their_signature(h: SignedHarness) -> None:
    out = h.feed("telemetry", "gw-a", envelope("gw-a", "ent-a", "s-1"))
    assert out.clean is not None and not out.dead_letters
    assert out.clean["key_id"] == h.keyring.key("GATEWAY", "gw-a", "ent-a")[0].key_id
    assert len(out.clean["signature"]) == 64 and len(out.clean["signed_digest"]) == 32
    out = h.feed("hazards", "hz-b-1", hazard("ent-b"))
    assert out.clean is not None and out.clean["signed_value"].startswith(b"\x00")
    assert h.stores["hazards"].get(b"hz-b-1")["enterprise_id"] == "ent-b"


def test_a_gateway_posting_as_another_is_dead_lettered(h: SignedHarness) -> None:
    gw_a = h.keyring.key("GATEWAY", "gw-a", "ent-a")[1]
    h.feed("telemetry", "gw-a", envelope("gw-a", "ent-a", "s-1"))        # registers A's key
    # B's gateway, B's enterprise, signed by A
    code, why = only_dead(h.feed("telemetry", "gw-b", envelope("gw-b", "ent-b", "s-2"),
                                 signer=gw_a))
    assert code == "IDENTITY_MISMATCH" and "gateway gw-b is not the key's gateway gw-a" in why
    code, _ = only_dead(h.feed("heartbeats", "gw-b", {
        "gateway_id": "gw-b", "enterprise_id": "ent-b", "sent_at": NOW - 1000, "sequence": 1,
        "interval_s": 60, "firmware": None}, signer=gw_a))
    assert code == "IDENTITY_MISMATCH"
    # A's own envelope carrying a reading of B's sensor: that reading only
    out = h.feed("telemetry", "gw-a", envelope("gw-a", "ent-a", "s-2", seq=2))
    assert out.clean is not None and out.clean["rejected"] == 1
    assert [d["error_code"] for d in out.dead_letters] == ["IDENTITY_MISMATCH"]
    assert out.dead_letters[0]["key_id"] == out.clean["key_id"]
    # the message key must be the record's: a signature for gw-a's key does not move
    code, _ = only_dead(h.feed("telemetry", "gw-b", envelope("gw-a", "ent-a", "s-1", 3)))
    assert code == "IDENTITY_MISMATCH"


def test_a_hazard_closure_by_another_enterprise_is_dead_lettered(h: SignedHarness) -> None:
    assert h.feed("hazards", "hz-b-1", hazard("ent-b")).clean is not None
    code, why = only_dead(h.feed("hazards", "hz-b-1", hazard("ent-a", "CLOSED", 2)))
    assert code == "IDENTITY_MISMATCH" and "another owner" in why
    gw_a = h.keyring.key("GATEWAY", "gw-a", "ent-a")[1]
    h.signer.prepare([("telemetry", "gw-a", envelope("gw-a", "ent-a", "s-1"))])
    code, _ = only_dead(h.feed("hazards", "hz-b-1", hazard("ent-b", "CLOSED", 3),
                               signer=gw_a))
    assert code == "IDENTITY_MISMATCH"
    assert h.feed("hazards", "hz-b-1", hazard("ent-b", "CLOSED", 4)).clean is not None


def test_unsigned_badly_signed_unknown_and_revoked(h: SignedHarness) -> None:
    value = envelope("gw-a", "ent-a", "s-1")
    code, why = only_dead(h.feed("telemetry", "gw-a", value, signer=None))
    assert code == "BAD_SIGNATURE" and "unsigned" in why
    stranger = KeySigner(new_private_key())
    code, why = only_dead(h.feed("telemetry", "gw-a", value, signer=stranger))
    assert code == "BAD_SIGNATURE" and "not a registered key" in why
    good = h.signer.sign("telemetry", b"gw-a", h.frame("telemetry", value), value)
    forged = dict(value, sequence=99)
    code, why = only_dead(h.feed("telemetry", "gw-a", forged, headers=good))
    assert code == "BAD_SIGNATURE" and "does not match" in why
    letter = h.feed("telemetry", "gw-a", forged, headers=good).dead_letters[0]
    assert letter["key_id"] and letter["signature"]           # kept for a replay
    # a key revoked before the message arrived
    private = new_private_key()
    ref = KeyRef(key_id_of(private), "GATEWAY", "gw-a", "ent-a", private.public_key(), 0,
                 NOW - 1)
    h.feed("keys", ref.key_id, registration(ref, NOW))
    code, why = only_dead(h.feed("telemetry", "gw-a", value, signer=KeySigner(private)))
    assert code == "BAD_SIGNATURE" and "revoked" in why


def test_rotation_two_valid_keys_and_a_registration_signed_by_a_gateway(
        h: SignedHarness) -> None:
    value = envelope("gw-a", "ent-a", "s-1")
    new = new_private_key()
    ref = KeyRef(key_id_of(new), "GATEWAY", "gw-a", "ent-a", new.public_key(), 0)
    h.feed("keys", ref.key_id, registration(ref, NOW))
    assert h.feed("telemetry", "gw-a", value).clean is not None                 # old key
    assert h.feed("telemetry", "gw-a", dict(value, sequence=2),
                  signer=KeySigner(new)).clean is not None                       # new key
    # a gateway cannot register keys or deregister an enterprise
    gw_a = h.keyring.key("GATEWAY", "gw-a", "ent-a")[1]
    rogue = new_private_key()
    rogue_ref = KeyRef(key_id_of(rogue), "GATEWAY", "gw-b", "ent-b", rogue.public_key(), 0)
    h.feed("keys", rogue_ref.key_id, registration(rogue_ref, NOW), signer=gw_a)
    h.feed("enterprises", "ent-b", None, signer=gw_a)
    assert [r.code for r in h.rejected_registrations] == ["BAD_SIGNATURE"] * 2
    assert rogue_ref.key_id not in h.reference.keys and "ent-b" in h.reference.enterprises
    h.feed(SIGNING_KEY.input.name, ref.key_id, None)                             # forget it
    assert ref.key_id not in h.reference.keys


def test_publication_only_from_a_publisher(h: SignedHarness) -> None:
    out = h.feed("incidents", "inc-320102-1", report("320102", "AUTHORISED"))   # county
    assert out.clean is not None and out.clean["publication"] == "INTERNAL"
    assert "UNAUTHORISED_PUBLICATION" in out.clean["flags"]
    assert [a["alert_type"] for a in out.alerts] == ["UNAUTHORISED_PUBLICATION"]
    assert out.alerts[0]["severity"] == "CRITICAL" and out.alerts[0]["region_code"] == \
        "320102"
    province = h.keyring.key("REGIONAL", "320000")[1]
    h.signer.prepare([("incidents", "x", {"region_code": "320000"})])   # registers 320000
    out = h.feed("incidents", "inc-320102-2", report("320102", "AUTHORISED", 2),
                 signer=province)
    assert out.clean is not None and out.clean["publication"] == "AUTHORISED"
    assert not out.alerts and out.clean["flags"] == []
    # another county may not continue this incident, nor report in another's region
    other = h.keyring.key("REGIONAL", "320103")[1]
    h.signer.prepare([("incidents", "x", {"region_code": "320103"})])
    follow = dict(report("320102", n=2), report_id="rep-x", stage="FOLLOW_UP")
    code, _ = only_dead(h.feed("incidents", "inc-320102-2", follow, signer=other))
    assert code == "IDENTITY_MISMATCH"


def test_unverified_authorised_reports_are_not_honoured(policy: Policy) -> None:
    from streams.processors.reference import ReferenceData

    pipeline = Pipeline(CATALOG, ProcessorContext(policy, ReferenceData(policy),
                                                  Metrics.create(CollectorRegistry())),
                        AvroDeserializer(InMemoryRegistry(), millis=True),
                        {name: DictStore() for name in CATALOG.state_groups()})
    rec = report("320000", "AUTHORISED")
    out, _ = pipeline.apply("incidents", rec, Source("t.incidents", 0, 0, None, NOW),
                            b"inc-320000-1", b"", NOW)
    assert out.clean is not None and out.clean["publication"] == "INTERNAL"


def test_simulated_traffic_signed_by_the_dev_keyring_is_all_accepted(
        policy: Policy, tmp_path: Path) -> None:
    h = SignedHarness(policy, tmp_path)
    cfg = SimConfig(seed=3, duration_s=20, rate=300, start_ms=NOW - 30_000,
                    incidents_per_min=20, hazards_per_min=20)
    sim = Simulator(cfg, policy, header=lambda t: h.serializer.header(
        f"t.{t}", CATALOG.topic(t).record))
    codes: Counter[str] = Counter()
    for topic, key, value, _ in sim:
        out = h.feed(topic, key, value)
        codes.update(d["error_code"] for d in out.dead_letters)
    assert not h.rejected_registrations
    assert codes["BAD_SIGNATURE"] == codes["IDENTITY_MISMATCH"] == 0, codes
