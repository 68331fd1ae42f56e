"""The reporting rules of docs/regional-systems.md, one test (or a few) per rule: disaster
grading, escalation, the report chain, which time counts, the clocks (daily zero report,
final report, escalation, the end of follow-ups), the supplementary window, expiry and
next_due, and times in messages."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from schemas.records import CREATE_TIME, LOG_APPEND_TIME, Source
from streams.metrics import Metrics
from streams.policy import Policy
from streams.processors.base import DictStore
from streams.processors.common import Outputs
from streams.processors.context import ProcessorContext
from streams.processors.incidents import IncidentClock, IncidentProcessor, complete
from streams.processors.incidents.grading import implied_response
from tests.unit.streams.processors.conftest import T0, encodes, value_of

H = 3_600_000
D = 24 * H
CST = timezone(timedelta(hours=8))


def cst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=CST).timestamp() * 1000)


def report(rid: str, stage: str = "INITIAL", reported: int = T0, occurred: int | None = None,
           level: str = "ORDINARY", deaths: int = 0, incident: str = "inc-1",
           kind: str = "PRODUCTION_SAFETY", at: str = "COUNTY", **extra: Any) -> dict[str, Any]:
    rec = {"incident_id": incident, "report_id": rid, "stage": stage, "kind": kind,
           "industry": "coal mining" if kind == "PRODUCTION_SAFETY" else None,
           "disaster_category": "GEOLOGICAL" if kind == "NATURAL_DISASTER" else None,
           "occurred_at": reported - H // 2 if occurred is None else occurred,
           "reported_at": reported, "reporting_unit": f"{at.lower()} bureau",
           "reporting_level": at, "region_code": "110101", "declared_level": level,
           "deaths": deaths, "missing": 0, "serious_injuries": 0,
           "direct_economic_loss_cny": 0.0, "affected_population": 0, "description": "",
           "publication": "INTERNAL", "relocated_or_assisted": 0, "houses_collapsed_rooms": 0,
           "houses_collapsed_households": 0, "drought_assisted_population": 0,
           "farming_population": 0, "declared_response": None, "stable": False}
    rec.update(extra)
    return rec


def disaster(rid: str, stage: str = "INITIAL", **kw: Any) -> dict[str, Any]:
    return report(rid, stage, kind="NATURAL_DISASTER", **kw)


def major(rid: str, stage: str = "INITIAL", **kw: Any) -> dict[str, Any]:
    """A disaster at response Level IV (150,000 people relocated), declared as such."""
    return disaster(rid, stage, relocated_or_assisted=150_000, level="ORDINARY", **kw)


class Chain:
    """One incident's reports through one processor; each received (broker time) a second
    after it was filed unless told otherwise."""

    def __init__(self, ctx: ProcessorContext) -> None:
        self.proc = IncidentProcessor(ctx)
        self.state: Any = None
        self.offset = 0
        self.alerts: list[dict[str, Any]] = []

    def send(self, rep: dict[str, Any], received: int | None = None,
             ts_type: str = LOG_APPEND_TIME, now: int | None = None) -> Outputs:
        at = rep["reported_at"] + 1000 if received is None else received
        out, state = self.proc.process(rep, Source("ebi.incidents", 0, self.offset, 3, at,
                                                   ts_type), b"k", b"raw", self.state,
                                       at if now is None else now)
        self.offset += 1
        self.state = state if state is not None else self.state
        self.alerts += out.alerts
        if out.clean is not None:
            encodes("EnrichedIncidentReport", out.clean)
        return out

    def clock(self, now: int) -> list[str]:
        out = self.proc.check_clock("inc-1", self.state, now)
        self.alerts += out.alerts
        return [a["alert_type"] for a in out.alerts]


def flags(out: Outputs) -> list[str]:
    assert out.clean is not None, out.dead_letters
    return list(out.clean["flags"])


def types(out: Outputs) -> list[str]:
    return [a["alert_type"] for a in out.alerts]


@pytest.fixture
def chain(ctx: ProcessorContext) -> Chain:
    return Chain(ctx)


@pytest.fixture(autouse=True)
def _no_epoch_millis_in_messages(request: pytest.FixtureRequest) -> Any:
    """Every alert a test raises gives its times as people read them."""
    yield
    chain = request.node.funcargs.get("chain")
    for alert in getattr(chain, "alerts", []):
        assert not re.search(r"\d{11,}", alert["message"]), alert["message"]


# -- 1. natural disasters are graded by the relief plan, like with like -------------------

def test_a_landslide_with_12_dead_is_not_graded_by_decree_493(chain: Chain) -> None:
    out = chain.send(disaster("r1", deaths=12))          # declared ORDINARY: Level IV or less
    assert flags(out) == ["ESCALATION_REQUIRED"]        # escalation, not concealment
    assert out.clean is not None
    assert out.clean["implied_response"] == "NONE" and out.clean["implied_level"] == "ORDINARY"


def test_disaster_concealment_compares_response_levels(chain: Chain) -> None:
    out = chain.send(disaster("r1", deaths=30, missing=25, declared_response="LEVEL_IV",
                              at="PROVINCE"))
    assert flags(out) == ["SUSPECTED_CONCEALMENT"]
    [alert] = out.alerts
    assert alert["severity"] == "CRITICAL" and "LEVEL_III" in alert["message"]
    assert (alert["value"], alert["threshold"]) == (1.0, 2.0)
    assert out.clean is not None and out.clean["implied_response"] == "LEVEL_III"
    assert out.clean["implied_level"] == "RELATIVELY_SERIOUS"


def test_a_disaster_without_declared_response_declares_its_level(ctx: ProcessorContext) -> None:
    serious = Chain(ctx).send(disaster("r1", deaths=30, missing=25, level="SERIOUS",
                                       at="PROVINCE"))
    assert flags(serious) == []                                   # SERIOUS stands for II
    ordinary = Chain(ctx).send(disaster("r1", deaths=30, missing=25, at="PROVINCE"))
    assert flags(ordinary) == ["SUSPECTED_CONCEALMENT"]           # ORDINARY: IV < III


@pytest.mark.parametrize(("figures", "level"), [
    ({"deaths": 19}, "NONE"),
    ({"deaths": 10, "missing": 10}, "LEVEL_IV"),
    ({"deaths": 150, "missing": 60}, "LEVEL_I"),
    ({"relocated_or_assisted": 150_000}, "LEVEL_IV"),
    ({"relocated_or_assisted": 1_000_000}, "LEVEL_II"),
    ({"houses_collapsed_rooms": 100_000}, "LEVEL_III"),
    ({"houses_collapsed_households": 35_000}, "LEVEL_III"),
    ({"drought_assisted_population": 1_200_000}, "LEVEL_IV"),
    ({"drought_assisted_population": 900_000, "farming_population": 4_000_000}, "LEVEL_III"),
    ({"drought_assisted_population": 900_000}, "NONE"),
])
def test_response_levels_of_the_relief_plan(policy: Policy, figures: dict[str, int],
                                            level: str) -> None:
    assert implied_response(figures, policy.reporting.response) == level


def test_accidents_keep_decree_493(chain: Chain) -> None:
    out = chain.send(report("r1", deaths=4))
    assert flags(out) == ["SUSPECTED_CONCEALMENT"] and out.clean is not None
    assert out.clean["implied_level"] == "RELATIVELY_SERIOUS"
    assert out.clean["implied_response"] is None


# -- 2. escalation -------------------------------------------------------------------------

def test_a_county_report_of_a_major_disaster_requires_escalation(chain: Chain) -> None:
    out = chain.send(disaster("r1", deaths=8, missing=3, reported=T0))
    assert flags(out) == ["ESCALATION_REQUIRED"]
    [alert] = out.alerts
    assert alert["value"] == 11 and alert["threshold"] == 10
    due = chain.state["escalation_due"]
    assert due == T0 + 1000 + 2 * H                     # from its filing (receipt), 2 h
    assert chain.clock(due) == []
    assert chain.clock(due + 1) == ["ESCALATION_OVERDUE"]
    assert chain.clock(due + H) == []                   # once
    assert chain.proc.overdue(chain.state, due + 1)
    again = chain.send(disaster("r2", "FOLLOW_UP", deaths=9, missing=3, reported=T0 + 3 * H))
    assert "ESCALATION_REQUIRED" not in flags(again)    # required once
    chain.send(disaster("r3", "INITIAL", deaths=9, missing=3, reported=T0 + 4 * H,
                        at="PROVINCE"))
    assert chain.state["escalation_due"] == 0           # the province has it


def test_escalation_reported_in_time_raises_no_overdue(chain: Chain) -> None:
    chain.send(disaster("r1", deaths=12, reported=T0))
    chain.send(disaster("r2", deaths=12, reported=T0 + H, at="PROVINCE"))
    assert chain.state["escalation_due"] == 0
    assert "ESCALATION_OVERDUE" not in chain.clock(T0 + 5 * H)


@pytest.mark.parametrize("figures", [{"houses_collapsed_rooms": 1200},
                                     {"houses_collapsed_households": 300}])
def test_massive_house_collapse_requires_escalation(chain: Chain,
                                                    figures: dict[str, int]) -> None:
    assert "ESCALATION_REQUIRED" in flags(chain.send(disaster("r1", **figures)))


def test_no_escalation_when_the_province_reports_or_for_accidents(ctx: ProcessorContext) -> None:
    assert "ESCALATION_REQUIRED" not in flags(Chain(ctx).send(disaster("r1", deaths=12,
                                                                       at="PROVINCE")))
    assert "ESCALATION_REQUIRED" not in flags(Chain(ctx).send(report("r1", deaths=12,
                                                                     level="SERIOUS")))


# -- 3. the chain: a second INITIAL, reports after the FINAL -----------------------------

def test_a_second_initial_from_the_same_level_is_flagged(chain: Chain) -> None:
    chain.send(report("r1"))
    out = chain.send(report("r2", reported=T0 + H // 4))
    assert "REPEATED_INITIAL" in flags(out) and "REPEATED_INITIAL" in types(out)


def test_each_level_forwards_its_own_initial(chain: Chain) -> None:
    chain.send(report("r1"))
    assert flags(chain.send(report("r2", reported=T0 + H, at="CITY"))) == []


def test_a_follow_up_after_the_final_is_flagged_and_does_not_reopen(chain: Chain) -> None:
    chain.send(report("r1"))
    chain.send(report("r2", "FINAL", reported=T0 + 5 * H))
    out = chain.send(report("r3", "FOLLOW_UP", reported=T0 + 30 * H, deaths=1, level="ORDINARY"))
    assert flags(out) == ["REPORT_AFTER_FINAL"] and out.clean is not None
    assert out.clean["deadline_at"] is None
    assert chain.state["closed"] and chain.state["next_due_at"] == 0
    assert chain.state["figures"]["deaths"] == 1         # its figures are the latest
    assert chain.clock(T0 + 100 * H) == []
    again = chain.send(report("r4", "INITIAL", reported=T0 + 31 * H, at="CITY", deaths=1))
    assert flags(again) == ["REPORT_AFTER_FINAL"]


def test_a_supplementary_after_the_final_is_expected(chain: Chain) -> None:
    chain.send(report("r1"))
    chain.send(report("r2", "FINAL", reported=T0 + 5 * H))
    assert flags(chain.send(report("r3", "SUPPLEMENTARY", reported=T0 + 3 * D, deaths=1,
                                   occurred=T0 - H // 2))) == []


# -- 4. which time counts -------------------------------------------------------------------

def test_lateness_counts_at_receipt_when_later(chain: Chain) -> None:
    # filed "on time" at T0 (due T0 + 2.5 h for a county: occurred T0 - 0.5 h + 3 h) but
    # received by the platform at T0 + 4 h
    out = chain.send(report("r1", reported=T0), received=T0 + 4 * H)
    assert out.clean is not None
    assert out.clean["late_by_ms"] == int(1.5 * H) and out.clean["receipt_at"] == T0 + 4 * H
    assert out.clean["receipt_clock"] == "BROKER"
    assert flags(out) == ["LATE", "RECEIVED_LATE"]
    [late, received] = out.alerts
    assert "CST (UTC+8)" in late["message"] and "after its deadline" in late["message"]
    assert received["value"] == 4 * 3600 and received["threshold"] == 900


def test_received_late_only_past_the_policy(chain: Chain) -> None:
    assert "RECEIVED_LATE" not in flags(chain.send(report("r1"), received=T0 + 14 * 60_000))
    assert "RECEIVED_LATE" in flags(chain.send(report("r2", "FOLLOW_UP"),
                                               received=T0 + 16 * 60_000))


def test_a_senders_clock_ahead_counts_its_own_time(chain: Chain) -> None:
    out = chain.send(report("r1", reported=T0 + 3 * H, occurred=T0 - H // 2),
                     received=T0 + 3 * H - 60_000)
    assert out.clean is not None and out.clean["late_by_ms"] == H // 2


def test_a_create_time_timestamp_is_not_the_receipt(chain: Chain) -> None:
    """On a topic that still stamps the sender's CreateTime, the worker's clock counts."""
    out = chain.send(report("r1", reported=T0), received=T0, ts_type=CREATE_TIME,
                     now=T0 + 5 * H)
    assert out.clean is not None and out.clean["receipt_clock"] == "WORKER"
    assert out.clean["receipt_at"] == T0 + 5 * H and out.clean["late_by_ms"] == int(2.5 * H)


def test_telemetry_lateness_counts_from_the_same_receipt(ctx: ProcessorContext) -> None:
    from streams.processors.telemetry import TelemetryProcessor

    env = {"gateway_id": "gw-1", "enterprise_id": "ent-1", "sequence": 1, "sent_at": T0,
           "readings": [{"reading_id": "x1", "sensor_id": "s-1", "metric": "METHANE",
                         "value": 0.2, "unit": "PERCENT_VOL", "quality": "GOOD",
                         "event_time": T0}]}
    proc = TelemetryProcessor(ctx)
    # the gateway stamped CreateTime T0; the worker reads it 10 min later
    out, _ = proc.process(env, Source("ebi.telemetry", 0, 1, 1, T0, CREATE_TIME), b"gw-1",
                          b"raw", None, T0 + 10 * 60_000)
    assert out.clean is not None and out.clean["flags"][0]["late"] is True
    ctx2 = ProcessorContext(ctx.policy, ctx.reference, Metrics.create(_registry()))
    out, _ = TelemetryProcessor(ctx2).process(
        env, Source("ebi.telemetry", 0, 1, 1, T0 + 1000, LOG_APPEND_TIME), b"gw-1", b"raw",
        None, T0 + 10 * 60_000)
    assert out.clean is not None and out.clean["flags"] == []


def _registry() -> Any:
    from prometheus_client import CollectorRegistry

    return CollectorRegistry()


# -- 5. clocks that fire when nothing arrives -------------------------------------------

def test_the_daily_zero_report_of_a_major_disaster(chain: Chain) -> None:
    first = cst(2026, 12, 1, 14)                         # Tuesday 14:00 CST
    out = chain.send(major("r1", reported=first))
    assert out.clean is not None and out.clean["implied_response"] == "LEVEL_IV"
    due = cst(2026, 12, 2, 9)
    assert chain.state["daily"] == {"COUNTY": [due, 0]}
    assert chain.state["next_due_at"] == 0               # it replaces the rolling follow-up
    assert chain.proc.clocks.next_due(chain.state) == due + 1
    assert chain.clock(due) == []
    assert chain.clock(due + 1) == ["DAILY_REPORT_OVERDUE"]
    message = chain.alerts[-1]["message"]
    assert "due at 2026-12-02 09:00 CST (UTC+8)" in message
    assert "figures up to 2026-12-02 00:00 CST (UTC+8)" in message
    assert chain.clock(due + H) == []
    assert chain.proc.overdue(chain.state, due + 1)
    late = chain.send(major("r2", "FOLLOW_UP", reported=cst(2026, 12, 2, 10)))
    assert late.clean is not None and late.clean["deadline_at"] == due
    assert "LATE" in flags(late)
    assert chain.state["daily"]["COUNTY"] == [cst(2026, 12, 3, 9), 0]
    on_time = chain.send(major("r3", "FOLLOW_UP", reported=cst(2026, 12, 3, 8)))
    assert flags(on_time) == []
    # the city joins: its own daily report, due at 10:00
    chain.send(major("r4", "INITIAL", reported=cst(2026, 12, 3, 11), at="CITY"))
    assert chain.state["daily"]["CITY"] == [cst(2026, 12, 4, 10), 0]
    # nobody reports for three days: one alert per level and missed day
    missed = chain.clock(cst(2026, 12, 6, 11))
    assert missed == ["DAILY_REPORT_OVERDUE"] * 6


def test_the_zero_report_day_is_in_local_time(ctx: ProcessorContext) -> None:
    # 23:30 CST is 15:30 UTC: the next day's report is due at 09:00 CST
    before, after = Chain(ctx), Chain(ctx)
    before.send(major("r1", reported=cst(2026, 12, 1, 23, 30)))
    assert before.state["daily"]["COUNTY"][0] == cst(2026, 12, 2, 9)
    # 00:30 CST (16:30 UTC the day before) is in the next reporting day already
    after.send(major("r1", reported=cst(2026, 12, 2, 0, 30)))
    assert after.state["daily"]["COUNTY"][0] == cst(2026, 12, 3, 9)


def test_a_stable_disaster_owes_its_final_report_in_working_days(chain: Chain) -> None:
    chain.send(major("r1", reported=cst(2026, 12, 3, 8)))
    chain.send(major("r2", "INITIAL", reported=cst(2026, 12, 3, 9), at="CITY"))
    chain.send(major("r3", "FOLLOW_UP", stable=True, at="CITY",
                        reported=cst(2026, 12, 4, 15)))  # Friday
    due = cst(2026, 12, 10)            # the city's 3 working days: Mon 7, Tue 8, Wed 9
    assert (chain.state["next_due_stage"], chain.state["next_due_at"]) == ("FINAL", due)
    assert chain.state["daily"] == {}
    assert chain.clock(due - 30 * 60_000) == ["REPORT_DUE_SOON"]
    assert chain.clock(due + 1) == ["REPORT_OVERDUE"]
    assert "FINAL report" in chain.alerts[-1]["message"]
    final = chain.send(major("r4", "FINAL", reported=due + H, at="CITY"))
    assert final.clean is not None and final.clean["deadline_at"] == due
    assert final.clean["late_by_ms"] == H + 1000 and chain.state["closed"]


def test_holidays_and_make_up_days_count(ctx: ProcessorContext) -> None:
    rules = ctx.policy.reporting
    final = replace(rules.final_report, holidays=frozenset({date(2026, 12, 7)}),
                    workdays=frozenset({date(2026, 12, 5)}))
    policy = replace(ctx.policy, reporting=replace(rules, final_report=final))
    chain = Chain(ProcessorContext(policy, ctx.reference, ctx.metrics))
    chain.send(disaster("r1", deaths=1, reported=cst(2026, 12, 4, 15), stable=True))
    # the county's 2 working days after Friday: Saturday 5 (made working), Tuesday 8
    assert chain.state["next_due_at"] == cst(2026, 12, 9)


def test_a_stable_accident_ends_its_follow_ups(chain: Chain) -> None:
    chain.send(report("r1"))
    due = chain.state["next_due_at"]
    assert due and chain.clock(due + 1) == ["REPORT_OVERDUE"]
    chain.send(report("r2", "FOLLOW_UP", reported=due + H, stable=True))
    assert chain.state["next_due_at"] == 0 and chain.state["stable"]
    assert chain.clock(due + 10 * D) == []
    assert not chain.proc.overdue(chain.state, due + 10 * D)
    assert chain.proc.expired(chain.state, due + H + 1000 + 30 * D + 1)
    # the situation changes again: follow-ups resume
    chain.send(report("r3", "FOLLOW_UP", reported=due + 2 * H, deaths=1))
    assert not chain.state["stable"] and chain.state["next_due_at"] == due + 2 * H + 1000 + D


def test_a_report_after_the_supplementary_window_changing_casualties(ctx: ProcessorContext
                                                                     ) -> None:
    road = Chain(ctx)
    road.send(report("r1", occurred=T0 - H // 2, industry="road traffic", deaths=1))
    out = road.send(report("r2", "SUPPLEMENTARY", reported=T0 + 8 * D, occurred=T0 - H // 2,
                           industry="road traffic", deaths=2))
    assert flags(out) == ["LATE", "LATE_CASUALTY_CHANGE"]
    assert "deaths 1 -> 2" in out.alerts[-1]["message"]
    coal = Chain(ctx)
    coal.send(report("r1", occurred=T0 - H // 2, deaths=1))
    assert flags(coal.send(report("r2", "SUPPLEMENTARY", reported=T0 + 8 * D,
                                  occurred=T0 - H // 2, deaths=2))) == []
    late = coal.send(report("r3", "FOLLOW_UP", reported=T0 + 31 * D, occurred=T0 - H // 2,
                            deaths=3))
    assert "LATE_CASUALTY_CHANGE" in flags(late)
    same = coal.send(report("r4", "FOLLOW_UP", reported=T0 + 32 * D, occurred=T0 - H // 2,
                            deaths=3))
    assert "LATE_CASUALTY_CHANGE" not in flags(same)


# -- 10. state that ends, next_due, gauges -------------------------------------------------

def test_next_due_follows_the_clock(chain: Chain) -> None:
    clocks = chain.proc.clocks
    chain.send(report("r1"))
    due = chain.state["next_due_at"]
    assert clocks.next_due(chain.state) == due - H        # the due-soon warning
    chain.clock(due - H)
    assert clocks.next_due(chain.state) == due + 1
    chain.clock(due + 1)
    assert clocks.next_due(chain.state) is None           # nothing until a report comes
    chain.send(report("r2", "FINAL", reported=due + H))
    assert clocks.next_due(chain.state) == due + H + 1000 + 30 * D + 1     # expiry


def test_the_tick_expires_ended_incidents_past_the_horizon(ctx: ProcessorContext) -> None:
    proc, clock = IncidentProcessor(ctx), IncidentClock(ctx)
    store = DictStore()
    for incident, stages in (("closed", ("INITIAL", "FINAL")), ("open", ("INITIAL",))):
        state = None
        for i, stage in enumerate(stages):
            rep = report(f"{incident}-{i}", stage, incident=incident, reported=T0 + i * H)
            _, state = proc.process(rep, Source("ebi.incidents", 0, len(store.data) * 10 + i,
                                                3, T0 + i * H, LOG_APPEND_TIME),
                                    b"", b"", state, T0 + i * H)
        store.put(incident.encode(), state)
    assert value_of(ctx.metrics.open_incidents) == 0    # no tick yet ...
    expiry = clock.next_due(store.get(b"closed"))
    assert expiry == T0 + H + 30 * D + 1
    _, changed = clock.tick(store, expiry - 1, lambda p: True)
    assert b"closed" in store.data and b"closed" not in changed
    assert value_of(ctx.metrics.open_incidents) == 1 and value_of(ctx.metrics.reports_overdue) == 1
    _, changed = clock.tick(store, expiry, lambda p: True)
    assert b"closed" not in store.data and b"closed" in changed
    assert b"open" in store.data                          # an open incident never expires


def test_the_canarys_incidents_are_not_in_the_gauges(ctx: ProcessorContext) -> None:
    proc, clock = IncidentProcessor(ctx), IncidentClock(ctx)
    store = DictStore()
    for n, incident in enumerate(("canary-run7-inc-1", "inc-real")):
        rep = report(f"{incident}-0", "INITIAL", incident=incident, reported=T0)
        _, state = proc.process(rep, Source("ebi.incidents", 0, n, 3, T0, LOG_APPEND_TIME),
                                b"", b"", None, T0)
        store.put(incident.encode(), state)
    clock.tick(store, T0 + 30 * D, lambda p: True)
    assert value_of(ctx.metrics.open_incidents) == 1 and value_of(ctx.metrics.reports_overdue) == 1


class _DueOnly(DictStore):
    """A store offering the tick only some keys (the worker's due index)."""

    def __init__(self, data: dict[bytes, Any], due: list[bytes]) -> None:
        super().__init__()
        self.data, self.due = data, due

    def owned_keys(self) -> Any:
        return iter(self.due)


def test_gauges_do_not_need_every_key(ctx: ProcessorContext) -> None:
    proc, clock = IncidentProcessor(ctx), IncidentClock(ctx)
    data = {}
    for n in range(3):
        _, state = proc.process(report(f"r{n}", incident=f"i{n}"),
                                Source("ebi.incidents", 0, n, 3, T0, LOG_APPEND_TIME), b"",
                                b"", None, T0)
        data[f"i{n}".encode()] = state
    clock.tick(_DueOnly(data, []), T0 + 2 * D, lambda p: True)
    assert value_of(ctx.metrics.open_incidents) == 3
    assert value_of(ctx.metrics.reports_overdue) == 3
    out, changed = clock.tick(_DueOnly(data, [b"i0"]), T0 + 2 * D, lambda p: True)
    assert [a["alert_type"] for a in out.alerts] == ["REPORT_OVERDUE"] and changed == [b"i0"]


def test_a_state_written_before_the_reporting_rules_works(chain: Chain) -> None:
    chain.send(report("r1"))
    old = {k: v for k, v in chain.state.items() if k in (
        "reports", "stages", "figures", "last_reported_at", "kind", "level", "reporting_level",
        "industry", "region_code", "next_due_at", "next_due_stage", "clock_alerts", "closed",
        "applied")}
    old["figures"] = {k: v for k, v in old["figures"].items() if k in (
        "deaths", "missing", "serious_injuries", "direct_economic_loss_cny",
        "affected_population")}
    state = complete(dict(old))
    assert state["last_at"] == chain.state["last_reported_at"]
    assert state["initial_levels"] == ["COUNTY"] and state["daily"] == {}
    chain.state = old
    assert "REPEATED_INITIAL" in flags(chain.send(report("r2", reported=T0 + 60_000)))
