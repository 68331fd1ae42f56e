"""Silent sources (监测空白): gateways going offline and coming back, and their online time
(the processor of heartbeats and the periodic check are in :mod:`.gateways`).

A gateway's state (:class:`GatewayState`) is the ``gateways`` table value keyed by
gateway_id, shared by heartbeats and telemetry (:mod:`.telemetry` owns ``sensors``,
``recent_sequences`` and ``applied_telemetry``). This module owns its liveness fields:

- ``enterprise_id``: the enterprise named by the gateway's latest message;
- ``last_seen_at``: its last sign of life in the gateway's own time (``sent_at`` of its
  latest heartbeat or envelope, ms);
- ``last_arrival_at``: Kafka arrival time of its latest message (ms; 0: not known);
- ``interval_ms``: its heartbeat interval (from its latest heartbeat; until then the policy's
  default);
- ``online``: whether it is online; ``online_since``: since when (gateway time, ms);
- ``finished_online_ms``: online time accumulated over its finished online periods (the
  current one is ``online_since`` until now, see :meth:`GatewayMonitor.online_ms`);
- ``heartbeat_sequence``: the sequence number of its latest heartbeat (-1: none yet);
- ``applied_heartbeat``: packed coordinates of the last heartbeat applied to this state
  (absent before the first), see :func:`.common.already_applied`;
- ``announced``, ``silent_sensors``: owned by :mod:`.sensors` (the gateway's first ONLINE
  status, its silent sensors).

A gateway is offline once it has been silent for ``offline_after_intervals`` heartbeat
intervals. Two paths decide it, with the same deterministic ids (the OFFLINE change is dated
``last_seen_at`` + the allowed silence):

- the periodic check (:meth:`GatewayMonitor.check_silence`): nothing has ARRIVED from the
  gateway for longer than allowed (worker clock against arrival times, so gateway clock skew
  does not matter; skipped while the worker reads a backlog, see
  :func:`partition_caught_up`);
- the gateway's next message: the gap between its sent_at and the previous sign of life is
  longer than allowed (so a gap is found in replayed or late-delivered data too, and nothing
  depends on the timer having run before a restart). It then also comes back ONLINE.

States written before these field names are converted when first read (:mod:`.layouts`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NotRequired, TypedDict

from schemas.records import Record, Source, dead_letter
from streams.metrics import Metrics
from streams.policy import Policy
from streams.processors.anomalies import SensorState
from streams.processors.common import Outputs, already_applied, arrival_ms, canary_tag
from streams.processors.common import make_alert as _alert
from streams.processors.reference import ReferenceData
from streams.records.rules import check_heartbeat


class GatewayState(TypedDict):
    """One gateway's state (liveness fields: see the module docstring; the others:
    :mod:`.telemetry`)."""

    enterprise_id: str
    last_seen_at: int
    last_arrival_at: int
    interval_ms: int
    online: bool
    online_since: int
    finished_online_ms: int
    heartbeat_sequence: int
    sensors: dict[str, SensorState]
    recent_sequences: list[list[int]]
    applied_telemetry: NotRequired[int]
    applied_heartbeat: NotRequired[int]
    announced: NotRequired[bool]
    silent_sensors: NotRequired[dict[str, int]]


def new_gateway_state(enterprise_id: str, sent_ms: int, arrival_ms: int,
                      interval_ms: int) -> GatewayState:
    return {"enterprise_id": enterprise_id, "last_seen_at": sent_ms,
            "last_arrival_at": arrival_ms, "interval_ms": interval_ms, "online": True,
            "online_since": sent_ms, "finished_online_ms": 0, "heartbeat_sequence": -1,
            "sensors": {}, "recent_sequences": [], "announced": False}


def partition_caught_up(last_arrival_ms: int, last_activity_ms: int, now_ms: int,
                        idle_ms: int = 2000, fresh_ms: int = 10_000) -> bool:
    """Whether silence on a partition can be trusted: the worker is idle on it (nothing left
    to read) or what it reads arrived recently (no backlog). A worker catching up on a
    backlog must not call gateways offline whose messages are still waiting in Kafka."""
    return now_ms - last_activity_ms >= idle_ms or now_ms - last_arrival_ms <= fresh_ms


class GatewayMonitor:
    def __init__(self, policy: Policy, reference: ReferenceData, metrics: Metrics) -> None:
        self.policy = policy
        self.reference = reference
        self.metrics = metrics
        self.after = max(1, policy.offline_after_intervals)
        self.default_interval_ms = int(policy.default_heartbeat_interval.total_seconds() * 1000)

    def allowed_silence(self, state: GatewayState) -> int:
        return self.after * (state["interval_ms"] or self.default_interval_ms)

    def status(self, gateway_id: str, state: GatewayState, status: str, changed_at: int,
                offline_ms: int) -> Record:
        enterprise = state["enterprise_id"]
        return {"gateway_id": gateway_id, "enterprise_id": enterprise,
                "region_code": self.reference.region_of(enterprise), "status": status,
                "changed_at": changed_at, "last_seen_at": state["last_seen_at"],
                "offline_seconds": offline_ms // 1000, "tag": canary_tag(gateway_id, enterprise)}

    def _go_offline(self, gateway_id: str, state: GatewayState, now_ms: int, out: Outputs) -> None:
        allowed = self.allowed_silence(state)
        changed_at = state["last_seen_at"] + allowed
        out.statuses.append(self.status(gateway_id, state, "OFFLINE", changed_at, 0))
        enterprise = state["enterprise_id"]
        out.alerts.append(_alert(
            "GATEWAY_OFFLINE", "gateway", gateway_id, changed_at, now_ms,
            f"gateway {gateway_id} of enterprise {enterprise} silent since "
            f"{state['last_seen_at']} (no heartbeat or reading for {allowed // 1000} s, "
            f"{self.after} heartbeat intervals)", enterprise_id=enterprise,
            region_code=self.reference.region_of(enterprise), value=allowed / 1000,
            threshold=allowed / 1000))
        state["finished_online_ms"] += max(0, state["last_seen_at"] - state["online_since"])
        state["online"] = False

    def seen(self, gateway_id: str, state: GatewayState, sent_ms: int, arrival: int,
             now_ms: int) -> Outputs:
        """A heartbeat or envelope sent at ``sent_ms`` arrived: find a silence before it, and
        bring the gateway back online if it was offline."""
        out = Outputs()
        state["last_arrival_at"] = max(state["last_arrival_at"], arrival)
        last = state["last_seen_at"]
        if state["online"] and sent_ms - last > self.allowed_silence(state):
            self._go_offline(gateway_id, state, now_ms, out)
        if not state["online"]:
            back = max(sent_ms, last)
            silent = back - last
            out.statuses.append(self.status(gateway_id, state, "ONLINE", back, silent))
            enterprise = state["enterprise_id"]
            out.alerts.append(_alert(
                "GATEWAY_ONLINE", "gateway", gateway_id, back, now_ms,
                f"gateway {gateway_id} of enterprise {enterprise} back online after "
                f"{silent // 1000} s of silence", enterprise_id=enterprise,
                region_code=self.reference.region_of(enterprise), value=silent / 1000))
            state["online"] = True
            state["online_since"] = back
        if sent_ms > last:
            state["last_seen_at"] = sent_ms
        return out

    def heartbeat(self, beat: Record, source: Source, key: bytes | None, value: bytes,
                  state: GatewayState | None, now_ms: int) -> tuple[Outputs, GatewayState | None]:
        if already_applied(state, "applied_heartbeat", source):
            return Outputs(replay=True), state
        arrival = arrival_ms(source, now_ms)
        gateway_id = beat["gateway_id"]
        enterprise = beat["enterprise_id"]
        problems = check_heartbeat(beat, self.policy, arrival)
        if not problems and enterprise not in self.reference.enterprises:
            code, msg = "UNKNOWN_ENTERPRISE", (f"heartbeat from gateway {gateway_id}: enterprise "
                                               f"{enterprise} is not registered")
        elif problems:
            code = problems[0].code
            msg = f"heartbeat from gateway {gateway_id}: " + "; ".join(
                f"{p.field}: {p.message}" for p in problems)
        else:
            code = ""
        if code:
            out = Outputs()
            out.dead_letters.append(dead_letter(source, key, value, code, msg, "validate", now_ms,
                                                record_id=gateway_id,
                                                tag=canary_tag(gateway_id, enterprise)))
            return out, state
        interval_ms = max(1, int(beat.get("interval_s") or 0)) * 1000
        if state is None:
            state = new_gateway_state(enterprise, beat["sent_at"], arrival, interval_ms)
            out = Outputs()
        else:
            out = self.seen(gateway_id, state, beat["sent_at"], arrival, now_ms)
        state["enterprise_id"] = enterprise
        state["interval_ms"] = interval_ms
        state["heartbeat_sequence"] = beat["sequence"]
        state["applied_heartbeat"] = source.packed
        out.clean = {**beat, "source": source.record(),
                     "region_code": self.reference.region_of(enterprise), "received_at": now_ms,
                     "online": bool(state["online"]), "tag": canary_tag(gateway_id, enterprise)}
        return out, state

    def check_silence(self, gateway_id: str, state: GatewayState, now_ms: int) -> Outputs:
        """The periodic check: OFFLINE once nothing arrived for longer than allowed."""
        out = Outputs()
        if state["online"] and now_ms - (state["last_arrival_at"] or state["last_seen_at"]) > \
                self.allowed_silence(state):
            self._go_offline(gateway_id, state, now_ms, out)
        return out

    @staticmethod
    def online_ms(state: GatewayState, now_ms: int) -> int:
        """Total online time of a gateway known to this worker, up to ``now_ms``."""
        current = max(0, now_ms - state["online_since"]) if state["online"] else 0
        return state["finished_online_ms"] + current


def enterprise_online_seconds(states: Iterable[GatewayState], now_ms: int) -> dict[str, float]:
    """Online time per enterprise, summed over its gateways (those this worker owns)."""
    totals: dict[str, float] = {}
    for state in states:
        enterprise = state["enterprise_id"]
        totals[enterprise] = totals.get(enterprise, 0.0) + \
            GatewayMonitor.online_ms(state, now_ms) / 1000
    return totals
