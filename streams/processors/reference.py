"""Reference data: registered enterprises and sensors, from the compacted topics.

Every worker keeps all of it in memory (it is small: one entry per sensor), fed by a reader
over all partitions of the ``enterprises`` and ``sensors`` topics (see
:mod:`streams.worker.reference`). A sensor's alarm limits are resolved against the policy
defaults once, when its registration arrives, not per reading.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from streams.policy import Policy
from streams.records.rules import check_enterprise, check_sensor

log = logging.getLogger(__name__)

INF = float("inf")


@dataclass(frozen=True, slots=True)
class SensorRef:
    sensor_id: str
    enterprise_id: str
    gateway_id: str
    metric: str
    unit: str
    alarm_level1: float   # resolved: the sensor's own limit or the policy default
    alarm_level2: float


@dataclass(frozen=True, slots=True)
class EnterpriseRef:
    enterprise_id: str
    name: str
    region_code: str
    industry: str


class ReferenceData:
    """In-memory maps of the registered enterprises and sensors."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.sensors: dict[str, SensorRef] = {}
        self.enterprises: dict[str, EnterpriseRef] = {}
        self.ignored = 0      # registrations that failed their checks

    def sensor_ref(self, record: dict[str, Any]) -> SensorRef:
        metric = str(record["metric"])
        defaults = self.policy.metrics.get(metric)
        one, two = record.get("alarm_level1"), record.get("alarm_level2")
        if one is None:
            one = defaults.alarm_level1 if defaults else INF
        if two is None:
            two = defaults.alarm_level2 if defaults else INF
        return SensorRef(str(record["sensor_id"]), str(record["enterprise_id"]),
                         str(record["gateway_id"]), metric, str(record["unit"]),
                         float(one), float(max(one, two)))

    def put_sensor(self, record: dict[str, Any], now_ms: int) -> bool:
        problems = check_sensor(record, self.policy, now_ms)
        problems = [p for p in problems if p.code != "FUTURE_EVENT_TIME"]
        if problems:
            self.ignored += 1
            log.warning("sensor %s ignored: %s", record.get("sensor_id"),
                        "; ".join(p.line() for p in problems))
            return False
        ref = self.sensor_ref(record)
        self.sensors[ref.sensor_id] = ref
        return True

    def put_enterprise(self, record: dict[str, Any], now_ms: int) -> bool:
        problems = [p for p in check_enterprise(record, self.policy, now_ms)
                    if p.code != "FUTURE_EVENT_TIME"]
        if problems:
            self.ignored += 1
            log.warning("enterprise %s ignored: %s", record.get("enterprise_id"),
                        "; ".join(p.line() for p in problems))
            return False
        ref = EnterpriseRef(str(record["enterprise_id"]), str(record.get("name", "")),
                            str(record["region_code"]), str(record.get("industry", "")))
        self.enterprises[ref.enterprise_id] = ref
        return True

    def delete(self, logical_topic: str, key: str) -> None:
        """A tombstone on a compacted topic removes the registration."""
        if logical_topic == "sensors":
            self.sensors.pop(key, None)
        elif logical_topic == "enterprises":
            self.enterprises.pop(key, None)

    def apply(self, logical_topic: str, key: str | None, record: dict[str, Any] | None,
              now_ms: int) -> bool:
        if record is None:
            if key is not None:
                self.delete(logical_topic, key)
            return True
        if logical_topic == "sensors":
            return self.put_sensor(record, now_ms)
        if logical_topic == "enterprises":
            return self.put_enterprise(record, now_ms)
        raise ValueError(f"{logical_topic} is not a reference topic")

    def region_of(self, enterprise_id: str) -> str:
        ref = self.enterprises.get(enterprise_id)
        return ref.region_code if ref else ""
