"""Flood figures, and simulated traffic with its usual faults through the alarm book."""

from __future__ import annotations

from collections import Counter
from typing import Any

from streams.alarms.flood import dry_run, flood_figures
from streams.policy import load_policy
from streams.simulate import SimConfig

MIN = 60_000
T0 = 1_790_000_400_000   # on a 10-minute boundary


def raised(region: str, at: int, transition: str = "RAISED") -> dict[str, Any]:
    return {"transition": transition, "raised_at": at, "region_code": region}


def test_alarms_per_province_and_window() -> None:
    events = [raised("320506", T0 + i * 30_000) for i in range(11)]          # a flood
    events += [raised("320582", T0 + 11 * MIN), raised("110105", T0 + MIN),
               raised("110105", T0 + MIN, "UPDATED"), raised("", T0)]
    figures = flood_figures(events, 10 * MIN, 10)
    assert figures.alarms == 14 and figures.peak == 11
    assert figures.floods == [("32", T0, 11)]
    assert figures.provinces() == {"": (1, 1, 1), "11": (1, 1, 1), "32": (12, 2, 11)}
    lines = figures.lines(20)
    assert lines[0] == ("14 alarm(s) raised; most in one 10 min window of one province: 11; "
                        "1 window(s) over 10 (a flood)")
    assert "7.0 alarm(s) per 10 min on average" in lines[1]


def test_simulated_traffic_with_its_faults_is_no_flood() -> None:
    policy = load_policy()
    # 30 minutes: the simulator spreads its faults over the run (a shorter one crowds its
    # sensor anomalies, each two to four related alarms, into a few minutes)
    config = SimConfig(seed=1, rate=20, duration_s=1800, start_ms=T0)
    result = dry_run(config, policy)
    assert result.truth["silent_gateway"] == 1 and result.truth["late_telemetry"] > 0
    alarm_alerts = [a for a in result.alerts if policy.alarms.ends_of(a["alert_type"])]
    raised_ = [e for e in result.events if e["transition"] == "RAISED"]
    assert raised_ and len(raised_) < len(alarm_alerts)           # repeats are one alarm
    assert len({e["alarm_id"] for e in raised_}) == len(raised_)
    by_alarm = Counter(e["alarm_id"] for e in result.events if e["transition"] == "CLEARED")
    assert max(by_alarm.values()) == 1                            # cleared once
    figures = flood_figures(result.events, policy.alarms.flood_window_ms,
                            policy.alarms.flood_limit)
    assert figures.floods == [], figures.lines()
    offline = [e for e in raised_ if e["alarm_type"] == "GATEWAY_OFFLINE"]
    assert len(offline) == 1                                      # the silent gateway
