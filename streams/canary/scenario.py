"""The canary's synthetic scenario: records to publish and what the pipeline must make of them.

Every id starts with ``canary-<run>-`` so the outputs carry the tag ``canary-<run>``:
an enterprise with four sensors and two gateways; telemetry with a duplicate reading, an
alarm-limit breach (a ramp over level 2, no spike on the way), a flatline, a reading out of
its physical range and clean control readings; a message that is not Avro at all; a late
incident report, a concealment case and an on-time control report; a gateway that falls
silent after a few heartbeats. Cleanup records close the incidents (FINAL) and delete the
registrations (tombstones), so nothing of the canary stays monitored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.catalog.declarations import (
    ALERTS,
    DEAD_LETTERS,
    ENTERPRISE,
    GATEWAY_STATUS,
    HEARTBEAT,
    INCIDENT,
    SENSOR,
    TELEMETRY,
)
from streams.policy import Policy

H = 3_600_000
Item = tuple[str, str, dict[str, Any] | bytes | None]   # logical topic, key, record


@dataclass
class Scenario:
    run: str
    now_ms: int
    policy: Policy
    ids: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        p = f"canary-{self.run}-"
        self.tag = f"canary-{self.run}"
        self.ids = {name: p + name for name in (
            "ent", "gw-main", "gw-silent", "s-ok", "s-alarm", "s-flat", "s-dup",
            "inc-late", "inc-conceal", "inc-ok", "rep-late", "rep-conceal", "rep-ok")}
        self.dup_reading = p + "r-dup-1"
        self.bad_reading = p + "r-bad-1"
        self.ok_readings = [f"{p}r-ok-{i}" for i in range(5)]
        self.flat_count = self.policy.flatline_count + 2
        methane = self.policy.metrics["METHANE"]
        self.alarm_l1, self.alarm_l2 = methane.alarm_level1, methane.alarm_level2
        within = self.policy.reporting_deadline("PRODUCTION_SAFETY", "INITIAL", "ENTERPRISE")
        self.initial_deadline_ms = int(within.total_seconds() * 1000) if within else H
        self.late_by_ms = 2 * H

    # -- records -----------------------------------------------------------------------------
    def reference(self) -> list[Item]:
        i, now = self.ids, self.now_ms
        sensors = [("s-ok", "TEMPERATURE", "CELSIUS"), ("s-alarm", "METHANE", "PERCENT_VOL"),
                   ("s-flat", "FLAMMABLE_GAS", "PERCENT_LEL"), ("s-dup", "METHANE", "PERCENT_VOL")]
        items: list[Item] = [(ENTERPRISE.input.name, i["ent"], {
            "enterprise_id": i["ent"], "name": "ebi canary (synthetic monitoring)",
            "region_code": "110101", "industry": "canary", "updated_at": now})]
        for name, metric, unit in sensors:
            items.append((SENSOR.input.name, i[name], {
                "sensor_id": i[name], "enterprise_id": i["ent"], "gateway_id": i["gw-main"],
                "metric": metric, "unit": unit, "alarm_level1": None, "alarm_level2": None,
                "updated_at": now}))
        return items

    def _reading(self, rid: str, sensor: str, metric: str, unit: str, value: float,
                 at: int) -> dict[str, Any]:
        return {"reading_id": rid, "sensor_id": self.ids[sensor], "metric": metric,
                "value": value, "unit": unit, "quality": "GOOD", "event_time": at}

    def traffic(self) -> list[Item]:
        i, now, p = self.ids, self.now_ms, f"canary-{self.run}-"
        t0 = now - 60_000
        first = [self._reading(rid, "s-ok", "TEMPERATURE", "CELSIUS", 21.0 + n * 0.1,
                               t0 + n * 1000) for n, rid in enumerate(self.ok_readings)]
        first.append(self._reading(self.dup_reading, "s-dup", "METHANE", "PERCENT_VOL", 0.2,
                                   t0))
        ramp = [0.3, 0.6, 0.9, 1.2, (self.alarm_l2 + 0.05)]
        first += [self._reading(f"{p}r-alarm-{n}", "s-alarm", "METHANE", "PERCENT_VOL", v,
                                t0 + n * 1000) for n, v in enumerate(ramp)]
        first += [self._reading(f"{p}r-flat-{n}", "s-flat", "FLAMMABLE_GAS", "PERCENT_LEL",
                                12.5, t0 + n * 500) for n in range(self.flat_count)]
        first.append(self._reading(self.bad_reading, "s-ok", "TEMPERATURE", "CELSIUS", 5000.0,
                                   t0 + 9000))
        second = [self._reading(self.dup_reading, "s-dup", "METHANE", "PERCENT_VOL", 0.2, t0),
                  self._reading(f"{p}r-dup-2", "s-dup", "METHANE", "PERCENT_VOL", 0.21,
                                t0 + 1000)]
        envelope = {"gateway_id": i["gw-main"], "enterprise_id": i["ent"], "sequence": 1,
                    "sent_at": now - 2000, "readings": first}
        items: list[Item] = [
            (TELEMETRY.input.name, i["gw-main"], envelope),
            (TELEMETRY.input.name, i["gw-main"], dict(envelope, sequence=2, sent_at=now - 1000,
                                             readings=second)),
            (TELEMETRY.input.name, i["gw-main"], b"this is not Avro: canary invalid message"),
        ]
        items += [self.heartbeat(n, now - (4 - n) * 1000) for n in range(5)]
        items += [(INCIDENT.input.name, i["inc-late"], self._report(
                      "inc-late", "rep-late", occurred=now - self.initial_deadline_ms
                      - self.late_by_ms, deaths=0)),
                  (INCIDENT.input.name, i["inc-conceal"], self._report(
                      "inc-conceal", "rep-conceal", occurred=now - 600_000, deaths=5)),
                  (INCIDENT.input.name, i["inc-ok"], self._report(
                      "inc-ok", "rep-ok", occurred=now - 600_000, deaths=0))]
        return items

    @staticmethod
    def expected_rows() -> dict[str, int]:
        """ClickHouse table -> the least number of canary rows the sink must have written."""
        tables = {TELEMETRY.table: 1, INCIDENT.table: 3, ALERTS.table: 5,
                  DEAD_LETTERS.table: 2, GATEWAY_STATUS.table: 2}
        return {table.name: n for table, n in tables.items() if table is not None}

    def heartbeat(self, sequence: int, sent_at: int) -> Item:
        i = self.ids
        return (HEARTBEAT.input.name, i["gw-silent"], {
            "gateway_id": i["gw-silent"], "enterprise_id": i["ent"], "sent_at": sent_at,
            "sequence": sequence, "interval_s": 1, "firmware": "canary"})

    def _report(self, incident: str, report: str, occurred: int, deaths: int,
                stage: str = "INITIAL", reported: int | None = None) -> dict[str, Any]:
        i = self.ids
        return {"incident_id": i[incident], "report_id": i.get(report, report), "stage": stage,
                "kind": "PRODUCTION_SAFETY", "industry": "canary", "disaster_category": None,
                "occurred_at": occurred, "reported_at": reported or self.now_ms,
                "reporting_unit": "ebi canary", "reporting_level": "ENTERPRISE",
                "region_code": "110101", "declared_level": "ORDINARY", "deaths": deaths,
                "missing": 0, "serious_injuries": 0, "direct_economic_loss_cny": 0.0,
                "affected_population": 0, "description": "synthetic canary report",
                "publication": "INTERNAL"}

    def cleanup(self, now_ms: int) -> list[Item]:
        """FINAL reports close the canary incidents' deadline clocks; tombstones remove the
        registrations (the worker then stops watching the canary gateways)."""
        items: list[Item] = []
        for incident, deaths in (("inc-late", 0), ("inc-conceal", 5), ("inc-ok", 0)):
            final = self._report(incident, f"canary-{self.run}-{incident}-final",
                                 occurred=now_ms - 600_000, deaths=deaths, stage="FINAL",
                                 reported=now_ms)
            final["declared_level"] = "RELATIVELY_SERIOUS" if deaths else "ORDINARY"
            items.append((INCIDENT.input.name, self.ids[incident], final))
        items += [(SENSOR.input.name, self.ids[s], None)
                  for s in ("s-ok", "s-alarm", "s-flat", "s-dup")]
        items.append((ENTERPRISE.input.name, self.ids["ent"], None))
        return items
