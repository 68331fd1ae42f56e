"""Heartbeats and the gateways' periodic check: the record type ``heartbeat`` keeps its
gateway alive, and the ``gateways`` table's clock finds gateways gone silent. The liveness
rules and the gateway state are in :mod:`.liveness`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from schemas.records import Record, Source
from streams.processors.common import Outputs
from streams.processors.liveness import GatewayState

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
    """The periodic part: gateways gone silent, and the online/offline gauges (per province
    for the regional offline-spike alert; bounded: ~34 values)."""

    def __init__(self, ctx: ProcessorContext) -> None:
        self.monitor = ctx.gateways
        self.reference = ctx.reference
        self.metrics = ctx.metrics
        self._provinces: set[str] = set()

    def tick(self, store: StateStore, now_ms: int,
             trusted: Callable[[int | None], bool]) -> tuple[Outputs, list[bytes]]:
        out = Outputs()
        changed: list[bytes] = []
        online = offline = 0
        offline_by_province: dict[str, int] = {}
        enterprises = self.reference.enterprises
        for key in store.owned_keys():
            state = store.get(key)
            if state is None or state["enterprise_id"] not in enterprises:
                continue      # enterprise deregistered (e.g. a finished canary): not watched
            if trusted(store.partition_of(key)):
                res = self.monitor.check_silence(key.decode(), state, now_ms)
                if res.statuses:
                    out.extend(res)
                    changed.append(key)
            if state["online"]:
                online += 1
            else:
                offline += 1
                province = enterprises[state["enterprise_id"]].region_code[:2]
                offline_by_province[province] = offline_by_province.get(province, 0) + 1
        self.metrics.gateways.labels("online").set(online)
        self.metrics.gateways.labels("offline").set(offline)
        self._provinces |= offline_by_province.keys()
        for province in self._provinces:
            self.metrics.gateways_offline.labels(province).set(offline_by_province.get(province, 0))
        return out, changed
