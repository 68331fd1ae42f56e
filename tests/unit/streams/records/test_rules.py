from datetime import UTC, datetime

import pytest

from streams.policy import load_policy
from streams.records.rules import (
    check_enterprise,
    check_hazard,
    check_heartbeat,
    check_incident,
    check_reading,
    check_sensor,
    check_telemetry,
    implied_level,
    region_code_error,
)

NOW = 1_767_225_600_000
POLICY = load_policy()


def reading(**over: object) -> dict:
    return {"reading_id": "r1", "sensor_id": "s1", "metric": "METHANE", "value": 0.3,
            "unit": "PERCENT_VOL", "quality": "GOOD", "event_time": NOW - 1000, **over}


def incident(**over: object) -> dict:
    return {"incident_id": "i", "report_id": "r", "stage": "INITIAL",
            "kind": "PRODUCTION_SAFETY", "occurred_at": NOW - 3_600_000, "reported_at": NOW,
            "region_code": "320505", "declared_level": "ORDINARY", "deaths": 0, "missing": 0,
            "serious_injuries": 0, "direct_economic_loss_cny": 0.0, "affected_population": 0,
            **over}


@pytest.mark.parametrize("code", ["110101", "320505", "510104", "610113", "650102", "320000",
                                  "110000", "429004", "810000"])
def test_valid_region_codes(code: str) -> None:
    assert region_code_error(code) is None


@pytest.mark.parametrize("code", ["11010", "1101011", "990101", "100101", "320005", "1101AB",
                                  "", None, 110101, "１１０１０１"])
def test_invalid_region_codes(code: object) -> None:
    assert region_code_error(code)


@pytest.mark.parametrize(("deaths", "injuries", "loss", "level"), [
    (0, 0, 0, "ORDINARY"), (2, 9, 9_999_999, "ORDINARY"),
    (3, 0, 0, "RELATIVELY_SERIOUS"), (0, 10, 0, "RELATIVELY_SERIOUS"),
    (0, 0, 10_000_000, "RELATIVELY_SERIOUS"), (9, 49, 49_999_999, "RELATIVELY_SERIOUS"),
    (10, 0, 0, "SERIOUS"), (0, 50, 0, "SERIOUS"), (0, 0, 50_000_000, "SERIOUS"),
    (29, 99, 99_999_999, "SERIOUS"),
    (30, 0, 0, "ESPECIALLY_SERIOUS"), (0, 100, 0, "ESPECIALLY_SERIOUS"),
    (0, 0, 100_000_000, "ESPECIALLY_SERIOUS"), (1, 1, 2e8, "ESPECIALLY_SERIOUS"),
])
def test_implied_level_follows_decree_493(deaths: int, injuries: int, loss: float,
                                          level: str) -> None:
    assert implied_level(deaths, injuries, loss) == level


def test_clean_reading_passes() -> None:
    assert check_reading(reading(), POLICY, NOW) == []


def test_reading_violations() -> None:
    assert [v.code for v in check_reading(reading(unit="PPM"), POLICY, NOW)] == ["UNIT_MISMATCH"]
    assert [v.code for v in check_reading(reading(value=150.0), POLICY, NOW)] == ["OUT_OF_RANGE"]
    assert [v.code for v in check_reading(reading(value=float("nan")), POLICY, NOW)] == [
        "OUT_OF_RANGE"]
    future = reading(event_time=NOW + 6 * 60_000)
    assert [v.field for v in check_reading(future, POLICY, NOW)] == ["event_time"]
    within_skew = reading(event_time=NOW + 4 * 60_000)
    assert check_reading(within_skew, POLICY, NOW) == []


def test_telemetry_names_the_reading() -> None:
    batch = {"gateway_id": "g", "enterprise_id": "e", "sent_at": NOW, "sequence": 1,
             "readings": [reading(), reading(value=-1.0)]}
    found = check_telemetry(batch, POLICY, NOW)
    assert [(v.field, v.code) for v in found] == [("readings[1].value", "OUT_OF_RANGE")]


def test_decoded_datetimes_are_accepted() -> None:
    when = datetime.fromtimestamp((NOW + 3_600_000) / 1000, UTC)
    assert [v.code for v in check_reading(reading(event_time=when), POLICY, NOW)] == [
        "FUTURE_EVENT_TIME"]


def test_incident_checks() -> None:
    assert check_incident(incident(), POLICY, NOW) == []
    bad = incident(region_code="990101", deaths=-1, direct_economic_loss_cny=-5.0,
                   reported_at=NOW - 7_200_000)
    assert sorted(v.code for v in check_incident(bad, POLICY, NOW)) == [
        "BAD_REGION_CODE", "BAD_TIMESTAMP", "NEGATIVE_FIGURE", "NEGATIVE_FIGURE"]
    assert [v.code for v in check_incident(incident(occurred_at=NOW + 3_600_000,
                                                    reported_at=NOW + 3_600_000), POLICY,
                                           NOW)] == ["FUTURE_EVENT_TIME", "FUTURE_EVENT_TIME"]


def test_other_records() -> None:
    assert check_heartbeat({"sent_at": NOW, "interval_s": 0}, POLICY, NOW)[0].code == \
        "OUT_OF_RANGE"
    hazard = {"region_code": "3205", "found_at": NOW, "rectification_deadline": NOW - 1,
              "updated_at": NOW}
    assert sorted(v.code for v in check_hazard(hazard, POLICY, NOW)) == [
        "BAD_REGION_CODE", "BAD_TIMESTAMP"]
    assert check_enterprise({"region_code": "110101", "updated_at": NOW}, POLICY, NOW) == []
    sensor = {"metric": "FLAMMABLE_GAS", "unit": "PERCENT_LEL", "alarm_level1": 60.0,
              "alarm_level2": 50.0, "updated_at": NOW}
    assert [v.field for v in check_sensor(sensor, POLICY, NOW)] == ["alarm_level2"]
    assert [v.code for v in check_sensor({**sensor, "unit": "PPM", "alarm_level1": None},
                                         POLICY, NOW)] == ["UNIT_MISMATCH"]
