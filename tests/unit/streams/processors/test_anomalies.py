from __future__ import annotations

import random

from streams.policy import Policy
from streams.processors.anomalies import SensorScorer, new_sensor_state


def run(scorer: SensorScorer, values: list[float], l1: float = 1.0,
        l2: float = 1.5) -> list[tuple[list[str], list[str]]]:
    st = new_sensor_state()
    return [scorer.score(st, v, l1, l2)[1:] for v in values]


def test_alarm_levels_and_rising_edges(policy: Policy) -> None:
    out = run(SensorScorer(policy), [0.1, 1.0, 1.49, 1.5, 1.6, 1.2, 0.1, 1.6])
    codes = [[c for c in codes if c.startswith("ALARM")] for codes, _ in out]
    assert codes == [[], ["ALARM_L1"], ["ALARM_L1"], ["ALARM_L2"], ["ALARM_L2"], ["ALARM_L1"],
                     [], ["ALARM_L2"]]
    alerts = [[a for a in alerts if a.startswith("ALARM")] for _, alerts in out]
    assert alerts == [[], ["ALARM_L1"], [], ["ALARM_L2"], [], [], [], ["ALARM_L2"]]


def test_single_point_spike_flags_once_and_recovery_is_not_a_spike(policy: Policy) -> None:
    out = run(SensorScorer(policy), [0.1, 0.12, 0.9, 0.11, 0.13], l1=1.0)  # threshold 0.5
    assert ["SPIKE" in codes for codes, _ in out] == [False, False, True, False, False]


def test_level_shift_flags_only_the_step(policy: Policy) -> None:
    out = run(SensorScorer(policy), [0.1, 0.1001, 0.8, 0.8001, 0.8002], l1=10.0, l2=20.0)
    assert not any("SPIKE" in codes for codes, _ in out)   # threshold 5.0: no spike at all
    out = run(SensorScorer(policy), [0.1, 0.11, 0.8, 0.81, 0.82], l1=1.0)
    assert ["SPIKE" in codes for codes, _ in out] == [False, False, True, False, False]


def test_flatline_from_the_count_alerted_once_per_run(policy: Policy) -> None:
    scorer = SensorScorer(policy)
    n = policy.flatline_count
    out = run(scorer, [0.3] * (n + 5) + [0.31] + [0.3] * n)
    flags = ["FLATLINE" in codes for codes, _ in out]
    assert flags[: n - 1] == [False] * (n - 1) and all(flags[n - 1: n + 5])
    assert flags[n + 5] is False
    alerted = [i for i, (_, alerts) in enumerate(out) if "FLATLINE" in alerts]
    assert alerted == [n - 1, n + 5 + n]


def test_outlier_after_warmup_only(policy: Policy) -> None:
    rng = random.Random(7)
    noise = [20.0 + rng.gauss(0, 0.5) for _ in range(policy.outlier_warmup + 20)]
    scorer = SensorScorer(policy)
    early = run(scorer, [20.0, 20.1, 45.0], l1=80.0, l2=120.0)
    assert not any("OUTLIER" in codes for codes, _ in early)
    out = run(scorer, [*noise, 40.0, 20.2], l1=80.0, l2=120.0)
    flagged = [i for i, (codes, _) in enumerate(out) if "OUTLIER" in codes]
    assert flagged == [len(noise)]


def test_clean_noise_raises_nothing(policy: Policy) -> None:
    rng = random.Random(1)
    values = [0.3 + rng.gauss(0, 0.02) for _ in range(2000)]
    out = run(SensorScorer(policy), values)
    assert not any(codes for codes, _ in out)
