"""Telemetry envelopes: validation, deduplication, lateness and anomalies in one pass.

One call per envelope (:meth:`TelemetryProcessor.process`) returns ONE enriched envelope for
the clean topic (accepted readings with their flags, counts of readings in, duplicates and
rejects), one dead letter per bad reading, and the alerts. Per-reading work is plain Python
over dicts; metrics are counted once per envelope.

The clean output is columnar (:mod:`schemas.columns`): the accepted readings are appended field by
field to parallel lists, never built as one dict per reading; a reading gets a ``flags`` entry
only when it is late, at an alarm level or anomalous.

State, one dict per gateway (:class:`.gateways.GatewayState`, the ``gateways`` table value
keyed by gateway_id; its liveness fields are described in :mod:`.gateways`). Telemetry owns:

- ``sensors``: sensor_id -> the sensor's state (:class:`.anomalies.SensorState`): its
  scoring fields and a ring of its most recent reading ids with the envelopes that carried
  them (:mod:`.dedup`: hashed ids; source coordinates and arrival time once per envelope);
- ``recent_sequences``: the last ``SEQUENCE_RING`` envelopes as ``[sequence, packed source
  coordinates]``, oldest first;
- ``applied_telemetry``: packed coordinates of the last telemetry message applied to this
  state (absent before the first).

Deduplication and its exactness window:

- A message whose coordinates are at or before ``applied_telemetry`` (same partition) was
  applied, and its outputs were acknowledged before the state was written, so it is skipped:
  an exact replay after a crash or a rebalance (see :func:`.common.already_applied`).
- A reading id found in its sensor's ring under different source coordinates is a duplicate:
  dropped and counted. A reading id repeated inside one envelope is a duplicate too.
- The ring keeps, per sensor, the last ``ring_size`` readings (default 32) or all readings of
  the latest envelope if that is more, and nothing older than the telemetry dedup horizon
  (policy, default 24 h). Replays older than that window pass as new readings; the ClickHouse
  tables (ReplacingMergeTree keyed by reading id) remove them at rest.

Arrival lag is measured from the Kafka timestamp of the envelope (when it reached the
platform), not the worker's clock, so a worker backlog does not make readings late and a
reprocessed envelope gets the same flags.

States written before these field names are converted when first read (:mod:`.layouts`).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from schemas.columns import empty_columns
from schemas.records import Record, Source, dead_letter
from streams.processors import dedup
from streams.processors.anomalies import SensorScorer, SensorState, new_sensor_state
from streams.processors.common import (
    Outputs,
    already_applied,
    canary_tag,
    make_alert,
    receipt_ms,
)
from streams.processors.liveness import GatewayState, new_gateway_state
from streams.records.rules import check_reading

if TYPE_CHECKING:
    from streams.processors.context import ProcessorContext

SEQUENCE_RING = 8


class TelemetryProcessor:
    def __init__(self, ctx: ProcessorContext) -> None:
        policy = self.policy = ctx.policy
        self.reference = ctx.reference
        self.metrics = ctx.metrics
        self.gateways = ctx.gateways
        self.scorer = SensorScorer(policy)
        self.ring_size = ctx.ring_size
        self.skew_ms = int(policy.max_future_skew.total_seconds() * 1000)
        self.horizon_ms = int(policy.telemetry_dedup_horizon.total_seconds() * 1000)
        self.earliest_ms = policy.limits.earliest_ms
        self.max_readings = policy.limits.max_readings
        self.max_id = policy.limits.max_id
        # metric -> (unit, low, high, late_after_ms)
        self.limits = {name: (m.unit, m.low, m.high, int(m.late_after.total_seconds() * 1000))
                       for name, m in policy.metrics.items()}

    def missing_reference(self, env: Record) -> bool:
        """The envelope names an enterprise or a sensor this worker does not know (yet)."""
        if env["enterprise_id"] not in self.reference.enterprises:
            return True
        sensors = self.reference.sensors
        return any(r["sensor_id"] not in sensors for r in env["readings"])

    def process(self, env: Record, source: Source, key: bytes | None, value: bytes,
                state: GatewayState | None, now_ms: int) -> tuple[Outputs, GatewayState | None]:
        if already_applied(state, "applied_telemetry", source):
            return Outputs(replay=True), state
        out = Outputs()
        gateway_id = env["gateway_id"]
        enterprise_id = env["enterprise_id"]
        tag = canary_tag(gateway_id, enterprise_id)
        enterprise = self.reference.enterprises.get(enterprise_id)
        if enterprise is None:
            out.dead_letters.append(dead_letter(
                source, key, value, "UNKNOWN_ENTERPRISE",
                f"envelope {env['sequence']} from gateway {gateway_id}: enterprise "
                f"{enterprise_id} is not registered", "validate", now_ms, tag=tag))
            return out, state
        arrival = receipt_ms(source, now_ms)   # the broker's receipt (LogAppendTime)
        problem = self._envelope_problem(env, arrival)
        if problem is not None:
            code, why = problem
            out.dead_letters.append(dead_letter(
                source, key, value, code, f"envelope {env['sequence']} from gateway "
                f"{gateway_id[:self.max_id]}: {why}", "validate", now_ms, tag=tag))
            return out, state
        sent = env["sent_at"]
        if state is None:
            state = new_gateway_state(enterprise_id, sent, arrival,
                                      self.gateways.default_interval_ms)
        else:
            out.extend(self.gateways.seen(gateway_id, state, sent, arrival, now_ms))
            state["enterprise_id"] = enterprise_id
        columns, duplicates, late, anomalies = self._readings(
            env, source, key, value, state, arrival, now_ms, tag, out)
        readings = env["readings"]
        rejected = len(readings) - len(columns["reading_id"]) - duplicates
        packed = source.packed
        ring = state["recent_sequences"]
        ring.append([env["sequence"], packed])
        del ring[:-SEQUENCE_RING]
        state["applied_telemetry"] = packed
        out.clean = {
            "source": source.record(), "gateway_id": gateway_id, "enterprise_id": enterprise_id,
            "region_code": enterprise.region_code, "sent_at": env["sent_at"],
            "received_at": now_ms, "sequence": env["sequence"], "readings_in": len(readings),
            "duplicates": duplicates, "rejected": rejected, **columns, "tag": tag,
        }
        m = self.metrics
        m.readings_in.inc(len(readings))
        if duplicates:
            m.duplicates.labels("telemetry").inc(duplicates)
        if tag is None:       # canary traffic is no business figure
            if late:
                m.late_reports.labels("telemetry").inc(late)
            for code, count in anomalies.items():
                m.anomalies.labels(code).inc(count)
        return out, state

    def _envelope_problem(self, env: Record, arrival: int) -> tuple[str, str] | None:
        """What makes the whole envelope unusable (its reason code and why), if anything."""
        sent = env["sent_at"]
        if sent > arrival + self.skew_ms:
            return "FUTURE_EVENT_TIME", (f"sent_at is {sent - arrival - self.skew_ms} ms beyond "
                                         "the allowed clock skew into the future")
        if sent < self.earliest_ms:
            return "BAD_TIMESTAMP", (f"sent_at {sent} is before the earliest time the platform "
                                     "accepts (policy limits.earliest)")
        if len(env["gateway_id"]) > self.max_id:
            return "TOO_LONG", (f"gateway_id has {len(env['gateway_id'])} characters, over the "
                                f"limit of {self.max_id}")
        if len(env["readings"]) > self.max_readings:
            return "TOO_MANY_READINGS", (f"{len(env['readings'])} readings in one envelope, "
                                         f"over the limit of {self.max_readings}")
        return None

    def _readings(self, env: Record, source: Source, key: bytes | None, value: bytes,
                  state: GatewayState, arrival: int, now_ms: int, tag: str | None,
                  out: Outputs) -> tuple[dict[str, Any], int, int, dict[str, int]]:
        gateway_id = env["gateway_id"]
        enterprise_id = env["enterprise_id"]
        sensors = self.reference.sensors
        limits = self.limits
        future_limit = arrival + self.skew_ms
        earliest, max_id = self.earliest_ms, self.max_id
        rejects = Rejects(env, source, key, value, now_ms, tag)
        sensor_states = state["sensors"]
        packed = source.packed
        score = self.scorer.score
        ring_size = self.ring_size
        readings = env["readings"]
        ids = [r["reading_id"] for r in readings]
        repeats = len(set(ids)) != len(ids)   # an id twice in this envelope (rare)
        seen: set[str] = set()
        # sensor id -> (its state, the hashed ids of its ring, ids of this envelope to add,
        # the newest event time the ring may have forgotten: 0 while the ring holds all)
        open_rings: dict[str, tuple[SensorState, set[int], list[int], int]] = {}
        recheck = False
        id_hash, source_of = dedup.id_hash, dedup.source_of
        columns = empty_columns()
        c_id, c_sensor, c_metric, c_value, c_unit, c_quality, c_time, c_lag = columns.values()
        flags: list[Record] = []
        anomalies: dict[str, int] = {}
        duplicates = late = 0
        late_alert: list[int] = []
        for index, r in enumerate(readings):
            rid = ids[index]
            if repeats:
                if rid in seen:
                    duplicates += 1
                    continue
                seen.add(rid)
            sid = r["sensor_id"]
            sensor = sensors.get(sid)
            metric = r["metric"]
            lim = limits.get(metric)
            v = r["value"]
            et = r["event_time"]
            if (sensor is None or sensor.metric != metric or lim is None or r["unit"] != lim[0]
                    or not lim[1] <= v <= lim[2] or not earliest <= et <= future_limit
                    or len(rid) > max_id or sensor.enterprise_id != enterprise_id):
                rejects.add(index, r, *self._why(env, r, index, sensor, arrival))
                continue
            opened = open_rings.get(sid)
            if opened is None:
                st = sensor_states.get(sid)
                if st is None:
                    st = sensor_states[sid] = new_sensor_state()
                forgot = st["last_event_time"] if len(st["recent_ids"]) >= ring_size else 0
                opened = open_rings[sid] = (st, set(st["recent_ids"]), [], forgot)
            st, ring, fresh, forgot = opened
            hashed = id_hash(rid)
            if hashed in ring and source_of(st, hashed) != packed:
                duplicates += 1
                continue
            if et <= forgot:    # as old as what the ring may have forgotten: the sink checks
                recheck = True
            fresh.append(hashed)
            lag = arrival - et
            quality = r["quality"]
            c_id.append(rid)
            c_sensor.append(sid)
            c_metric.append(metric)
            c_value.append(v)
            c_unit.append(r["unit"])
            c_quality.append(quality)
            c_time.append(et)
            c_lag.append(lag)
            is_late = lag > lim[3]
            if is_late:
                late += 1
                late_alert.append(lag)
            if quality == "BAD":
                level, codes = 0, None
            else:
                level, codes, alerts = score(st, v, sensor.alarm_level1, sensor.alarm_level2)
                for code in codes:
                    anomalies[code] = anomalies.get(code, 0) + 1
                for alert_type in alerts:
                    out.alerts.append(self._reading_alert(alert_type, r, sensor, env, st, now_ms))
                st["last_event_time"] = et
            if is_late or codes:
                flags.append({"index": len(c_id) - 1, "late": is_late, "alarm_level": level,
                              "anomalies": codes or []})
        out.dead_letters += rejects.dead_letters()
        cutoff = arrival - self.horizon_ms
        for st, _, new, _ in open_rings.values():
            if new:
                dedup.remember(st, new, packed, arrival, self.ring_size, cutoff)
        if late_alert:
            out.alerts.append(make_alert(
                "LATE_TELEMETRY", "gateway", gateway_id, env["sent_at"], now_ms,
                f"envelope {env['sequence']} from gateway {gateway_id}: {len(late_alert)} "
                f"reading(s) arrived late, up to {max(late_alert) // 1000} s after they were "
                "taken", enterprise_id=env["enterprise_id"],
                region_code=self.reference.region_of(env["enterprise_id"]),
                value=max(late_alert) / 1000, id_extra=str(env["sequence"]), tag=tag))
        return {**columns, "flags": flags, "recheck": recheck}, duplicates, late, anomalies

    def _reading_alert(self, alert_type: str, r: Record, sensor: Any, env: Record,
                       st: SensorState, now_ms: int) -> Record:
        v = r["value"]
        threshold: float | None = None
        if alert_type == "ALARM_L1":
            threshold = sensor.alarm_level1
            why = f"at or over the first alarm limit {threshold}"
        elif alert_type == "ALARM_L2":
            threshold = sensor.alarm_level2
            why = f"at or over the second alarm limit {threshold}"
        elif alert_type == "SPIKE":
            threshold = self.policy.spike_ratio * sensor.alarm_level1
            why = f"changed by more than {threshold} since the previous reading"
        elif alert_type == "FLATLINE":
            why = f"the same value {st['flat_run']} times in a row (stuck sensor?)"
        else:
            why = (f"far from the sensor's recent mean {st['mean']:.4g} "
                   f"(robust z-score over {self.policy.outlier_z})")
        enterprise = env["enterprise_id"]
        return make_alert(
            alert_type, "sensor", sensor.sensor_id, r["event_time"], now_ms,
            f"reading {r['reading_id']} of sensor {sensor.sensor_id} ({r['metric']}) on gateway "
            f"{env['gateway_id']}: {v} {r['unit']} {why}", enterprise_id=enterprise,
            region_code=self.reference.region_of(enterprise), value=v, threshold=threshold)

    def _why(self, env: Record, r: Record, index: int, sensor: Any,
             arrival: int) -> tuple[str, str]:
        """A rejected reading's reason code and what, where and why."""
        rid, sid = r["reading_id"][:self.max_id], r["sensor_id"][:self.max_id]
        where = f"reading {rid} (index {index}) of envelope {env['sequence']} from gateway " \
                f"{env['gateway_id']}"
        if sensor is None:
            code, why = "UNKNOWN_SENSOR", f"sensor {sid} is not registered"
        elif sensor.metric != r["metric"]:
            code, why = "UNKNOWN_SENSOR", (f"sensor {sid} is registered for {sensor.metric}, "
                                           f"not {r['metric']}")
        elif sensor.enterprise_id != env["enterprise_id"]:   # a reading for another's sensor
            code, why = "IDENTITY_MISMATCH", (f"sensor {sid} belongs to enterprise "
                                              f"{sensor.enterprise_id}, not to "
                                              f"{env['enterprise_id'][:self.max_id]}")
        else:
            problems = check_reading(r, self.policy, arrival)
            if problems:
                code, why = problems[0].code, "; ".join(p.message for p in problems)
            else:  # pragma: no cover - the fast check and the rules disagree
                code, why = "OUT_OF_RANGE", f"{r['value']} {r['unit']} rejected"
        return code, f"{where}: {why}"


class Rejects:
    """The rejected readings of one envelope, as bounded dead letters.

    The first ``INDIVIDUAL`` rejects each get a dead letter of their own, carrying only
    their reading (as a one-reading envelope in JSON, so it can be replayed); if there are
    more, ONE further dead letter carries the whole original message and says how many more
    readings were rejected and why. A message's dead letters thus stay within its own size
    plus a few small records, however many of its readings are bad (an envelope of 12,000
    readings for an unregistered sensor makes 11 dead letters, not 12,000 copies of itself).
    """

    INDIVIDUAL = 10

    def __init__(self, env: Record, source: Source, key: bytes | None, value: bytes,
                 now_ms: int, tag: str | None) -> None:
        self.env, self.source, self.key, self.value = env, source, key, value
        self.now_ms, self.tag = now_ms, tag
        self.found: list[tuple[int, Record, str, str]] = []

    def add(self, index: int, reading: Record, code: str, message: str) -> None:
        self.found.append((index, reading, code, message))

    def _alone(self, reading: Record) -> bytes:
        env = self.env
        one = {"gateway_id": env["gateway_id"], "enterprise_id": env["enterprise_id"],
               "sent_at": env["sent_at"], "sequence": env["sequence"], "readings": [reading]}
        return json.dumps(one, ensure_ascii=False, default=str).encode()

    def dead_letters(self) -> list[Record]:
        out = [dead_letter(self.source, self.key, self._alone(r), code, message, "validate",
                           self.now_ms, record_index=index, record_id=r["reading_id"],
                           tag=self.tag)
               for index, r, code, message in self.found[:self.INDIVIDUAL]]
        rest = self.found[self.INDIVIDUAL:]
        if rest:
            codes = Counter(code for _, _, code, _ in rest)
            shown = ", ".join(f"{code} x{n}" for code, n in codes.most_common())
            first = rest[0]
            out.append(dead_letter(
                self.source, self.key, self.value, codes.most_common(1)[0][0],
                f"{len(rest)} more readings of envelope {self.env['sequence']} from gateway "
                f"{self.env['gateway_id']} rejected ({shown}); the first: {first[3]} "
                "(this dead letter carries the whole message)", "validate", self.now_ms,
                record_index=first[0], tag=self.tag))
        return out
