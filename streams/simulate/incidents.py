"""Incident report chains from regional systems, and hidden-danger records from enterprises.

Clean chains: the initial report within its deadline (10-60 % of it), declared level equal
to the level the figures imply, follow-ups whose figures only grow (by at most +1 death,
+2 serious injuries, x1.3 loss, x1.4 population: never a FIGURE_JUMP or FIGURE_DROP).
Faults: a late INITIAL report (late_by_ms exact against the policy rule, which starts at
"occurred"; the worker measures at the later of reported_at and the broker's receipt, so
it may add the transit time), concealment (declared one level below the implied level on an
accident's INITIAL report), a figure jump on one follow-up, duplicate re-sends, and invalid
stand-alone reports.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from streams.policy import LEVELS, Policy
from streams.records.rules import implied_level
from streams.simulate.topology import REGIONS

DISASTERS = ("FLOOD_DROUGHT", "TYPHOON", "WIND_HAIL", "EARTHQUAKE", "GEOLOGICAL",
             "FOREST_GRASSLAND_FIRE")
INDUSTRIES = ("coal mining", "hazardous chemicals", "metallurgy", "construction",
              "road traffic", "fire")


@dataclass
class Chain:
    base: dict[str, Any]                 # the INITIAL report
    followups_left: int
    next_at_ms: int
    jump_at: int | None                  # follow-up number that jumps, or None
    number: int = 0
    truth: list[dict[str, Any]] = field(default_factory=list)


class IncidentSource:
    """Due reports at a given simulated time; see the module docstring."""

    def __init__(self, rng: random.Random, policy: Policy, run_id: str) -> None:
        self.rng = rng
        self.policy = policy
        self.run_id = run_id
        self.chains: list[Chain] = []
        self.count = 0

    def _id(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}-{self.run_id}-{self.count:06d}"

    def figures(self, conceal: bool) -> dict[str, Any]:
        rng = self.rng
        if conceal:   # figures that imply at least RELATIVELY_SERIOUS
            deaths, injuries = rng.randint(3, 12), rng.randint(0, 30)
        else:
            deaths = rng.choice((0, 0, 0, 1, 1, 2, 3, 4))
            injuries = rng.choice((0, 1, 2, 5, 8, 12))
        return {"deaths": deaths, "missing": rng.choice((0, 0, 1, 2)),
                "serious_injuries": injuries,
                "direct_economic_loss_cny": float(rng.randint(1, 400) * 50_000),
                "affected_population": rng.randint(0, 5000)}

    def new_incident(self, now_ms: int, late: bool, conceal: bool, jump: bool,
                     invalid: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """An INITIAL report emitted at ``now_ms`` (and its chain scheduled), with truth."""
        rng = self.rng
        # concealment is declared below Decree 493's level: an accident's (disasters are
        # graded by the relief plan's response levels, which need far larger figures)
        kind = "PRODUCTION_SAFETY" if rng.random() < 0.6 or conceal else "NATURAL_DISASTER"
        level = rng.choice(("COUNTY", "COUNTY", "CITY", "ENTERPRISE")) \
            if kind == "PRODUCTION_SAFETY" else rng.choice(("COUNTY", "COUNTY", "CITY"))
        figures = self.figures(conceal)
        implied = implied_level(figures["deaths"], figures["serious_injuries"],
                                figures["direct_economic_loss_cny"])
        declared = LEVELS[max(0, LEVELS.index(implied) - 1)] if conceal else implied
        region = rng.choice(REGIONS)
        incident_id, report_id = self._id("inc"), self._id("rep")
        report = {
            "incident_id": incident_id, "report_id": report_id, "stage": "INITIAL",
            "kind": kind,
            "industry": rng.choice(INDUSTRIES) if kind == "PRODUCTION_SAFETY" else None,
            "disaster_category": rng.choice(DISASTERS) if kind == "NATURAL_DISASTER" else None,
            "occurred_at": now_ms, "reported_at": now_ms,
            "reporting_unit": f"{region} emergency bureau" if level != "ENTERPRISE"
            else f"enterprise in {region}", "reporting_level": level, "region_code": region,
            "declared_level": declared, **figures,
            "description": "simulated report", "publication": "INTERNAL",
        }
        rule = self.policy.deadline_rule(kind, "INITIAL", level, declared, report["industry"])
        truth: list[dict[str, Any]] = []
        deadline_ms = int(rule.within.total_seconds() * 1000) if rule else 3_600_000
        if invalid is not None:
            if invalid == "BAD_REGION_CODE":
                report["region_code"] = rng.choice(("990101", "11010", "1101AB", "320005"))
            else:
                report["deaths"] = -1
            report["occurred_at"] = now_ms - deadline_ms // 4
            truth.append({"fault": "invalid", "topic": "incidents", "error_code": invalid,
                          "record_id": report_id})
            return report, truth
        if late and rule is not None and rule.start == "occurred":
            late_by = rng.randint(5 * 60_000, 3 * 3_600_000)
            report["occurred_at"] = now_ms - deadline_ms - late_by
            truth.append({"fault": "late_report", "incident_id": incident_id,
                          "report_id": report_id,
                          "late_by_ms": report["reported_at"] - report["occurred_at"]
                          - deadline_ms})
        else:
            report["occurred_at"] = now_ms - int(deadline_ms * rng.uniform(0.1, 0.6))
        if declared != implied:
            truth.append({"fault": "concealment", "incident_id": incident_id,
                          "report_id": report_id, "declared": declared, "implied": implied})
        followups = rng.randint(1, 3)
        self.chains.append(Chain(dict(report), followups, now_ms + rng.randint(3, 15) * 1000,
                                 rng.randint(1, followups) if jump else None))
        return report, truth

    def due(self, now_ms: int) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Follow-up (and, for disasters, final) reports due by ``now_ms``."""
        out = []
        for chain in [c for c in self.chains if c.next_at_ms <= now_ms]:
            chain.number += 1
            prev = chain.base
            report = dict(prev, report_id=self._id("rep"), reported_at=chain.next_at_ms,
                          stage="FOLLOW_UP")
            rng = self.rng
            report["deaths"] = prev["deaths"] + rng.randint(0, 1)
            report["serious_injuries"] = prev["serious_injuries"] + rng.randint(0, 2)
            report["direct_economic_loss_cny"] = round(
                prev["direct_economic_loss_cny"] * rng.uniform(1.0, 1.3), 2)
            report["affected_population"] = int(prev["affected_population"] *
                                                rng.uniform(1.0, 1.4))
            truth: list[dict[str, Any]] = []
            if chain.number == chain.jump_at:
                prev_inj = prev["serious_injuries"]
                report["serious_injuries"] = max(3 * prev_inj, prev_inj + 10) + rng.randint(1, 5)
                truth.append({"fault": "figure_jump", "incident_id": report["incident_id"],
                              "report_id": report["report_id"]})
            report["declared_level"] = implied_level(report["deaths"],
                                                     report["serious_injuries"],
                                                     report["direct_economic_loss_cny"])
            chain.followups_left -= 1
            if chain.followups_left == 0:
                if report["kind"] == "NATURAL_DISASTER":
                    report["stage"] = "FINAL"
                self.chains.remove(chain)
            chain.base = report
            chain.next_at_ms += rng.randint(3, 15) * 1000
            out.append((report, truth))
        return out


class HazardSource:
    """Hidden dangers: FOUND, then RECTIFYING, then CLOSED, each a new version."""

    def __init__(self, rng: random.Random, run_id: str) -> None:
        self.rng = rng
        self.run_id = run_id
        self.open: list[tuple[int, dict[str, Any]]] = []
        self.count = 0

    def new(self, now_ms: int, enterprise: dict[str, Any], bad_region: bool) -> dict[str, Any]:
        self.count += 1
        rng = self.rng
        hazard = {
            "hazard_id": f"hz-{self.run_id}-{self.count:06d}", "version": 1,
            "enterprise_id": enterprise["enterprise_id"],
            "region_code": "990000" if bad_region else enterprise["region_code"],
            "category": rng.choice(("fire", "electrical", "ventilation", "tailings dam",
                                    "gas detection", "pressure vessel")),
            "level": "MAJOR" if rng.random() < 0.1 else "ORDINARY", "status": "FOUND",
            "found_at": now_ms - rng.randint(0, 3_600_000),
            "rectification_deadline": now_ms + rng.randint(1, 30) * 86_400_000,
            "updated_at": now_ms, "description": "simulated hidden danger",
        }
        if not bad_region:
            self.open.append((now_ms + rng.randint(5, 30) * 1000, hazard))
        return hazard

    def due(self, now_ms: int) -> list[dict[str, Any]]:
        out = []
        for item in [h for h in self.open if h[0] <= now_ms]:
            self.open.remove(item)
            at, prev = item
            status = "RECTIFYING" if prev["status"] == "FOUND" else "CLOSED"
            hazard = dict(prev, version=prev["version"] + 1, status=status, updated_at=at)
            if status == "RECTIFYING":
                self.open.append((at + self.rng.randint(5, 30) * 1000, hazard))
            out.append(hazard)
        return out
