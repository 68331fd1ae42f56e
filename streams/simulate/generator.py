"""The traffic generator: a pure, seedable iterator of ``(logical_topic, key, value, faults)``.

``value`` is an Avro-ready dict (timestamps as int epoch millis) or raw ``bytes`` (the
"truncated Avro" and "unknown schema id" faults); ``faults`` is None for clean messages or a
list of ground-truth objects (the format in the team brief) that this message carries.
``Simulator.truth`` holds every ground-truth object in order (including silences, which have
no message of their own) and ``Simulator.summary()`` the counts. Simulated time starts at
``SimConfig.start_ms`` and advances one second per tick; ``Simulator.now_ms`` tells a caller
that paces output to the wall clock where the generator is.
"""

from __future__ import annotations

import io
import math
import random
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import fastavro

from schemas.catalog import default_catalog
from schemas.catalog.declarations import TELEMETRY
from streams.policy import Policy
from streams.simulate import anomalies, topology
from streams.simulate.incidents import HazardSource, IncidentSource
from streams.simulate.topology import Gateway, SensorState

Event = tuple[str, str, dict[str, Any] | bytes, list[dict[str, Any]] | None]
UNKNOWN_SCHEMA_ID = 2_000_000_000
HOLD_MS = 2_000            # a gateway sends an envelope when full or its oldest reading is this old
READING_FAULTS = ("OUT_OF_RANGE", "UNIT_MISMATCH", "TRUNCATED_AVRO", "UNKNOWN_SCHEMA_ID")


@dataclass(frozen=True)
class SimConfig:
    seed: int = 1
    rate: float = 1000.0                # readings per second (daily mean)
    duration_s: float = 60.0
    enterprises: int = 10
    gateways_per_enterprise: int = 2
    sensors_per_gateway: int = 8
    batch_size: int = 100
    start_ms: int = 1_767_225_600_000   # 2026-01-01T00:00Z; the CLI passes the wall clock
    run_id: str = ""                    # prefix of generated ids; default derived from seed
    heartbeat_interval_s: int = 10
    incidents_per_min: float = 4.0
    hazards_per_min: float = 4.0
    duplicate_rate: float = 0.001       # fraction of readings re-sent
    duplicate_report_rate: float = 0.05  # fraction of reports re-sent
    late_rate: float = 0.0005           # fraction of readings sent late
    late_report_rate: float = 0.2       # fraction of incidents with a late initial report
    anomalies: int = 5                  # sensors given an anomaly (cycling through the kinds)
    invalid_rate: float = 0.005         # fraction of envelopes / reports / hazards invalid
    concealment_rate: float = 0.1
    figure_jump_rate: float = 0.1
    silent_gateways: int = 1
    silent_for_s: int = 45

    def clean(self) -> SimConfig:
        """The same traffic with nothing injected (false-positive measurement)."""
        return replace(self, duplicate_rate=0.0, duplicate_report_rate=0.0, late_rate=0.0,
                       late_report_rate=0.0, anomalies=0, invalid_rate=0.0,
                       concealment_rate=0.0, figure_jump_rate=0.0, silent_gateways=0)


def _default_header(topic: str) -> bytes:
    return struct.pack(">bI", 0, 1)


class Simulator:
    def __init__(self, config: SimConfig, policy: Policy,
                 header: Any = _default_header) -> None:
        """``header(logical_topic) -> bytes`` frames the raw faults (the real schema id)."""
        self.config = config
        self.policy = policy
        self.header = header
        self.rng = random.Random(config.seed)
        self.run_id = config.run_id or f"{config.seed:x}"
        self.now_ms = config.start_ms
        self.topology = topology.build(self.rng, policy, config.enterprises,
                                       config.gateways_per_enterprise,
                                       config.sensors_per_gateway, config.start_ms,
                                       config.heartbeat_interval_s)
        self.incidents = IncidentSource(self.rng, policy, self.run_id)
        self.hazards = HazardSource(self.rng, self.run_id)
        self.truth: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self._buffers: dict[str, list[tuple[dict[str, Any], dict[str, Any] | None]]] = {}
        self._programs: dict[str, anomalies.Program] = {}
        self._anomaly_times = [config.start_ms + int((i + 1) * 0.7 * config.duration_s * 1000
                                                     / (config.anomalies + 1))
                               for i in range(config.anomalies)]
        self._reading_no = 0
        self._carry = 0.0
        self.planned = 0.0     # readings the rate and the diurnal profile asked for so far
        self._rr = 0
        self._resend: list[tuple[int, dict[str, Any]]] = []
        self._plan_silences()

    # -- set-up ----------------------------------------------------------------------------
    def _plan_silences(self) -> None:
        cfg = self.config
        gws = self.topology.gateways
        chosen = self.rng.sample(gws, min(cfg.silent_gateways, len(gws)))
        length = min(cfg.silent_for_s, int(cfg.duration_s * 0.75))
        for i, gw in enumerate(chosen):
            start = cfg.start_ms + int(cfg.duration_s * 1000 * (0.1 + 0.1 * i / len(chosen)))
            gw.silent_from_ms, gw.silent_until_ms = start, start + length * 1000
            for s in gw.sensors:
                s.faulted = True   # keep anomalies and reading faults off silent gateways
            self._note({"fault": "silent_gateway", "gateway_id": gw.gateway_id,
                        "silent_from_ms": start, "silent_for_s": length})

    def _note(self, line: dict[str, Any]) -> dict[str, Any]:
        self.truth.append(line)
        self.counts[line["fault"]] += 1
        return line

    def summary(self) -> dict[str, Any]:
        return dict(sorted(self.counts.items()))

    # -- the iterator ------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Event]:
        return self.events()

    def events(self) -> Iterator[Event]:
        for ent in self.topology.enterprises:
            yield self._count("enterprises", ent["enterprise_id"], ent, None)
        for sensor in self.topology.sensors:
            yield self._count("sensors", sensor["sensor_id"], sensor, None)
        end = self.config.start_ms + int(self.config.duration_s * 1000)
        while self.now_ms < end:
            yield from self._tick(self.now_ms, min(self.now_ms + 1000, end))
            self.now_ms = min(self.now_ms + 1000, end)
        yield from self._flush_all(end)
        for program in self._programs.values():   # cut off by the end of the run
            for line in program.truth(self.policy):
                self._note(line)

    def _count(self, topic: str, key: str, value: dict[str, Any] | bytes,
               faults: list[dict[str, Any]] | None) -> Event:
        self.counts[f"messages.{topic}"] += 1
        return topic, key, value, faults or None

    def _tick(self, t0: int, t1: int) -> Iterator[Event]:
        cfg = self.config
        yield from self._heartbeats(t0, t1)
        hour = ((t0 // 3_600_000) + 8) % 24 + (t0 % 3_600_000) / 3_600_000   # China time
        diurnal = 1.0 + 0.3 * math.sin(2 * math.pi * (hour - 8) / 24)
        self._carry += cfg.rate * diurnal * (t1 - t0) / 1000
        self.planned += cfg.rate * diurnal * (t1 - t0) / 1000
        n = int(self._carry)
        self._carry -= n
        self._schedule_anomalies(t0)
        sensors = self.topology.states
        for j in range(n):
            sensor = sensors[self._rr % len(sensors)]
            self._rr += 1
            yield from self._reading(sensor, t0 + (t1 - t0) * j // max(n, 1))
        if self.rng.random() < cfg.invalid_rate * n / cfg.batch_size / 2:
            yield self._raw_fault(t1)
        yield from self._reports(t0, t1)
        yield from self._flush_due(t1)

    def _heartbeats(self, t0: int, t1: int) -> Iterator[Event]:
        every = self.config.heartbeat_interval_s * 1000
        for gw in self.topology.gateways:
            k = -(-(t0 - self.config.start_ms - gw.beat_offset_ms) // every)
            at = self.config.start_ms + gw.beat_offset_ms + max(k, 0) * every
            if at < t1 and at >= t0 and not gw.silent(at):
                gw.beat_sequence += 1
                beat = {"gateway_id": gw.gateway_id, "enterprise_id": gw.enterprise_id,
                        "sent_at": at, "sequence": gw.beat_sequence,
                        "interval_s": self.config.heartbeat_interval_s, "firmware": "2.3.1"}
                yield self._count("heartbeats", gw.gateway_id, beat, None)

    # -- readings ------------------------------------------------------------------------------
    def _schedule_anomalies(self, now: int) -> None:
        need = max(2 * self.policy.outlier_warmup, self.policy.flatline_count + 10)
        while self._anomaly_times and self._anomaly_times[0] <= now:
            eligible = [s for s in self.topology.states if not s.faulted and s.count >= need]
            if not eligible:
                return
            kind = anomalies.KINDS[self.counts["anomalies.scheduled"] % len(anomalies.KINDS)]
            sensor = self.rng.choice(eligible)
            sensor.faulted = True
            program = anomalies.build(kind, sensor, self.policy)
            self.counts["anomalies.scheduled"] += 1
            self._anomaly_times.pop(0)
            if program is not None:
                self._programs[sensor.sensor_id] = program

    def _new_reading(self, s: SensorState, at: int, value: float) -> dict[str, Any]:
        self._reading_no += 1
        s.count += 1
        return {"reading_id": f"{self.run_id}-{s.sensor_id}-{s.count:07d}",
                "sensor_id": s.sensor_id, "metric": s.metric, "value": value, "unit": s.unit,
                "quality": "GOOD", "event_time": at}

    def _reading(self, s: SensorState, at: int) -> Iterator[Event]:
        gw = self._gateway(s)
        if gw.silent(at):
            return
        cfg, rng = self.config, self.rng
        buf = self._buffers.setdefault(gw.gateway_id, [])
        program = self._programs.get(s.sensor_id)
        if program is not None:
            reading = self._new_reading(s, at, program.next_value(s.clean_value(rng)))
            program.record(reading["reading_id"], reading["value"])
            buf.append((reading, None))
            if program.done:
                program.finish()
                del self._programs[s.sensor_id]
                lines = [self._note(x) for x in program.truth(self.policy)]
                buf[-1] = (reading, {"lines": lines})
        elif not s.faulted and s.last is not None and rng.random() < cfg.duplicate_rate:
            buf.append((dict(s.last), {"lines": [self._note({
                "fault": "duplicate", "type": "telemetry",
                "record_id": s.last["reading_id"]})]}))
            s.last = None
        elif not s.faulted and rng.random() < cfg.late_rate:
            lag = 2 * int(self.policy.metrics[s.metric].late_after.total_seconds() * 1000)
            lag += rng.randint(0, 60_000)
            reading = self._new_reading(s, at - lag, s.clean_value(rng))
            buf.append((reading, {"late": reading["event_time"]}))
        elif not s.faulted and rng.random() < cfg.invalid_rate / cfg.batch_size:
            code = rng.choice(READING_FAULTS[:2])
            mp = self.policy.metrics[s.metric]
            reading = self._new_reading(s, at, s.clean_value(rng))
            if code == "OUT_OF_RANGE":
                reading["value"] = mp.high + abs(mp.high - mp.low) / 2 + 1
            else:
                reading["unit"] = next(u for u in ("PERCENT_LEL", "PPM", "CELSIUS")
                                       if u != mp.unit)
            buf.append((reading, {"lines": [self._note({
                "fault": "invalid", "topic": "telemetry", "error_code": code,
                "record_id": reading["reading_id"]})]}))
        else:
            reading = self._new_reading(s, at, s.clean_value(rng))
            s.last = reading
            buf.append((reading, None))
        if len(buf) >= cfg.batch_size:
            yield self._envelope(gw, at)

    def _gateway(self, s: SensorState) -> Gateway:
        index = int(s.gateway_id.split("-")[1]) - 1, int(s.gateway_id.split("-")[2]) - 1
        return self.topology.gateways[index[0] * self.config.gateways_per_enterprise + index[1]]

    def _envelope(self, gw: Gateway, sent_at: int) -> Event:
        buf = self._buffers.pop(gw.gateway_id)
        gw.sequence += 1
        faults: list[dict[str, Any]] = []
        for reading, mark in buf:
            if mark is None:
                continue
            if "late" in mark:
                faults.append(self._note({"fault": "late_telemetry",
                                          "reading_id": reading["reading_id"],
                                          "lag_ms": sent_at - mark["late"]}))
            faults += mark.get("lines", [])
        envelope = {"gateway_id": gw.gateway_id, "enterprise_id": gw.enterprise_id,
                    "sent_at": sent_at, "sequence": gw.sequence,
                    "readings": [r for r, _ in buf]}
        self.counts["readings"] += len(buf)
        return self._count("telemetry", gw.gateway_id, envelope, faults)

    def _flush_due(self, now: int) -> Iterator[Event]:
        for gw in self.topology.gateways:
            buf = self._buffers.get(gw.gateway_id)
            if buf and now - buf[0][0]["event_time"] >= HOLD_MS:
                yield self._envelope(gw, now)

    def _flush_all(self, now: int) -> Iterator[Event]:
        for gw in self.topology.gateways:
            if self._buffers.get(gw.gateway_id):
                yield self._envelope(gw, now)

    def _raw_fault(self, now: int) -> Event:
        """A telemetry message that cannot be decoded: truncated body or unknown schema id."""
        gw = self.rng.choice(self.topology.gateways)
        code = self.rng.choice(READING_FAULTS[2:])
        envelope = {"gateway_id": gw.gateway_id, "enterprise_id": gw.enterprise_id,
                    "sent_at": now, "sequence": 0, "readings": [
                        {"reading_id": f"{self.run_id}-lost-{self.counts['raw'] + 1}-{i}",
                         "sensor_id": s.sensor_id, "metric": s.metric, "value": s.base,
                         "unit": s.unit, "quality": "GOOD", "event_time": now}
                        for i, s in enumerate(gw.sensors)]}
        self.counts["raw"] += 1
        out = io.BytesIO()
        schema = default_catalog().schemas.parsed(TELEMETRY.input.record)
        fastavro.schemaless_writer(out, schema, envelope)
        body = out.getvalue()
        if code == "TRUNCATED_AVRO":
            value = self.header("telemetry") + body[:_truncation_point(body)]
        else:
            value = struct.pack(">bI", 0, UNKNOWN_SCHEMA_ID) + body
        line = self._note({"fault": "invalid", "topic": "telemetry", "error_code": code,
                           "record_id": None})
        return self._count("telemetry", gw.gateway_id, value, [line])

    # -- reports -------------------------------------------------------------------------------
    def _reports(self, t0: int, t1: int) -> Iterator[Event]:
        cfg, rng = self.config, self.rng
        for at, report in [r for r in self._resend if r[0] < t1]:
            self._resend.remove((at, report))
            yield self._count("incidents", report["incident_id"], report, [self._note({
                "fault": "duplicate", "type": "incident", "record_id": report["report_id"]})])
        if rng.random() < cfg.incidents_per_min * (t1 - t0) / 60_000:
            invalid = rng.choice(("BAD_REGION_CODE", "NEGATIVE_FIGURE")) \
                if rng.random() < cfg.invalid_rate else None
            report, truth = self.incidents.new_incident(
                t0, late=rng.random() < cfg.late_report_rate,
                conceal=rng.random() < cfg.concealment_rate,
                jump=rng.random() < cfg.figure_jump_rate, invalid=invalid)
            yield self._report(report, truth)
        for report, truth in self.incidents.due(t0):
            yield self._report(report, truth)
        if rng.random() < cfg.hazards_per_min * (t1 - t0) / 60_000:
            bad = rng.random() < cfg.invalid_rate
            ent = rng.choice(self.topology.enterprises)
            hazard = self.hazards.new(t0, ent, bad)
            truth = [{"fault": "invalid", "topic": "hazards", "error_code": "BAD_REGION_CODE",
                      "record_id": hazard["hazard_id"]}] if bad else []
            yield self._count("hazards", hazard["hazard_id"], hazard,
                              [self._note(x) for x in truth])
        for hazard in self.hazards.due(t0):
            yield self._count("hazards", hazard["hazard_id"], hazard, None)

    def _report(self, report: dict[str, Any], truth: list[dict[str, Any]]) -> Event:
        invalid = any(x["fault"] == "invalid" for x in truth)
        if not invalid and self.rng.random() < self.config.duplicate_report_rate:
            self._resend.append((self.now_ms + self.rng.randint(1, 5) * 1000, dict(report)))
        return self._count("incidents", report["incident_id"], report,
                           [self._note(x) for x in truth])


def _truncation_point(body: bytes) -> int:
    """A length at which the body ends early (fastavro raises EOFError, not another error)."""
    schema = default_catalog().schemas.parsed(TELEMETRY.input.record)
    for cut in range(len(body) // 2, 0, -1):
        try:
            fastavro.schemaless_reader(io.BytesIO(body[:cut]), schema, schema)
        except EOFError:
            return cut
        except Exception:  # another error at this cut: try a shorter one
            continue
    return 1
