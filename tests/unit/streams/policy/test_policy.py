from datetime import timedelta

import pytest

from streams.policy import PolicyError, load_policy, parse_duration, parse_policy


def test_bundled_policy_deadlines_cite_sources() -> None:
    policy = load_policy()
    rule = policy.deadline_rule("PRODUCTION_SAFETY", "INITIAL", "ENTERPRISE")
    assert rule is not None and rule.within == timedelta(hours=1)
    assert "art. 9" in rule.source
    assert all(r.source for r in policy.deadlines)


@pytest.mark.parametrize(
    ("kind", "stage", "level", "declared", "industry", "expected"),
    [
        ("PRODUCTION_SAFETY", "INITIAL", "COUNTY", "ORDINARY", None, timedelta(hours=3)),
        ("NATURAL_DISASTER", "INITIAL", "COUNTY", "ORDINARY", None, timedelta(hours=2)),
        ("NATURAL_DISASTER", "FOLLOW_UP", "CITY", "SERIOUS", None, timedelta(hours=12)),
        ("PRODUCTION_SAFETY", "FOLLOW_UP", "CITY", "ORDINARY", None, timedelta(hours=24)),
        ("PRODUCTION_SAFETY", "SUPPLEMENTARY", "CITY", "ORDINARY", "Road traffic",
         timedelta(days=7)),
        ("PRODUCTION_SAFETY", "SUPPLEMENTARY", "CITY", "ORDINARY", "coal", timedelta(days=30)),
        ("PRODUCTION_SAFETY", "FINAL", "CITY", "ORDINARY", None, None),
    ],
)
def test_reporting_deadline(kind: str, stage: str, level: str, declared: str,
                            industry: str | None, expected: timedelta | None) -> None:
    assert load_policy().reporting_deadline(kind, stage, level, declared, industry) == expected


def test_metric_defaults() -> None:
    methane = load_policy().metrics["METHANE"]
    assert (methane.alarm_level1, methane.alarm_level2) == (1.0, 1.5)
    assert methane.late_after == timedelta(minutes=2)


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    with pytest.raises(PolicyError, match="not a duration"):
        parse_duration("soon")


def test_malformed_rule_is_named() -> None:
    with pytest.raises(PolicyError, match="deadline rule #1: missing key 'within'"):
        parse_policy({"deadline": [{"kind": "*", "stage": "INITIAL", "source": "x"}]})
    with pytest.raises(PolicyError, match=r"metric\.X"):
        parse_policy({"metric": {"X": {"unit": "PPM", "range": [5, 1], "alarm": [1, 2],
                                       "source": "s"}}})


def test_hazard_and_blind_spot_rules_cite_sources() -> None:
    policy = load_policy()
    h, b = policy.hazards, policy.blind_spots
    assert h.major_repeat_every == timedelta(hours=24) and h.first_version == 1
    assert h.forget_closed_after == timedelta(days=90)
    assert b.never_connected_after == timedelta(hours=1)
    assert (b.sensor_expected_interval, b.sensor_silent_after_intervals) == (
        timedelta(minutes=5), 3)
    assert b.forget_after == timedelta(days=30)
    assert "Work Safety Law" in h.overdue_source and "order 16" in h.transitions_source
    assert all([h.major_repeat_source, h.forget_source, b.never_connected_source,
                b.sensor_silent_source, b.forget_source])


def test_hazard_and_blind_spot_sections_reject_unknown_keys_and_bad_values() -> None:
    with pytest.raises(PolicyError, match=r"\[hazards\]: unknown key\(s\) major_repeat"):
        parse_policy({"hazards": {"major_repeat": "1h"}})
    with pytest.raises(PolicyError, match=r"blind_spots\.sensor_silent_after_intervals"):
        parse_policy({"blind_spots": {"sensor_silent_after_intervals": 0}})
    with pytest.raises(PolicyError, match=r"hazards\.major_repeat_every: must be longer than 0"):
        parse_policy({"hazards": {"major_repeat_every": "0s"}})
    policy = parse_policy({"hazards": {"major_repeat_every": "12h"},
                           "blind_spots": {"never_connected_after": "10m"}})
    assert policy.hazards.major_repeat_every == timedelta(hours=12)
    assert policy.blind_spots.never_connected_after == timedelta(minutes=10)
