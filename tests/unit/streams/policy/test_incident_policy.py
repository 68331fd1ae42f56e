"""The reporting rules' policy sections: bundled defaults with sources, strict parsing."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from importlib import resources
from typing import Any

import pytest

from streams.localtime import Zone
from streams.policy import PolicyError, load_policy, parse_policy

SECTIONS = ("receipt", "time_zone", "escalation", "zero_report", "final_report",
            "supplementary")


def bundled() -> dict[str, Any]:
    return tomllib.loads(resources.files("streams.policy").joinpath("default.toml")
                         .read_text("utf-8"))


def test_every_rule_names_its_source() -> None:
    data = bundled()
    for name in SECTIONS:
        assert data[name]["source"], name
    assert all(row["source"] for row in data["disaster_response"])


def test_bundled_defaults() -> None:
    policy = load_policy()
    rules = policy.reporting
    assert policy.zone == Zone("CST", 480)
    assert [r.level for r in rules.response] == ["LEVEL_I", "LEVEL_II", "LEVEL_III", "LEVEL_IV"]
    assert rules.response[0].dead_missing == 200 and rules.response[-1].dead_missing == 20
    assert rules.escalation.dead_missing == 10 and rules.escalation.report_to == "PROVINCE"
    assert rules.zero_report.due == {"COUNTY": timedelta(hours=9),
                                     "CITY": timedelta(hours=10),
                                     "PROVINCE": timedelta(hours=12)}
    assert rules.final_report.due["COUNTY"].working_days == 2
    assert rules.final_report.due["PROVINCE"].working_days == 5
    assert rules.receipt.late_after == timedelta(minutes=15)


def test_a_policy_without_the_sections_gets_the_bundled_ones() -> None:
    policy = parse_policy({})
    assert policy.reporting == load_policy().reporting and policy.zone.name == "CST"


def _with(section: str, change: Any) -> dict[str, Any]:
    data = bundled()
    change(data[section])
    return data


@pytest.mark.parametrize(("data", "message"), [
    (_with("escalation", lambda t: t.update(dead_or_missing=10)),
     r"escalation: unknown key\(s\) dead_or_missing"),
    (_with("zero_report", lambda t: t.pop("day")), r"zero_report: missing key\(s\) day"),
    (_with("zero_report", lambda t: t.update(county="25h")), "due time within it"),
    (_with("zero_report", lambda t: t.update(from_response="LEVEL_V")), "is not one of"),
    (_with("final_report", lambda t: t.update(county="two days")), "final_report county"),
    (_with("final_report", lambda t: t.update(holidays=["2026-13-01"])), "not a date"),
    (_with("time_zone", lambda t: t.update(utc_offset="+25:00")), "time_zone:"),
    (_with("supplementary", lambda t: t.update(casualty_figures=["dead"])), "must name"),
    (_with("disaster_response", lambda rows: rows.reverse()), "highest level down"),
    (_with("disaster_response", lambda rows: rows[0].update(dead_missing=-1)),
     "not a count"),
    (_with("disaster_response", lambda rows: rows[0].update(drought_assisted_share=30)),
     "not a share"),
])
def test_malformed_sections_are_named(data: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(data)


def test_durations_and_working_days_for_the_final_report() -> None:
    data = _with("final_report", lambda t: t.update(county="45s"))
    due = parse_policy(data).reporting.final_report.due["COUNTY"]
    assert due.working_days is None and due.within == timedelta(seconds=45)
