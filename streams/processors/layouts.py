"""State layouts written by earlier versions of the worker, converted when first read.

A running deployment's changelog topics (and the tables recovered from them) hold states in
the layout of the version that wrote them. The catalog names a converter per state table
(``State.upgrade``); the worker runs it once per key, when it decodes the key's JSON
(:meth:`streams.worker.state.StateCache.get`), and writes the current layout back with the
next change. A converter returns a state in the current layout unchanged, so it may run on
anything the table holds.

Earlier layouts, by table (the current fields are described in the processors' docstrings):

- ``gateways`` (:mod:`.gateways`, :mod:`.telemetry`), one-letter keys: ``e`` enterprise_id,
  ``ls`` last_seen_at, ``la`` last_arrival_at, ``iv`` interval_ms, ``on`` online (0/1),
  ``os`` online_since, ``up`` finished_online_ms, ``hs`` heartbeat_sequence, ``s`` sensors,
  ``q`` recent_sequences, ``at_t`` applied_telemetry, ``at_h`` applied_heartbeat;
- a sensor in ``s`` (:mod:`.anomalies`, :mod:`.dedup`): ``n`` readings_scored, ``v``
  last_value, ``t`` last_event_time, ``b`` spike_base, ``sp`` in_spike (0/1), ``fr``
  flat_run, ``fa`` flat_alerted (0/1), ``m`` mean, ``d`` mean_deviation, ``al``
  alarm_level, ``ids`` recent_ids, ``g`` recent_envelopes; before ``g``, the ring was string
  ids with one ``src`` (packed coordinates) and ``at`` (arrival) entry per reading;
- ``incidents`` (:mod:`.incidents`): ``r`` reports, ``st`` stages, ``f`` figures, ``lr``
  last_reported_at, ``k`` kind, ``lvl`` level, ``rl`` reporting_level, ``ind`` industry,
  ``reg`` region_code, ``due`` next_due_at, ``dk`` next_due_stage, ``sent`` clock_alerts,
  ``closed``, ``at_i`` applied;
- ``hazards`` (:mod:`.hazards`): ``v`` versions, ``max`` max_version, ``od``
  alerted_deadline, ``at_z`` applied.

Fields the earlier code read with a default (``state.get(...)``) get that default here.
"""

from __future__ import annotations

from typing import Any

from streams.processors.anomalies import SensorState
from streams.processors.dedup import id_hash
from streams.processors.hazards import HazardState
from streams.processors.incidents import IncidentState, complete
from streams.processors.liveness import GatewayState


def upgrade_gateway(state: Any) -> GatewayState:
    """A ``gateways`` table value in the current layout."""
    if "e" not in state:
        return state
    new: GatewayState = {
        "enterprise_id": state["e"], "last_seen_at": state["ls"],
        "last_arrival_at": state.get("la", 0), "interval_ms": state.get("iv", 0),
        "online": bool(state["on"]), "online_since": state["os"],
        "finished_online_ms": state.get("up", 0), "heartbeat_sequence": state.get("hs", -1),
        "sensors": {sid: upgrade_sensor(st) for sid, st in state.get("s", {}).items()},
        "recent_sequences": state.get("q", []),
    }
    if "at_t" in state:
        new["applied_telemetry"] = state["at_t"]
    if "at_h" in state:
        new["applied_heartbeat"] = state["at_h"]
    return new


def upgrade_sensor(st: Any) -> SensorState:
    """A sensor's state (inside a gateway's) in the current layout."""
    if "n" not in st:
        return st
    ids, groups = _ring(st)
    return {"readings_scored": st["n"], "last_value": st["v"], "last_event_time": st["t"],
            "spike_base": st["b"], "in_spike": bool(st["sp"]), "flat_run": st["fr"],
            "flat_alerted": bool(st["fa"]), "mean": st["m"], "mean_deviation": st["d"],
            "alarm_level": st["al"], "recent_ids": ids, "recent_envelopes": groups}


def _ring(st: Any) -> tuple[list[int], list[list[int]]]:
    """Hashed ids and their envelope groups; the per-reading ``src``/``at`` lists of the
    earliest layout become groups of equal (coordinates, arrival)."""
    src, at = st.get("src"), st.get("at")
    if src is None or at is None:
        return st["ids"], st.get("g", [])
    groups: list[list[int]] = []
    for packed, arrived in zip(src, at, strict=False):
        if groups and groups[-1][0] == packed and groups[-1][1] == arrived:
            groups[-1][2] += 1
        else:
            groups.append([packed, arrived, 1])
    ids = [i if isinstance(i, int) else id_hash(i) for i in st["ids"][:len(src)]]
    return ids, groups


def upgrade_incident(state: Any) -> IncidentState:
    """An ``incidents`` table value in the current layout."""
    if "r" not in state:
        return state
    new: IncidentState = {
        "reports": state["r"], "stages": state["st"], "figures": state["f"],
        "last_reported_at": state.get("lr", 0), "kind": state.get("k", ""),
        "level": state.get("lvl", ""), "reporting_level": state.get("rl", ""),
        "industry": state.get("ind"), "region_code": state.get("reg", ""),
        "next_due_at": state.get("due", 0), "next_due_stage": state.get("dk", ""),
        "clock_alerts": state.get("sent", []), "closed": bool(state.get("closed")),
    }
    if "at_i" in state:
        new["applied"] = state["at_i"]
    return complete(new)


def upgrade_hazard(state: Any) -> HazardState:
    """A ``hazards`` table value in the current layout."""
    if "v" not in state:
        return state
    new: HazardState = {"versions": state["v"], "max_version": state["max"],
                        "alerted_deadline": state["od"]}
    if "at_z" in state:
        new["applied"] = state["at_z"]
    return new
