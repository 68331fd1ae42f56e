"""Everything the worker does between Kafka in and Kafka out, without faust.

:class:`Pipeline` decodes a message, routes it to its processor with the state of its key,
and keeps that state in a store (the faust-table cache in the worker, a dict in tests).
:meth:`Pipeline.tick` is the periodic part: silent gateways and incident deadline clocks.
No exception escapes for bad data: an unexpected processor error becomes a dead letter
(``INTERNAL_ERROR``) and the key's cached state is dropped (reloaded from the table).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from schemas.catalog import TOPICS
from schemas.codec import AvroDeserializer
from streams.metrics import Metrics
from streams.policy import Policy
from streams.processors.common import Outputs, Record, Source, dead_letter
from streams.processors.decode import decode_or_dead_letter
from streams.processors.gateways import GatewayMonitor, partition_caught_up
from streams.processors.hazards import HazardProcessor
from streams.processors.incidents import IncidentProcessor
from streams.processors.reference import ReferenceData
from streams.processors.telemetry import TelemetryProcessor

log = logging.getLogger(__name__)

# logical input topic -> (state store name, record field that keys the state)
STATE_OF = {"telemetry": ("gateways", "gateway_id"), "heartbeats": ("gateways", "gateway_id"),
            "incidents": ("incidents", "incident_id"), "hazards": ("hazards", "hazard_id")}
INPUTS = tuple(STATE_OF)


class StateStore(Protocol):
    def get(self, key: bytes) -> dict[str, Any] | None: ...
    def put(self, key: bytes, state: dict[str, Any] | None) -> None: ...
    def forget(self, key: bytes) -> None: ...
    def owned_keys(self) -> Iterator[bytes]: ...
    def partition_of(self, key: bytes) -> int | None: ...


class DictStore:
    """A plain in-memory store (unit tests)."""

    def __init__(self) -> None:
        self.data: dict[bytes, dict[str, Any]] = {}

    def get(self, key: bytes) -> dict[str, Any] | None:
        return self.data.get(key)

    def put(self, key: bytes, state: dict[str, Any] | None) -> None:
        if state is None:
            self.data.pop(key, None)
        else:
            self.data[key] = state

    def forget(self, key: bytes) -> None:
        self.data.pop(key, None)

    def owned_keys(self) -> Iterator[bytes]:
        return iter(list(self.data))

    def partition_of(self, key: bytes) -> int | None:
        return None


@dataclass
class Changed:
    """A timer changed the state of ``key`` in ``store``; persist it when possible."""

    store: str
    key: bytes


class Pipeline:
    def __init__(self, policy: Policy, reference: ReferenceData, metrics: Metrics,
                 deserializer: AvroDeserializer, stores: Mapping[str, StateStore],
                 ring_size: int = 32) -> None:
        self.policy = policy
        self.reference = reference
        self._provinces: set[str] = set()
        self.metrics = metrics
        self.deserializer = deserializer
        self.stores = stores
        self.gateways = GatewayMonitor(policy, reference, metrics)
        self.telemetry = TelemetryProcessor(policy, reference, metrics, self.gateways, ring_size)
        self.incidents = IncidentProcessor(policy, metrics)
        self.hazards = HazardProcessor(policy, reference, metrics)
        self._in = {name: metrics.records_in.labels(name, TOPICS[name].record)
                    for name in INPUTS}
        # gateway partitions: last arrival (ms) and last time the worker processed one
        self._arrival: dict[int, int] = {}
        self._activity: dict[int, int] = {}

    def decode(self, logical: str, source: Source, key: bytes | None, value: bytes | None,
               now_ms: int) -> tuple[Record | None, Source, Outputs | None]:
        self._in[logical].inc()
        record, source, dl = decode_or_dead_letter(self.deserializer, TOPICS[logical].record,
                                                   source, key, value, now_ms)
        if dl is not None:
            return None, source, Outputs(dead_letters=[dl])
        return record, source, None

    def missing_reference(self, logical: str, record: Record) -> bool:
        """The record names an enterprise or sensor this worker does not know (yet)."""
        if logical in ("telemetry", "heartbeats", "hazards") and \
                record["enterprise_id"] not in self.reference.enterprises:
            return True
        if logical == "telemetry":
            sensors = self.reference.sensors
            return any(r["sensor_id"] not in sensors for r in record["readings"])
        return False

    def apply(self, logical: str, record: Record, source: Source, key: bytes | None,
              value: bytes, now_ms: int) -> tuple[Outputs, bytes | None]:
        """Process one decoded record; returns its outputs and the state key it changed."""
        store_name, field = STATE_OF[logical]
        store = self.stores[store_name]
        state_key = str(record[field]).encode()
        state = store.get(state_key)
        if logical in ("telemetry", "heartbeats"):
            arrival = source.timestamp_ms if source.timestamp_ms > 0 else now_ms
            self._arrival[source.partition] = max(self._arrival.get(source.partition, 0),
                                                  arrival)
            self._activity[source.partition] = now_ms
        try:
            if logical == "telemetry":
                out, new = self.telemetry.process(record, source, key, value, state, now_ms)
            elif logical == "heartbeats":
                out, new = self.gateways.heartbeat(record, source, key, value, state, now_ms)
            elif logical == "incidents":
                out, new = self.incidents.process(record, source, key, value, state, now_ms)
            else:
                out, new = self.hazards.process(record, source, key, value, state, now_ms)
        except Exception as exc:  # a processor bug must not stop the pipeline
            log.exception("processing %s failed", source.where())
            store.forget(state_key)
            return Outputs(dead_letters=[dead_letter(
                source, key, value, "INTERNAL_ERROR",
                f"{logical} message at {source.where()}: processing failed with "
                f"{type(exc).__name__}: {exc}", "validate", now_ms,
                record_id=str(record.get(field)))]), None
        if out.replay:
            self.metrics.replays_skipped.labels(logical).inc()
            return out, None
        if new is None:
            return out, None
        store.put(state_key, new)
        if logical == "telemetry":
            self.metrics.processing_lag.labels(logical).set(
                max(0, now_ms - record["sent_at"]) / 1000)
        return out, state_key

    def tick(self, now_ms: int, wall_ms: int | None = None) -> tuple[Outputs, list[Changed]]:
        """Silent gateways and deadline clocks over the locally owned state."""
        wall = now_ms if wall_ms is None else wall_ms
        out = Outputs()
        changed: list[Changed] = []
        gateways = self.stores["gateways"]
        online = offline = 0
        offline_by_province: dict[str, int] = {}
        for key in gateways.owned_keys():
            state = gateways.get(key)
            if state is None or state["e"] not in self.reference.enterprises:
                continue      # enterprise deregistered (e.g. a finished canary): not watched
            partition = gateways.partition_of(key)
            trusted = self._trusted(partition, wall)
            if trusted:
                res = self.gateways.check_silence(key.decode(), state, now_ms)
                if res.statuses:
                    out.extend(res)
                    changed.append(Changed("gateways", key))
            online += 1 if state["on"] else 0
            offline += 0 if state["on"] else 1
            if not state["on"]:
                province = self.reference.enterprises[state["e"]].region_code[:2]
                offline_by_province[province] = offline_by_province.get(province, 0) + 1
        self.metrics.gateways.labels("online").set(online)
        self.metrics.gateways.labels("offline").set(offline)
        # per province (bounded: ~34 values), for the "offline spike in a region" alert
        self._provinces |= offline_by_province.keys()
        for province in self._provinces:
            self.metrics.gateways_offline.labels(province).set(offline_by_province.get(province, 0))
        incidents = self.stores["incidents"]
        open_, overdue = 0, 0
        for key in incidents.owned_keys():
            state = incidents.get(key)
            if state is None or state.get("closed"):
                continue
            open_ += 1
            overdue += 1 if self.incidents.overdue(state, now_ms) else 0
            res = self.incidents.check_clock(key.decode(), state, now_ms)
            if res.alerts:
                out.extend(res)
                changed.append(Changed("incidents", key))
        self.metrics.open_incidents.set(open_)
        self.metrics.reports_overdue.set(overdue)
        return out, changed

    def _trusted(self, partition: int | None, wall_ms: int) -> bool:
        if partition is None:
            if not self._activity:
                return True
            return all(partition_caught_up(self._arrival.get(p, 0), self._activity[p], wall_ms)
                       for p in self._activity)
        if partition not in self._activity:
            return True
        return partition_caught_up(self._arrival.get(partition, 0), self._activity[partition],
                                   wall_ms)

    def reset_partitions(self) -> None:
        self._arrival.clear()
        self._activity.clear()


def now_ms() -> int:
    return int(time.time() * 1000)
