"""A plant for the alarm book's tests: the real pipeline (processors, the book stage, the
clocks) over in-memory state, fed with encoded records the way the worker gets them."""

from __future__ import annotations

from collections import Counter
from typing import Any

from prometheus_client import CollectorRegistry

from schemas.catalog import default_catalog
from schemas.codec import AvroDeserializer, AvroSerializer, SerializationContext
from schemas.records import Record, Source
from schemas.registry import InMemoryRegistry
from streams.metrics import Metrics
from streams.policy import Policy
from streams.processors.base import DictStore
from streams.processors.common import Outputs
from streams.processors.context import ProcessorContext
from streams.processors.reference import ReferenceData
from streams.worker.pipeline import Pipeline

CATALOG = default_catalog()
T0 = 1_790_000_000_000          # ms
S = 1000
MIN = 60 * S


def sensor(sensor_id: str, metric: str = "METHANE", unit: str = "PERCENT_VOL",
           gateway: str = "gw-1", enterprise: str = "ent-1", l1: float | None = None,
           l2: float | None = None) -> dict[str, Any]:
    return {"sensor_id": sensor_id, "enterprise_id": enterprise, "gateway_id": gateway,
            "metric": metric, "unit": unit, "alarm_level1": l1, "alarm_level2": l2,
            "updated_at": T0 - 86_400_000}


class Plant:
    """``policy`` and two enterprises: ent-1 in Jiangsu (320506), ent-2 in Beijing (110101)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.registry = InMemoryRegistry()
        self.serializer = AvroSerializer(self.registry)
        self.decoder = AvroDeserializer(self.registry, millis=True)
        self.reference = ReferenceData(policy)
        self.metrics = Metrics.create(CollectorRegistry())
        self.stores = {name: DictStore() for name in CATALOG.state_groups()}
        self.pipeline = Pipeline(CATALOG, ProcessorContext(policy, self.reference, self.metrics),
                                 AvroDeserializer(self.registry, millis=True), self.stores)
        self.offsets: Counter[str] = Counter()
        self.sequence = 0
        self.touched: list[tuple[str, bytes]] = []     # stage states the last record changed
        self.events: list[Record] = []
        self.alerts: list[Record] = []
        self.dead_letters: list[Record] = []
        for ent, region in (("ent-1", "320506"), ("ent-2", "110101")):
            self.reference.put_enterprise({"enterprise_id": ent, "name": ent,
                                           "region_code": region, "industry": "coal",
                                           "updated_at": T0 - 86_400_000}, T0)

    def register(self, *sensors: dict[str, Any]) -> None:
        for s in sensors:
            assert self.reference.put_sensor(s, T0)

    def feed(self, topic: str, record: dict[str, Any], key: str, arrived: int) -> Outputs:
        kind = CATALOG.of_input(topic)
        context = SerializationContext(f"t.{topic}", kind.input.record)
        data = self.serializer(record, context)
        offset = self.offsets[topic]
        self.offsets[topic] += 1
        source = Source(f"t.{topic}", 0, offset, None, arrived)
        decoded, source, out = self.pipeline.decode(topic, source, key.encode(), data, arrived)
        assert decoded is not None, out
        out, _ = self.pipeline.apply(topic, decoded, source, key.encode(), data, arrived)
        self.touched = self.pipeline.take_touched()
        return self._collect(out)

    def _collect(self, out: Outputs) -> Outputs:
        context = SerializationContext("t.alarm.events", "AlarmEvent")
        for event in out.alarms:   # every event is a valid AlarmEvent
            self.decoder(self.serializer(event, context), context)
        self.events += out.alarms
        self.alerts += out.alerts
        self.dead_letters += out.dead_letters
        return out

    def readings(self, values: list[tuple[str, float, int]], gateway: str = "gw-1",
                 enterprise: str = "ent-1", arrived: int | None = None) -> Outputs:
        """One envelope: (sensor, value, event time) each."""
        self.sequence += 1
        last = max(at for _, _, at in values)
        readings = [{"reading_id": f"r-{self.sequence}-{i}", "sensor_id": sid,
                     "metric": self.reference.sensors[sid].metric, "value": value,
                     "unit": self.reference.sensors[sid].unit, "quality": "GOOD",
                     "event_time": at} for i, (sid, value, at) in enumerate(values)]
        env = {"gateway_id": gateway, "enterprise_id": enterprise, "sent_at": last,
               "sequence": self.sequence, "readings": readings}
        return self.feed("telemetry", env, gateway, arrived or last + 200)

    def heartbeat(self, at: int, gateway: str = "gw-1", enterprise: str = "ent-1",
                  interval_s: int = 10) -> Outputs:
        self.sequence += 1
        beat = {"gateway_id": gateway, "enterprise_id": enterprise, "sent_at": at,
                "sequence": self.sequence, "interval_s": interval_s, "firmware": "1.0"}
        return self.feed("heartbeats", beat, gateway, at + 100)

    def command(self, command: dict[str, Any], arrived: int) -> Outputs:
        return self.feed("alarm.commands", command, str(command["home"]), arrived)

    def tick(self, now: int) -> Outputs:
        out, _ = self.pipeline.tick(now)
        return self._collect(out)

    # -- what came out ----------------------------------------------------------------------
    def of(self, subject: str, alarm_type: str | None = None) -> list[Record]:
        return [e for e in self.events if e["subject_id"] == subject
                and (alarm_type is None or e["alarm_type"] == alarm_type)]

    def transitions(self, subject: str, alarm_type: str) -> list[str]:
        return [e["transition"] for e in self.of(subject, alarm_type)]

    def book(self, home: str) -> Any:
        return self.stores["alarms"].get(home.encode())
