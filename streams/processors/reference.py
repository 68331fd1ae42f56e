"""Reference data: registered enterprises and sensors, from the compacted topics.

Every worker keeps all of it in memory (it is small: one entry per sensor), fed by a reader
over all partitions of the reference topics (see :mod:`streams.worker.reference`). A
sensor's alarm limits are resolved against the policy defaults once, when its registration
arrives, not per reading, and so is its reporting interval (``expected_interval_s``).

Sensor registrations and removals are also kept in a change log (:meth:`ReferenceData.
take_sensor_changes`): the sensor registry of the gateways' clock (:mod:`.sensors`) reads
it, so registering a sensor costs the clock the change, not a pass over every sensor. The
feed applies registrations on its own thread; the change log has a lock.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from schemas.catalog.declarations import ENTERPRISE, SENSOR
from schemas.catalog.model import RecordType, resolve
from streams.policy import Policy

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
    expected_interval_ms: int = 0   # resolved: the registration's or the policy default
    registered_at: int = 0          # the registration's updated_at (ms)


@dataclass(frozen=True, slots=True)
class EnterpriseRef:
    enterprise_id: str
    name: str
    region_code: str
    industry: str


def sensor_ref(policy: Policy, record: dict[str, Any]) -> SensorRef:
    """A sensor registration with its alarm limits resolved against the policy defaults."""
    metric = str(record["metric"])
    defaults = policy.metrics.get(metric)
    one, two = record.get("alarm_level1"), record.get("alarm_level2")
    if one is None:
        one = defaults.alarm_level1 if defaults else INF
    if two is None:
        two = defaults.alarm_level2 if defaults else INF
    interval = record.get("expected_interval_s")
    interval_ms = int(interval) * 1000 if interval else \
        int(policy.blind_spots.sensor_expected_interval.total_seconds() * 1000)
    return SensorRef(str(record["sensor_id"]), str(record["enterprise_id"]),
                     str(record["gateway_id"]), metric, str(record["unit"]),
                     float(one), float(max(one, two)), interval_ms,
                     int(record.get("updated_at") or 0))


def enterprise_ref(policy: Policy, record: dict[str, Any]) -> EnterpriseRef:
    return EnterpriseRef(str(record["enterprise_id"]), str(record.get("name", "")),
                         str(record["region_code"]), str(record.get("industry", "")))


class ReferenceData:
    """In-memory maps of the registered enterprises and sensors, filled from the record
    types the catalog declares as reference data (``RecordType.reference``)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.sensors: dict[str, SensorRef] = {}
        self.enterprises: dict[str, EnterpriseRef] = {}
        self.keys: dict[str, Any] = {}   # key id -> streams.signing.keys.KeyRef
        self.ignored = 0      # registrations that failed their checks
        self._resolved: dict[str, tuple[Any, Any]] = {}
        # sensor id -> (its registration, still registered), since the last take
        self._sensor_changes: dict[str, tuple[SensorRef, bool]] = {}
        self._changes_lock = threading.Lock()

    def take_sensor_changes(self) -> dict[str, tuple[SensorRef, bool]]:
        """The sensor registrations (True) and removals (False, with the registration
        removed) since the last call."""
        with self._changes_lock:
            changes, self._sensor_changes = self._sensor_changes, {}
        return changes

    def _sensor_changed(self, kind: RecordType, entry: Any, registered: bool) -> None:
        if kind.name == SENSOR.name and isinstance(entry, SensorRef):
            with self._changes_lock:
                self._sensor_changes[entry.sensor_id] = (entry, registered)

    def _table(self, kind: RecordType) -> dict[str, Any]:
        assert kind.reference is not None, f"{kind.name} is not reference data"
        table: dict[str, Any] = getattr(self, kind.reference.table)
        return table

    def _functions(self, kind: RecordType) -> tuple[Any, Any]:
        found = self._resolved.get(kind.name)
        if found is None:
            assert kind.reference is not None
            found = self._resolved[kind.name] = (resolve(kind.checks),
                                                 resolve(kind.reference.build))
        return found

    def put(self, kind: RecordType, record: dict[str, Any], now_ms: int) -> bool:
        """Check and keep one registration; False (logged, counted) when it fails its checks.
        A registration dated in the future is kept: its validity does not depend on when."""
        checks, build = self._functions(kind)
        problems = [p for p in checks(record, self.policy, now_ms)
                    if p.code != "FUTURE_EVENT_TIME"]
        key = record.get(kind.input.key)
        if problems:
            self.ignored += 1
            log.warning("%s %s ignored: %s", kind.name, key,
                        "; ".join(p.line() for p in problems))
            return False
        try:
            entry = build(self.policy, record)
        except (KeyError, TypeError, ValueError) as exc:  # not the record this table holds
            self.ignored += 1
            log.warning("%s %s ignored: cannot be read as a %s: %r", kind.name, key, kind.name,
                        exc)
            return False
        self._table(kind)[str(key)] = entry
        self._sensor_changed(kind, entry, True)
        return True

    def apply(self, kind: RecordType, key: str | None, record: dict[str, Any] | None,
              now_ms: int) -> bool:
        """A registration, or a tombstone (``record`` None) that removes one."""
        if record is None:
            if key is not None:
                self._sensor_changed(kind, self._table(kind).pop(key, None), False)
            return True
        return self.put(kind, record, now_ms)

    def put_sensor(self, record: dict[str, Any], now_ms: int) -> bool:
        return self.put(SENSOR, record, now_ms)

    def put_enterprise(self, record: dict[str, Any], now_ms: int) -> bool:
        return self.put(ENTERPRISE, record, now_ms)

    def region_of(self, enterprise_id: str) -> str:
        ref = self.enterprises.get(enterprise_id)
        return ref.region_code if ref else ""
