"""Helpers for the worker integration tests (no tests here): run ``ebi worker`` as a real
process, publish simulator traffic, read the outputs back and score them against the
simulator's ground truth."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.catalog import default_catalog
from schemas.columns import rows
from streams import clients
from streams.kafkaio import Coordinates, OutputReader, publish
from streams.policy import load_policy
from streams.settings import Settings
from streams.simulate import SimConfig, Simulator
from streams.worker.topics import ensure_topics
from tests.integration.conftest import security_env
from tests.integration.processes import Process

CATALOG = default_catalog()
OUTPUTS = tuple(t.name for t in CATALOG.worker_outputs())
LEDGER = (*(k.clean.name for k in CATALOG.ledgered if k.clean is not None),
          CATALOG.output("deadletter").topic.name)
SENSOR_ALERTS = ("ALARM_L1", "ALARM_L2", "SPIKE", "FLATLINE", "OUTLIER")


def worker_env(settings: Settings, instance: str = "0") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBI_")}
    env.update({
        "EBI_KAFKA_BOOTSTRAP": settings.bootstrap, "EBI_SCHEMA_REGISTRY_URL": settings.registry_url,
        "EBI_TOPIC_PREFIX": settings.topic_prefix, "EBI_DATA_DIR": str(settings.data_dir),
        "EBI_WORKER_ID": settings.worker_id, "EBI_WORKER_INSTANCE": instance,
        "EBI_TOPIC_PARTITIONS": str(settings.topic_partitions), "EBI_METRICS_PORT": "0",
        "EBI_POLICY_FILE": settings.policy_file, "EBI_LOG_LEVEL": "INFO",
        "EBI_CATALOG": settings.catalog,
        **security_env(settings),
    })
    return env


def pipeline_env(settings: Settings) -> dict[str, str]:
    """A worker's environment plus the sink's (its store, group and a short batch time)."""
    out = worker_env(settings)
    out.update({"EBI_CLICKHOUSE_URL": settings.clickhouse, "EBI_SINK_GROUP": settings.sink_group,
                "EBI_SINK_BATCH_SECONDS": "0.5"})
    return out


class WorkerProcess(Process):
    """``python -m streams worker`` for ``settings``, logging to
    ``data_dir/worker-<worker_id>-<instance>.log``."""

    def __init__(self, settings: Settings, instance: str = "0") -> None:
        super().__init__(f"worker-{settings.worker_id}-{instance}", ["worker"],
                         worker_env(settings, instance), Path(settings.data_dir))
        self.settings = settings
        self.instance = instance

    def start(self) -> WorkerProcess:
        super().start()
        return self


def simulate(settings: Settings, config: SimConfig) -> tuple[Simulator, list[Any],
                                                             list[Coordinates]]:
    """Run the simulator (simulated time already in the past, so nothing is 'from the
    future') and publish everything as fast as possible."""
    ensure_topics(settings)
    registry = clients.registry(settings)
    from schemas.codec import AvroSerializer

    header = AvroSerializer(registry).header
    sim = Simulator(config, load_policy(settings.policy_file or None),
                    header=lambda t: header(settings.topic(t), default_catalog().topic(t).record))
    events = list(sim)
    reference = [(t, k, v) for t, k, v, _ in events if t in ("enterprises", "sensors")]
    traffic = [(t, k, v) for t, k, v, _ in events if t not in ("enterprises", "sensors")]
    publish(settings, registry, reference)
    coords = publish(settings, registry, traffic)
    return sim, [e for e in events if e[0] not in ("enterprises", "sensors")], coords


class PacedPublisher:
    """Publishes simulator traffic in chunks spread over ``seconds`` on a thread, so that a
    worker can be killed or joined while messages keep coming."""

    def __init__(self, settings: Settings, config: SimConfig, seconds: float,
                 chunks: int = 40) -> None:

        ensure_topics(settings)
        registry = clients.registry(settings)
        self.sim = Simulator(config, load_policy(settings.policy_file or None))
        events = list(self.sim)
        publish(settings, registry, [(t, k, v) for t, k, v, _ in events
                                     if t in ("enterprises", "sensors")])
        self.events = [(t, k, v) for t, k, v, _ in events if t not in ("enterprises", "sensors")]
        self.coords: list[Coordinates] = []
        self.error: BaseException | None = None

        def run() -> None:
            try:
                size = max(1, len(self.events) // chunks)
                for i in range(0, len(self.events), size):
                    self.coords += publish(settings, registry, self.events[i:i + size])
                    time.sleep(seconds / chunks)
            except BaseException as exc:  # reported by join()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, timeout: float = 120.0) -> list[Coordinates]:
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.coords

    def done(self) -> bool:
        return not self.thread.is_alive()


def accepted_twice(outputs: OutputReader) -> list[str]:
    """Reading ids (and report ids) accepted in outputs of two different source messages.
    The same source message output twice (a replay after a crash) is not counted: the
    ClickHouse sink deduplicates those by source coordinates."""
    where: dict[str, set[tuple[str, int, int]]] = defaultdict(set)
    for out in outputs.outputs:
        src = out.record.get("source")
        if src is None:
            continue
        coords = (src["topic"], src["partition"], src["offset"])
        if out.topic == "telemetry.clean":
            for rid in out.record["reading_id"]:
                where[rid].add(coords)
        elif out.topic == "incidents.clean" and not out.record["duplicate"]:
            where[out.record["report_id"]].add(coords)
    return [rid for rid, places in where.items() if len(places) > 1]


def past_config(**overrides: Any) -> SimConfig:
    duration = float(overrides.get("duration_s", 60.0))
    start = int(time.time() * 1000) - int(duration * 1000) - 5_000
    return SimConfig(start_ms=start, **overrides)


def reader(settings: Settings) -> OutputReader:
    return OutputReader(settings, clients.registry(settings), OUTPUTS)


def ledger_sources(outputs: OutputReader) -> Counter[tuple[str, int, int]]:
    """Source coordinates of every ledger output (enriched records and whole-message dead
    letters), with how often each appears."""
    seen: Counter[tuple[str, int, int]] = Counter()
    for out in outputs.outputs:
        if out.topic not in LEDGER:
            continue
        rec = out.record
        if out.topic == "deadletter" and rec["record_index"] is not None:
            continue   # one bad reading inside an envelope that has its enriched record
        src = rec["source"]
        seen[(src["topic"], src["partition"], src["offset"])] += 1
    return seen


def wait_for_ledger(outputs: OutputReader, expected: list[Coordinates],
                    timeout: float) -> set[Coordinates]:
    """Read until every input (except heartbeats, not ledgered) has an output; returns the
    ones still missing."""
    wanted = {c for c in expected if not c[0].endswith("heartbeats")}

    def done(_: Any) -> bool:
        return not (wanted - set(ledger_sources(outputs)))

    outputs.until(done, timeout)
    return wanted - set(ledger_sources(outputs))


def _number(reading_id: str) -> int:
    tail = reading_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def _near(reading_id: str, injected: set[str], slack: int = 10) -> bool:
    """The reading belongs to an injected anomaly program of its sensor. The truth lists the
    readings that show the anomaly's own kind (e.g. only those over the alarm limit); the
    ramp up to the limit is injected too, and a detector may rightly call its first steps
    outliers. Readings within ``slack`` of the listed ones (simulator reading numbers are
    per sensor) count as explained."""
    if reading_id in injected:
        return True
    n = _number(reading_id)
    return n >= 0 and any(abs(n - _number(rid)) <= slack for rid in injected)


@dataclass
class Score:
    injected: Counter[str] = field(default_factory=Counter)
    caught: Counter[str] = field(default_factory=Counter)
    missed: list[str] = field(default_factory=list)
    true_alerts: int = 0
    false_positives: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        total = sum(self.injected.values())
        return sum(self.caught.values()) / total if total else 1.0

    @property
    def precision(self) -> float:
        flagged = self.true_alerts + len(self.false_positives)
        return self.true_alerts / flagged if flagged else 1.0

    def lines(self) -> list[str]:
        out = [f"{kind:<16} injected {self.injected[kind]:>4}  caught {self.caught[kind]:>4}"
               for kind in sorted(self.injected)]
        out.append(f"recall {self.recall:.4f}  precision {self.precision:.4f} "
                   f"(true flags {self.true_alerts}, false positives "
                   f"{len(self.false_positives)})")
        return out + [f"  missed: {m}" for m in self.missed[:20]] + \
            [f"  false positive: {f}" for f in self.false_positives[:20]]


def score(truth: list[dict[str, Any]], outputs: OutputReader, sim_end_ms: int) -> Score:
    """Compare the outputs with the ground truth: what was caught, and what was flagged
    without having been injected."""
    s = Score()
    clean = outputs.of("telemetry.clean")
    reports = [r for r in outputs.of("incidents.clean")]
    alerts = outputs.of("alerts")
    statuses = outputs.of("gateway.status")
    dls = outputs.of("deadletter")
    accepted: Counter[str] = Counter()
    readings: dict[str, dict[str, Any]] = {}
    reading_gateway: dict[str, str] = {}
    for env in clean:
        for r in rows(env):
            accepted[r["reading_id"]] += 1
            readings[r["reading_id"]] = r
            reading_gateway[r["reading_id"]] = env["gateway_id"]
    by_report: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rep in reports:
        by_report[rep["report_id"]].append(rep)
    sensor_alerts = defaultdict(set)
    for a in alerts:
        sensor_alerts[(a["alert_type"], a["subject_id"])].add(a["event_time"])

    explained_readings: set[tuple[str, str]] = set()      # (reading id, any)
    anomaly_readings: dict[str, set[str]] = defaultdict(set)   # sensor -> reading ids
    late_gateways: set[tuple[str, str]] = set()
    explained_reports: dict[str, set[str]] = defaultdict(set)
    explained_dls: set[tuple[str, str | None]] = set()
    silent: dict[str, dict[str, Any]] = {}
    injected_duplicates = 0
    for line in truth:
        kind = line.get("fault")
        if kind is None:
            continue
        s.injected[kind] += 1
        ok = False
        if kind == "duplicate" and line["type"] == "telemetry":
            injected_duplicates += 1
            ok = accepted[line["record_id"]] == 1
        elif kind == "duplicate":
            copies = by_report.get(line["record_id"], [])
            ok = sum(not r["duplicate"] for r in copies) == 1 and any(r["duplicate"]
                                                                     for r in copies)
        elif kind == "late_report":
            firsts = [r for r in by_report.get(line["report_id"], []) if not r["duplicate"]]
            # lateness counts from the later of reported_at and the broker's receipt
            transit = max(0, firsts[0]["receipt_at"] - firsts[0]["reported_at"]) \
                if firsts else 0
            ok = bool(firsts) and firsts[0]["late"] and \
                firsts[0]["late_by_ms"] == line["late_by_ms"] + transit
            explained_reports[line["report_id"]].add("LATE")
        elif kind == "late_telemetry":
            r = readings.get(line["reading_id"])
            ok = r is not None and r["late"] and r["arrival_lag_ms"] >= line["lag_ms"]
            explained_readings.add((line["reading_id"], "late"))
            if r is not None:
                late_gateways.add(("LATE_TELEMETRY", reading_gateway[line["reading_id"]]))
        elif kind == "anomaly":
            sensor, code = line["sensor_id"], line["anomaly"]
            anomaly_readings[sensor].update(line["reading_ids"])
            flagged = [rid for rid in line["reading_ids"]
                       if code in readings.get(rid, {}).get("anomalies", [])]
            times = {readings[rid]["event_time"] for rid in flagged}
            ok = bool(times & sensor_alerts[(code, sensor)])
        elif kind == "concealment":
            ok = any("SUSPECTED_CONCEALMENT" in r["flags"] for r in
                     by_report.get(line["report_id"], []))
            explained_reports[line["report_id"]].add("SUSPECTED_CONCEALMENT")
        elif kind == "figure_jump":
            ok = any({"FIGURE_JUMP", "FIGURE_DROP"} & set(r["flags"]) for r in
                     by_report.get(line["report_id"], []))
            explained_reports[line["report_id"]].update({"FIGURE_JUMP", "FIGURE_DROP"})
        elif kind == "invalid":
            matches = [d for d in dls if d["error_code"] == line["error_code"] and
                       (line["record_id"] is None or d["record_id"] == line["record_id"])]
            ok = bool(matches)
            explained_dls.add((line["error_code"], line["record_id"]))
        elif kind == "silent_gateway":
            gw, start = line["gateway_id"], line["silent_from_ms"]
            end = start + line["silent_for_s"] * 1000
            silent[gw] = {"from": start, "to": end}
            offs = [st for st in statuses if st["gateway_id"] == gw and st["status"] == "OFFLINE"
                    and start - 60_000 <= st["changed_at"] <= end]
            ons = [st for st in statuses if st["gateway_id"] == gw and st["status"] == "ONLINE"
                   and st["changed_at"] >= start]
            ok = bool(offs) and bool(ons)
        if ok:
            s.caught[kind] += 1
        else:
            s.missed.append(str(line))

    # -- false positives: flags and alerts nothing injected explains -------------------
    for r in readings.values():
        sensor = r["sensor_id"]
        for code in r["anomalies"]:
            if _near(r["reading_id"], anomaly_readings[sensor]):
                s.true_alerts += 1
            else:
                s.false_positives.append(f"reading {r['reading_id']} flagged {code}")
        if r["late"]:
            if (r["reading_id"], "late") in explained_readings:
                s.true_alerts += 1
            else:
                s.false_positives.append(f"reading {r['reading_id']} late "
                                         f"({r['arrival_lag_ms']} ms)")
    for rep in reports:
        for flag in rep["flags"]:
            if flag == "DUPLICATE":
                continue
            if flag in explained_reports[rep["report_id"]] or (
                    flag == "CASUALTIES_FELL" and "FIGURE_DROP" in
                    explained_reports[rep["report_id"]]):
                s.true_alerts += 1
            else:
                s.false_positives.append(f"report {rep['report_id']} flagged {flag}")
    for a in alerts:
        kind, subject = a["alert_type"], a["subject_id"]
        if kind in SENSOR_ALERTS:
            ok = bool(anomaly_readings[subject])
        elif kind == "LATE_TELEMETRY":
            ok = (kind, subject) in late_gateways
        elif kind in ("GATEWAY_OFFLINE", "GATEWAY_ONLINE"):
            window = silent.get(subject)
            ok = (window is not None and window["from"] - 60_000 <= a["event_time"]
                  <= window["to"] + 60_000) or a["event_time"] > sim_end_ms
        else:
            continue   # report flags are scored on the enriched records above
        if not ok:
            s.false_positives.append(f"alert {kind} on {subject} at {a['event_time']}")
    for d in dls:
        if (d["error_code"], d["record_id"]) not in explained_dls and \
                (d["error_code"], None) not in explained_dls:
            s.false_positives.append(f"dead letter {d['error_code']} {d['record_id']}: "
                                     f"{d['error_message'][:120]}")
    dropped = sum(env["duplicates"] for env in clean)
    if dropped > injected_duplicates:
        s.false_positives.append(f"{dropped - injected_duplicates} readings dropped as "
                                 "duplicates beyond the injected ones")
    return s
