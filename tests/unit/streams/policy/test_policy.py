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
