"""``ebi canary``: run a tagged synthetic scenario through the live pipeline and check it.

Publishes :class:`~streams.canary.scenario.Scenario` (ids ``canary-<run>-...``), reads the
worker's outputs (every output topic of the catalog) from where they ended before the run,
and decides each expectation: caught, missed, or (for the clean control records) wrongly
flagged. The silent gateway is given time to be found by the worker's timer
before it comes back. Then it checks that the sink wrote the tagged rows to ClickHouse, and
cleans up (FINAL reports, tombstones for the registrations).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas.catalog import default_catalog
from schemas.catalog.declarations import INCIDENT, TELEMETRY
from schemas.catalog.model import Catalog
from schemas.codec import SchemaSource
from schemas.columns import rows
from streams.canary.scenario import Scenario
from streams.kafkaio import OutputReader, publish
from streams.policy import Policy
from streams.settings import Settings
from streams.worker.topics import ensure_topics

RECEIPT_SLACK_MS = 60_000   # publishing to receipt, at most (the canary's own messages)


@dataclass(frozen=True)
class Verdict:
    name: str
    status: str          # caught, missed, not flagged, wrongly flagged
    detail: str

    @property
    def ok(self) -> bool:
        return self.status in ("caught", "not flagged")

    def line(self) -> str:
        return f"{self.status.upper():<16} {self.name}: {self.detail}"


def _v(name: str, ok: bool, detail: str, bad: str = "missed") -> Verdict:
    return Verdict(name, ("caught" if bad == "missed" else "not flagged") if ok else bad, detail)


def evaluate(sc: Scenario, outputs: list[Any], catalog: Catalog | None = None
             ) -> dict[str, Verdict]:
    """Every expectation, judged on the tagged outputs read so far."""
    catalog = catalog or default_catalog()
    mine = [o for o in outputs if o.record.get("tag") == sc.tag]

    def of(topic: str) -> list[dict[str, Any]]:
        return [o.record for o in mine if o.topic == topic]

    assert TELEMETRY.clean is not None and INCIDENT.clean is not None
    envelopes = of(TELEMETRY.clean.name)
    readings = [r for env in envelopes for r in rows(env)]
    alerts = {(a["alert_type"], a["subject_id"]) for a in of(catalog.output("alert").topic.name)}
    reports = {r["report_id"]: r for r in of(INCIDENT.clean.name) if not r["duplicate"]}
    dead = of(catalog.output("deadletter").topic.name)
    statuses = of(catalog.output("status").topic.name)
    i = sc.ids
    out: dict[str, Verdict] = {}
    dup = sum(r["reading_id"] == sc.dup_reading for r in readings)
    dropped = sum(env["duplicates"] for env in envelopes)
    out["duplicate"] = _v("duplicate", dup == 1 and dropped >= 1,
                          f"reading accepted {dup}x, {dropped} dropped as duplicate")
    late = reports.get(i["rep-late"])
    # lateness counts at the later of reported_at and the broker's receipt, so the time the
    # canary's own publishing took may add to it
    out["late incident"] = _v("late incident", bool(
        late and late["late"] and
        sc.late_by_ms <= late["late_by_ms"] <= sc.late_by_ms + RECEIPT_SLACK_MS and
        ("LATE_REPORT", i["inc-late"]) in alerts),
        f"late_by_ms {late['late_by_ms'] if late else '-'} (expected {sc.late_by_ms}, up to "
        f"{RECEIPT_SLACK_MS // 1000} s more for the broker's receipt)")
    breach = [r for r in readings if r["sensor_id"] == i["s-alarm"] and r["alarm_level"] == 2]
    raised = sorted(t for t, s in alerts if s == i["s-alarm"])
    out["alarm-limit breach"] = _v("alarm-limit breach", bool(breach) and {
        ("ALARM_L1", i["s-alarm"]), ("ALARM_L2", i["s-alarm"])} <= alerts,
        f"{len(breach)} reading(s) at level 2, alerts {raised}")
    out["flatline"] = _v("flatline", ("FLATLINE", i["s-flat"]) in alerts,
                         f"{sc.flat_count} identical values of {i['s-flat']}")
    codes = {(d["error_code"], d["record_id"]) for d in dead}
    out["invalid reading"] = _v("invalid reading", ("OUT_OF_RANGE", sc.bad_reading) in codes,
                                "5000 CELSIUS -> dead letter OUT_OF_RANGE")
    out["invalid message"] = _v("invalid message", ("NOT_CONFLUENT_FRAMED", None) in codes,
                                "not Avro -> dead letter NOT_CONFLUENT_FRAMED")
    out["concealment"] = _v("concealment", ("SUSPECTED_CONCEALMENT", i["inc-conceal"]) in alerts,
                            "5 deaths declared ORDINARY")
    states = [s["status"] for s in statuses if s["gateway_id"] == i["gw-silent"]]
    out["silent gateway"] = _v("silent gateway", "OFFLINE" in states and "ONLINE" in states,
                               f"statuses {states}")
    # controls: clean records must come through unflagged
    ok_readings = [r for r in readings if r["sensor_id"] == i["s-ok"]]
    flagged = [r["reading_id"] for r in ok_readings if r["anomalies"] or r["late"]]
    out["clean readings"] = _v("clean readings", len(ok_readings) == len(sc.ok_readings)
                               and not flagged, f"{len(ok_readings)} accepted, flagged: "
                               f"{flagged}", "wrongly flagged")
    ok_flags = reports[i["rep-ok"]]["flags"] if i["rep-ok"] in reports else None
    out["on-time report"] = Verdict("on-time report", "missed", "no output yet") \
        if ok_flags is None else _v("on-time report", not ok_flags, f"flags {ok_flags}",
                                    "wrongly flagged")
    expected = {"ALARM_L1", "ALARM_L2", "FLATLINE", "LATE_REPORT", "SUSPECTED_CONCEALMENT",
                "GATEWAY_OFFLINE", "GATEWAY_ONLINE", "REPORT_DUE_SOON"}
    extra = sorted(f"{t} on {s}" for t, s in alerts if t not in expected)
    out["no other alerts"] = _v("no other alerts", not extra, f"unexpected: {extra}",
                                "wrongly flagged")
    return out


def clickhouse_check(settings: Settings, tag: str, timeout: float) -> Verdict:
    """The sink wrote the canary's rows (by tag) to ClickHouse."""
    from sinks.clickhouse import ClickHouseError, connect
    from sinks.clickhouse.config import login_url, parse_url

    expected = Scenario.expected_rows()
    database = parse_url(settings.clickhouse).database
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    error = ""
    while time.monotonic() < deadline:
        try:
            backend = connect(login_url(settings))
            try:
                for table in expected:
                    counts[table] = int(backend.query(
                        f"SELECT count() FROM {database}.{table} WHERE tag = '{tag}'").scalar())
            finally:
                backend.close()
            error = ""
        except ClickHouseError as exc:
            error = str(exc).splitlines()[0][:200]
        if not error and all(counts.get(t, 0) >= n for t, n in expected.items()):
            return Verdict("clickhouse", "caught", ", ".join(f"{t} {n}"
                                                             for t, n in counts.items()))
        time.sleep(1.0)
    return Verdict("clickhouse", "missed", error or "rows by tag: " + ", ".join(
        f"{t} {counts.get(t, 0)}/{n}" for t, n in expected.items()))


class Canary:
    def __init__(self, settings: Settings, registry: SchemaSource, policy: Policy, *,
                 run: str, timeout: float = 120.0, silence_wait: float | None = None,
                 clickhouse: bool = True, say: Callable[[str], None] = print,
                 catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.catalog = catalog or default_catalog()
        self.registry = registry
        self.scenario = Scenario(run, int(time.time() * 1000), policy)
        self.timeout = timeout
        # the worker's timer needs the allowed silence (3 x 1 s) plus one check interval
        self.silence_wait = silence_wait if silence_wait is not None else \
            policy.offline_after_intervals + policy.check_every.total_seconds() + 5
        self.clickhouse = clickhouse
        self.say = say

    def run(self) -> list[Verdict]:
        sc, st = self.scenario, self.settings
        ensure_topics(st, self.catalog)
        outputs = [t.name for t in self.catalog.worker_outputs()]
        reader = OutputReader(st, self.registry, outputs,
                              start=OutputReader.end_offsets(st, outputs), catalog=self.catalog)
        try:
            publish(st, self.registry, sc.reference())
            publish(st, self.registry, sc.traffic())
            silent_since = time.monotonic()
            deadline = silent_since + self.timeout

            status_topic = self.catalog.output("status").topic.name

            def offline(outs: list[Any]) -> bool:
                return any(o.topic == status_topic and o.record["status"] == "OFFLINE" and
                           o.record["gateway_id"] == sc.ids["gw-silent"] for o in outs)

            by_timer = reader.until(offline, self.silence_wait)
            how = "found by the timer" if by_timer else \
                "not reported by the timer yet; it comes back now"
            self.say(f"silent gateway {how} after {time.monotonic() - silent_since:.0f} s")
            publish(st, self.registry, [sc.heartbeat(5, int(time.time() * 1000))])

            def settled(outs: list[Any]) -> bool:
                return all(v.ok for v in evaluate(sc, outs, self.catalog).values())

            reader.until(settled, max(5.0, deadline - time.monotonic()))
            verdicts = list(evaluate(sc, reader.outputs, self.catalog).values())
        finally:
            reader.close()
        if self.clickhouse:
            verdicts.append(clickhouse_check(st, sc.tag, max(10.0, self.timeout / 2)))
        else:
            verdicts.append(Verdict("clickhouse", "not flagged", "skipped (--no-clickhouse)"))
        publish(st, self.registry, sc.cleanup(int(time.time() * 1000)))
        return verdicts
