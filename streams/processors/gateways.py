"""Heartbeats and the gateways' periodic check: the record type ``heartbeat`` keeps its
gateway alive, and the ``gateways`` table's clock finds gateways gone silent, gateways that
never connected and silent sensors. The liveness rules and the gateway state are in
:mod:`.liveness`, the blind-spot rules of registered gateways and sensors in
:mod:`.sensors`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from schemas.records import Record, Source
from streams.processors.common import Outputs, canary_tag
from streams.processors.liveness import GatewayState
from streams.processors.sensors import (
    SensorRegistry,
    SensorWatch,
    candidate_partitions,
    responsible,
)

if TYPE_CHECKING:
    from streams.processors.base import StateStore
    from streams.processors.context import ProcessorContext


class HeartbeatProcessor:
    """Heartbeats keep a gateway alive (the state is the gateway's, shared with telemetry)."""

    def __init__(self, ctx: ProcessorContext) -> None:
        self.monitor = ctx.gateways
        self.reference = ctx.reference

    def process(self, beat: Record, source: Source, key: bytes | None, value: bytes,
                state: GatewayState | None, now_ms: int) -> tuple[Outputs, GatewayState | None]:
        return self.monitor.heartbeat(beat, source, key, value, state, now_ms)

    def missing_reference(self, beat: Record) -> bool:
        return beat["enterprise_id"] not in self.reference.enterprises


class GatewayClock:
    """The periodic part: gateways gone silent, gateways that never connected, sensors gone
    silent while their gateway is online (:mod:`.sensors`), the first ONLINE status of a new
    gateway, state nobody registers any more dropped; and the online/offline gauges (per
    province for the regional offline-spike alert; bounded: ~34 values; canary gateways left
    out). A due-index clock: ``next_due`` says when each gateway needs a look."""

    def __init__(self, ctx: ProcessorContext) -> None:
        self.monitor = ctx.gateways
        self.reference = ctx.reference
        self.metrics = ctx.metrics
        self.registry = SensorRegistry(ctx.policy, ctx.reference)
        self.watch = SensorWatch(ctx.policy, ctx.reference, self.registry, self.monitor.status)
        self._provinces: set[str] = set()
        self._assignment: tuple[frozenset[int], int] | None = None

    def next_due(self, state: GatewayState) -> int | None:
        """When the gateway needs a look, without its sensors (whose registration depends on
        the gateway's id: see :meth:`next_due_of`, which the worker uses)."""
        return self.next_due_of(b"", state)

    def next_due_of(self, key: bytes, state: GatewayState) -> int | None:
        self.registry.refresh()
        gateway_id = key.decode()
        dues = [self.watch.forget_due(gateway_id, state)]
        if state["enterprise_id"] in self.reference.enterprises:
            if not state.get("announced", True):
                dues.append(0)
            if state["online"]:
                last = state["last_arrival_at"] or state["last_seen_at"]
                dues.append(last + self.monitor.allowed_silence(state) + 1)
                dues.append(self.watch.sensor_due(gateway_id, state))
        found = [d for d in dues if d is not None]
        return min(found) if found else None

    def category(self, state: GatewayState) -> str | None:
        enterprise = self.reference.enterprises.get(state["enterprise_id"])
        if enterprise is None or canary_tag(state["enterprise_id"]) is not None:
            return None
        return f"{'online' if state['online'] else 'offline'}:{enterprise.region_code[:2]}"

    def tick(self, store: StateStore, now_ms: int,
             trusted: Callable[[int | None], bool]) -> tuple[Outputs, list[bytes]]:
        self.registry.refresh()
        out = Outputs()
        out.registrations += self.registry.take_echo()
        changed: list[bytes] = []
        enterprises = self.reference.enterprises
        for key in store.owned_keys():
            state = store.get(key)
            if state is None:
                continue
            gateway_id = key.decode()
            if self.watch.forget(gateway_id, state, now_ms):
                store.put(key, None)         # enterprise deregistered long ago: forgotten
                changed.append(key)
                continue
            if state["enterprise_id"] not in enterprises:
                continue      # enterprise deregistered (e.g. a finished canary): not watched
            res = Outputs()
            if not state.get("announced", True):
                res.extend(self.watch.first_contact(gateway_id, state, now_ms))
            if trusted(store.partition_of(key)):
                res.extend(self.monitor.check_silence(gateway_id, state, now_ms))
                res.extend(self.watch.check_sensors(gateway_id, state, now_ms))
            if res.statuses or res.alerts:
                out.extend(res)
                changed.append(key)
        out.extend(self._never_connected(store, now_ms, trusted))
        self._gauges(store)
        return out, changed

    def _never_connected(self, store: StateStore, now_ms: int,
                         trusted: Callable[[int | None], bool]) -> Outputs:
        assignment = getattr(store, "assignment", None)
        if assignment != self._assignment:
            self._assignment = assignment
            self.registry.recheck_all()       # partitions moved: other gateways are ours now
        out = Outputs()
        for gateway_id in self.registry.due_unconnected(now_ms):
            key = gateway_id.encode()
            known = self.registry.gateways[gateway_id]
            if store.get(key) is not None:
                self.registry.decided(gateway_id)       # connected
                continue
            if not responsible(key, assignment):
                continue      # another worker sees every message it could send
            if known.enterprise_id not in self.reference.enterprises:
                self.registry.later(gateway_id, now_ms + self.registry.grace_ms)
                continue      # its enterprise is not registered (yet): look again later
            parts = candidate_partitions(key, assignment[1]) if assignment else {None}
            if not all(trusted(p) for p in parts):
                self.registry.later(gateway_id, now_ms + 1)   # its messages may be waiting
                continue
            self.registry.decided(gateway_id)
            out.extend(self.watch.never_connected(gateway_id, now_ms))
        return out

    def _gauges(self, store: StateStore) -> None:
        counts = getattr(store, "categories", None)
        if counts is not None:
            found = counts()
        else:                 # a plain store (tools, tests): count every key
            found = Counter(c for c in (self.category(s) for s in
                                        (store.get(k) for k in store.owned_keys()) if s)
                            if c is not None)
        online = offline = 0
        offline_by_province: dict[str, int] = {}
        for category, n in found.items():
            state, province = category.split(":", 1)
            if state == "online":
                online += n
            else:
                offline += n
                offline_by_province[province] = offline_by_province.get(province, 0) + n
        self.metrics.gateways.labels("online").set(online)
        self.metrics.gateways.labels("offline").set(offline)
        self._provinces |= offline_by_province.keys()
        for province in self._provinces:
            self.metrics.gateways_offline.labels(province).set(offline_by_province.get(province, 0))
