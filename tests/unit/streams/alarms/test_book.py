"""The alarm book through the real pipeline: raised, updated, cleared, acknowledged."""

from __future__ import annotations

import pytest

from streams.alarms.book import home_of
from streams.alarms.commands import acknowledgement
from streams.policy import Policy, load_policy
from tests.unit.streams.alarms.book_kit import MIN, T0, Plant, S, sensor


@pytest.fixture
def policy() -> Policy:
    return load_policy()


@pytest.fixture
def plant(policy: Policy) -> Plant:
    p = Plant(policy)
    p.register(sensor("ch4-1"), sensor("ch4-2"), sensor("t-1", "TEMPERATURE", "CELSIUS"),
               sensor("ch4-bj", gateway="gw-bj", enterprise="ent-2"))
    return p


def test_a_value_over_its_limit_raises_one_alarm_per_level(plant: Plant) -> None:
    plant.readings([("ch4-1", 0.4, T0), ("ch4-1", 1.2, T0 + 10 * S)])
    [raised] = plant.of("ch4-1", "ALARM_L1")
    assert raised["transition"] == "RAISED" and raised["severity"] == "WARNING"
    assert home_of(raised["alarm_id"]) == "gw-1"
    assert (raised["subject_type"], raised["gateway_id"], raised["enterprise_id"],
            raised["region_code"]) == ("sensor", "gw-1", "ent-1", "320506")
    assert (raised["value"], raised["peak"], raised["threshold"], raised["count"]) == (
        1.2, 1.2, 1.0, 1)
    assert raised["raised_at"] == raised["changed_at"] == T0 + 10 * S
    assert "甲烷" in raised["message_zh"] and "一级报警" in raised["message_zh"]
    assert "methane" in raised["message_en"] and "1.2" in raised["message_en"]
    assert plant.of("ch4-1", "ALARM_L2") == []
    plant.readings([("ch4-1", 1.7, T0 + 20 * S)])
    [second] = plant.of("ch4-1", "ALARM_L2")
    assert second["severity"] == "CRITICAL" and second["alarm_id"] != raised["alarm_id"]
    assert plant.transitions("ch4-1", "ALARM_L1") == ["RAISED"]   # peak within update_every


def test_a_value_chattering_at_its_limit_for_ten_minutes_is_one_alarm(plant: Plant) -> None:
    """Just under and just over the limit on every reading (10 s apart) for 10 minutes of
    simulated time: the deadband holds the alarm, which counts each crossing."""
    values = [("ch4-1", 1.03 if i % 2 else 0.97, T0 + i * 10 * S) for i in range(61)]
    for value in values:
        plant.readings([value])
    events = plant.of("ch4-1", "ALARM_L1")
    assert [e["transition"] for e in events].count("RAISED") == 1
    assert "CLEARED" not in {e["transition"] for e in events}
    assert len({e["alarm_id"] for e in events}) == 1
    updates = [e for e in events if e["transition"] == "UPDATED"]
    assert 1 <= len(updates) <= 10           # at most one a minute
    # every upward crossing counted; the latest count waits for the minute, then the clock
    # sends it
    assert plant.book("gw-1")["alarms"]["ALARM_L1|sensor:ch4-1"]["count"] == 30
    assert updates[-1]["count"] < 30
    plant.tick(T0 + 615 * S)
    assert plant.of("ch4-1", "ALARM_L1")[-1]["transition"] == "UPDATED"
    assert plant.of("ch4-1", "ALARM_L1")[-1]["count"] == 30
    # the alerts topic shows the chatter the book absorbs
    crossings = [a for a in plant.alerts if a["alert_type"] == "ALARM_L1"]
    assert len(crossings) == 30
    # under the limit minus the deadband for the off-delay (30 s): cleared, dated then
    for i in range(4):
        plant.readings([("ch4-1", 0.5, T0 + 610 * S + i * 10 * S)])
    cleared = plant.of("ch4-1", "ALARM_L1")[-1]
    assert cleared["transition"] == "CLEARED"
    assert cleared["cleared_at"] == cleared["changed_at"] == T0 + 640 * S
    assert cleared["count"] == 30 and cleared["peak"] == 1.03
    # a new episode is a new alarm
    plant.readings([("ch4-1", 1.1, T0 + 700 * S)])
    assert len({e["alarm_id"] for e in plant.of("ch4-1", "ALARM_L1")}) == 2


def test_an_off_delay_bridges_short_dips_below_the_deadband(plant: Plant) -> None:
    for i in range(30):      # 0.5 for 10 s, then over again: never 30 s under
        plant.readings([("ch4-2", 1.2 if i % 2 else 0.5, T0 + i * 10 * S)])
    assert plant.transitions("ch4-2", "ALARM_L1").count("RAISED") == 1
    assert "CLEARED" not in plant.transitions("ch4-2", "ALARM_L1")


def test_an_on_delay_raises_only_a_lasting_condition(plant: Plant) -> None:
    plant.readings([("t-1", 85.0, T0)])                       # 80 degC limit, 60 s on-delay
    plant.readings([("t-1", 70.0, T0 + 30 * S)])
    assert plant.of("t-1") == [] and plant.book("gw-1") is None
    for i in range(7):
        plant.readings([("t-1", 85.0 + i, T0 + 100 * S + i * 10 * S)])
    [raised] = plant.of("t-1", "ALARM_L1")
    assert raised["raised_at"] == T0 + 160 * S and raised["peak"] == 91.0


def test_readings_that_stop_under_the_limit_are_cleared_by_the_clock(plant: Plant) -> None:
    plant.readings([("ch4-1", 1.2, T0), ("ch4-1", 0.85, T0 + 10 * S)])   # no spike
    assert plant.transitions("ch4-1", "ALARM_L1") == ["RAISED"]
    plant.tick(T0 + 30 * S)          # off-delay not over yet
    assert plant.transitions("ch4-1", "ALARM_L1") == ["RAISED"]
    plant.tick(T0 + 45 * S)
    assert plant.transitions("ch4-1", "ALARM_L1") == ["RAISED", "CLEARED"]
    assert plant.of("ch4-1", "ALARM_L1")[-1]["cleared_at"] == T0 + 40 * S
    assert plant.book("gw-1") is None        # nothing left: the key is deleted


def test_the_gauge_counts_standing_alarms(plant: Plant) -> None:
    plant.readings([("ch4-1", 1.6, T0)])
    plant.readings([("ch4-bj", 1.1, T0 + S)], gateway="gw-bj", enterprise="ent-2")
    plant.tick(T0 + 2 * S)
    gauge = plant.metrics.alarms_active

    def active(kind: str, severity: str, province: str) -> float:
        return float(gauge.labels(kind, severity, province)._value.get())

    assert active("ALARM_L2", "critical", "32") == 1
    assert active("ALARM_L1", "warning", "32") == 1
    assert active("ALARM_L1", "warning", "11") == 1
    plant.readings([("ch4-1", 0.1, T0 + 3 * S), ("ch4-1", 0.1, T0 + 40 * S)])
    plant.tick(T0 + 41 * S)
    assert active("ALARM_L2", "critical", "32") == 0 and active("ALARM_L1", "warning", "11") == 1


def test_a_silent_gateway_is_one_alarm_until_it_is_back_for_the_off_delay(plant: Plant) -> None:
    plant.heartbeat(T0)
    plant.heartbeat(T0 + 10 * S)
    plant.tick(T0 + 60 * S)                   # silent for more than 3 intervals of 10 s
    [raised] = plant.of("gw-1", "GATEWAY_OFFLINE")
    assert raised["transition"] == "RAISED" and raised["gateway_id"] == "gw-1"
    assert home_of(raised["alarm_id"]) == "gw-1" and raised["region_code"] == "320506"
    plant.tick(T0 + 70 * S)                   # the same silence: nothing new
    assert len(plant.of("gw-1", "GATEWAY_OFFLINE")) == 1
    plant.heartbeat(T0 + 90 * S)              # back (GATEWAY_ONLINE is no alarm of its own)
    assert plant.of("gw-1", "GATEWAY_ONLINE") == []
    plant.heartbeat(T0 + 120 * S)             # online for 30 s: the off-delay is 1 min
    assert plant.transitions("gw-1", "GATEWAY_OFFLINE") == ["RAISED"]
    plant.heartbeat(T0 + 150 * S)
    assert plant.transitions("gw-1", "GATEWAY_OFFLINE") == ["RAISED", "CLEARED"]
    assert plant.of("gw-1", "GATEWAY_OFFLINE")[-1]["cleared_at"] == T0 + 150 * S


def test_a_gateway_that_drops_out_again_within_the_off_delay_keeps_its_alarm(
        plant: Plant) -> None:
    plant.heartbeat(T0)
    plant.tick(T0 + 40 * S)
    plant.heartbeat(T0 + 50 * S)              # back ...
    plant.tick(T0 + 100 * S)                  # ... and silent again
    assert plant.transitions("gw-1", "GATEWAY_OFFLINE") == ["RAISED"]
    assert plant.book("gw-1")["alarms"]["GATEWAY_OFFLINE|gateway:gw-1"]["count"] == 2


def report(rid: str, stage: str, reported: int, level: str = "ORDINARY",
           deaths: int = 0) -> dict[str, object]:
    return {"incident_id": "inc-1", "report_id": rid, "stage": stage,
            "kind": "PRODUCTION_SAFETY", "industry": "coal", "disaster_category": None,
            "occurred_at": T0 - 30 * MIN, "reported_at": reported,
            "reporting_unit": "county bureau", "reporting_level": "ENTERPRISE",
            "region_code": "320506", "declared_level": level, "deaths": deaths, "missing": 0,
            "serious_injuries": 0, "direct_economic_loss_cny": 0.0, "affected_population": 0,
            "description": "", "publication": "INTERNAL"}


def test_an_overdue_report_is_an_alarm_until_the_report_is_filed(plant: Plant) -> None:
    plant.feed("incidents", report("rep-1", "INITIAL", T0), "inc-1", T0 + S)
    due = T0 + 24 * 60 * MIN
    plant.tick(due + MIN)
    [raised] = plant.of("inc-1", "REPORT_OVERDUE")
    assert home_of(raised["alarm_id"]) == "inc-1" and raised["region_code"] == "320506"
    assert raised["subject_type"] == "incident" and raised["peak"] is None
    plant.feed("incidents", report("rep-2", "FOLLOW_UP", due + 5 * MIN), "inc-1",
               due + 5 * MIN)
    assert plant.transitions("inc-1", "REPORT_OVERDUE") == ["RAISED", "CLEARED"]
    assert "rep-2" in plant.of("inc-1", "REPORT_OVERDUE")[-1]["message_en"]


def test_concealment_ends_with_a_report_that_declares_the_level(plant: Plant) -> None:
    plant.feed("incidents", report("rep-1", "INITIAL", T0, deaths=12), "inc-1", T0 + S)
    [raised] = plant.of("inc-1", "SUSPECTED_CONCEALMENT")
    assert raised["severity"] == "CRITICAL"
    plant.feed("incidents", report("rep-2", "FOLLOW_UP", T0 + MIN, deaths=12), "inc-1",
               T0 + MIN)        # still declared ORDINARY: the alarm stands, counted
    assert plant.transitions("inc-1", "SUSPECTED_CONCEALMENT") == ["RAISED", "UPDATED"]
    plant.feed("incidents", report("rep-3", "FOLLOW_UP", T0 + 2 * MIN, level="SERIOUS",
                                   deaths=12), "inc-1", T0 + 2 * MIN)
    events = plant.of("inc-1", "SUSPECTED_CONCEALMENT")
    assert [e["transition"] for e in events] == ["RAISED", "UPDATED", "CLEARED"]
    assert events[-1]["count"] == 2


def hazard(version: int, status: str, deadline: int) -> dict[str, object]:
    return {"hazard_id": "hz-1", "version": version, "enterprise_id": "ent-1",
            "region_code": "320506", "category": "fire", "level": "MAJOR", "status": status,
            "found_at": T0 - 10 * MIN, "rectification_deadline": deadline,
            "updated_at": T0 + version * MIN, "description": ""}


def test_an_overdue_hidden_danger_is_an_alarm_until_it_is_closed(plant: Plant) -> None:
    plant.feed("hazards", hazard(1, "FOUND", T0 - MIN), "hz-1", T0 + MIN)
    [raised] = plant.of("hz-1", "HAZARD_OVERDUE")
    assert home_of(raised["alarm_id"]) == "hz-1" and raised["enterprise_id"] == "ent-1"
    plant.feed("hazards", hazard(2, "RECTIFYING", T0 - MIN), "hz-1", T0 + 2 * MIN)
    assert plant.transitions("hz-1", "HAZARD_OVERDUE") == ["RAISED"]
    plant.feed("hazards", hazard(3, "CLOSED", T0 - MIN), "hz-1", T0 + 3 * MIN)
    assert plant.transitions("hz-1", "HAZARD_OVERDUE") == ["RAISED", "CLEARED"]


def test_an_event_without_an_end_clears_once_it_has_not_recurred(plant: Plant) -> None:
    plant.readings([("ch4-2", 0.1, T0), ("ch4-2", 0.8, T0 + 10 * S)])     # a jump: SPIKE
    assert plant.transitions("ch4-2", "SPIKE") == ["RAISED"]
    plant.readings([("ch4-2", 0.1, T0 + 20 * S), ("ch4-2", 0.8, T0 + 5 * MIN)])
    plant.tick(T0 + 15 * MIN)                 # 10 min since the last spike
    assert "CLEARED" not in plant.transitions("ch4-2", "SPIKE")
    plant.tick(T0 + 21 * MIN)
    events = plant.of("ch4-2", "SPIKE")
    assert events[-1]["transition"] == "CLEARED" and events[-1]["count"] == 2
    assert events[-1]["cleared_at"] == T0 + 5 * MIN + 15 * MIN


def test_what_the_clock_changed_is_written_with_the_next_record_of_its_home(
        plant: Plant) -> None:
    plant.readings([("ch4-2", 0.1, T0), ("ch4-2", 0.8, T0 + 10 * S)])     # SPIKE
    assert plant.touched == [("alarms", b"gw-1")]
    plant.readings([("ch4-2", 0.75, T0 + 20 * S)])
    assert plant.touched == []                      # nothing changed: nothing to write
    plant.heartbeat(T0 + 30 * S, interval_s=3600)   # (no gateway offline meanwhile)
    plant.tick(T0 + 20 * MIN)                       # quiet: cleared, the book is empty
    assert plant.transitions("ch4-2", "SPIKE") == ["RAISED", "CLEARED"]
    plant.readings([("ch4-2", 0.7, T0 + 21 * MIN)])  # nothing for the book itself ...
    assert plant.touched == [("alarms", b"gw-1")]   # ... but its deletion is written now
    plant.readings([("ch4-2", 0.7, T0 + 22 * MIN)])
    book = plant.book("gw-1")      # (ch4-1 has been silent 20 min: SENSOR_SILENT stands)
    assert plant.touched == [] and not any(name.startswith("SPIKE|")
                                           for name in (book or {}).get("alarms", {}))


def test_a_flatline_ends_when_the_sensor_moves_again(plant: Plant) -> None:
    for i in range(31):
        plant.readings([("ch4-2", 0.25, T0 + i * 10 * S)])
    assert plant.transitions("ch4-2", "FLATLINE") == ["RAISED"]
    for i in range(4):
        plant.readings([("ch4-2", 0.26 + i / 100, T0 + 320 * S + i * 10 * S)])
    assert plant.transitions("ch4-2", "FLATLINE") == ["RAISED", "CLEARED"]


def test_an_operator_acknowledges_an_alarm_and_later_events_say_so(plant: Plant) -> None:
    plant.readings([("ch4-1", 1.2, T0)])
    alarm = plant.of("ch4-1", "ALARM_L1")[0]["alarm_id"]
    command = acknowledgement(alarm, "王工", "已派人现场处置", T0 + MIN)
    plant.command(command, T0 + MIN)
    acked = plant.of("ch4-1", "ALARM_L1")[-1]
    assert acked["transition"] == "ACKNOWLEDGED"
    assert (acked["acknowledged_by"], acked["note"]) == ("王工", "已派人现场处置")
    assert acked["changed_at"] == T0 + MIN
    plant.command(command, T0 + MIN)          # the same command again (a replay)
    again = plant.of("ch4-1", "ALARM_L1")[-1]
    assert again["event_id"] == acked["event_id"]
    plant.readings([("ch4-1", 0.2, T0 + 2 * MIN), ("ch4-1", 0.2, T0 + 3 * MIN)])
    cleared = plant.of("ch4-1", "ALARM_L1")[-1]
    assert cleared["transition"] == "CLEARED" and cleared["acknowledged_by"] == "王工"
    assert plant.dead_letters == []


def test_a_command_for_an_alarm_that_is_not_active_is_a_dead_letter(plant: Plant) -> None:
    plant.readings([("ch4-1", 1.2, T0), ("ch4-1", 0.2, T0 + MIN), ("ch4-1", 0.2, T0 + 2 * MIN)])
    alarm = plant.of("ch4-1", "ALARM_L1")[0]["alarm_id"]
    assert plant.transitions("ch4-1", "ALARM_L1")[-1] == "CLEARED"
    plant.command(acknowledgement(alarm, "王工", None, T0 + 3 * MIN), T0 + 3 * MIN)
    [dead] = plant.dead_letters
    assert dead["error_code"] == "UNKNOWN_ALARM" and alarm in dead["error_message"]
    wrong = {**acknowledgement(alarm, "王工", None, T0 + 3 * MIN), "home": "gw-9"}
    plant.command(wrong, T0 + 3 * MIN)
    assert plant.dead_letters[-1]["error_code"] == "WRONG_HOME"
    with pytest.raises(ValueError, match="not an alarm id"):
        acknowledgement("no-such-alarm", "王工", None, T0)


def test_processing_again_gives_the_same_alarm_and_event_ids(policy: Policy) -> None:
    def run() -> list[tuple[str, str]]:
        p = Plant(policy)
        p.register(sensor("ch4-1"))
        for i in range(20):
            p.readings([("ch4-1", 1.6 if i % 3 else 0.5, T0 + i * 15 * S)])
        p.tick(T0 + 30 * MIN)
        return [(e["alarm_id"], e["event_id"]) for e in p.events]

    first = run()
    assert first and first == run()
    assert len({event for _, event in first}) == len(first)


def test_canary_data_gives_tagged_alarms(plant: Plant) -> None:
    plant.reference.put_enterprise({"enterprise_id": "canary-r1-ent", "name": "c",
                                    "region_code": "320506", "industry": "canary",
                                    "updated_at": T0}, T0)
    plant.register(sensor("canary-r1-s", gateway="canary-r1-gw", enterprise="canary-r1-ent"))
    plant.readings([("canary-r1-s", 2.0, T0)], gateway="canary-r1-gw", enterprise="canary-r1-ent")
    assert {e["tag"] for e in plant.of("canary-r1-s")} == {"canary-r1"}
