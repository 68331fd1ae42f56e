"""Per-sensor anomaly scoring: alarm limits (two levels), spikes, flatlines, outliers.

- ALARM_L1 / ALARM_L2: value at or over the sensor's first / second alarm limit. Every such
  reading carries the code; an alert is raised when the level rises (0 -> 1, 0 -> 2, 1 -> 2).
- SPIKE: the value moved more than ``spike_ratio`` x the first alarm limit since the previous
  reading. A value returning to where it was before a spike is the spike ending, not a
  second spike.
- FLATLINE: ``flatline_count`` identical successive values (a stuck sensor); the readings from
  the count onwards carry the code, the alert is raised once per run.
- OUTLIER: robust z-score |v - EWMA mean| / EWMA absolute deviation over ``outlier_z`` once the
  sensor has ``outlier_warmup`` readings. Flatlined values do not update the averages.

Readings the gateway marks BAD are not scored and do not update the state.

The state is a small dict per sensor (:class:`SensorState`, in the gateway's table value
under ``sensors``, see :mod:`.telemetry`), updated in place once per reading; this runs per
reading, so it is plain arithmetic on floats and ints. Its fields:

- ``readings_scored``: readings scored so far;
- ``last_value``, ``last_event_time``: value and event time (ms) of the last scored reading;
- ``alarm_level``: 0, 1 or 2, the alarm level of the last scored reading;
- ``in_spike``: the last reading was a spike; ``spike_base``: the value before the spike;
- ``flat_run``: how many identical successive values end with the last one;
  ``flat_alerted``: the FLATLINE alert of this run was raised;
- ``mean``, ``mean_deviation``: the EWMA of the values and of their absolute deviation from
  it;
- ``recent_ids``, ``recent_envelopes``: the sensor's ring of recent reading ids
  (:mod:`.dedup`).

States written before these names are converted when first read (:mod:`.layouts`).
"""

from __future__ import annotations

import math
from typing import TypedDict

from streams.policy import Policy


class SensorState(TypedDict):
    """One sensor's scoring and deduplication state (see the module docstring)."""

    readings_scored: int
    last_value: float
    last_event_time: int
    spike_base: float
    in_spike: bool
    flat_run: int
    flat_alerted: bool
    mean: float
    mean_deviation: float
    alarm_level: int
    recent_ids: list[int]
    recent_envelopes: list[list[int]]


def new_sensor_state() -> SensorState:
    return {"readings_scored": 0, "last_value": 0.0, "last_event_time": 0, "spike_base": 0.0,
            "in_spike": False, "flat_run": 0, "flat_alerted": False, "mean": 0.0,
            "mean_deviation": 0.0, "alarm_level": 0, "recent_ids": [], "recent_envelopes": []}


class SensorScorer:
    """``score(state, value, level1, level2) -> (alarm_level, codes, alerts)``."""

    def __init__(self, policy: Policy) -> None:
        self.spike_ratio = policy.spike_ratio
        self.flatline_count = max(2, policy.flatline_count)
        self.outlier_z = policy.outlier_z
        self.warmup = policy.outlier_warmup
        self.alpha = policy.ewma_alpha

    def score(self, st: SensorState, v: float, l1: float, l2: float) -> tuple[
            int, list[str], list[str]]:
        codes: list[str] = []
        alerts: list[str] = []
        level = 2 if v >= l2 else 1 if v >= l1 else 0
        if level:
            codes.append("ALARM_L2" if level == 2 else "ALARM_L1")
            if level > st["alarm_level"]:
                alerts.append(codes[-1])
        st["alarm_level"] = level
        n = st["readings_scored"]
        if n:
            last = st["last_value"]
            # spike
            thr = self.spike_ratio * l1 if 0 < l1 < math.inf else 0.0
            if thr > 0 and abs(v - last) > thr:
                if st["in_spike"] and abs(v - st["spike_base"]) <= thr:
                    st["in_spike"] = False      # back to the pre-spike level: the spike ended
                else:
                    if not st["in_spike"]:
                        st["spike_base"] = last
                    st["in_spike"] = True
                    codes.append("SPIKE")
                    alerts.append("SPIKE")
            else:
                st["in_spike"] = False
            # flatline
            if v == last:
                run = st["flat_run"] + 1
                st["flat_run"] = run
                if run >= self.flatline_count:
                    codes.append("FLATLINE")
                    if not st["flat_alerted"]:
                        st["flat_alerted"] = True
                        alerts.append("FLATLINE")
            else:
                st["flat_run"] = 1
                st["flat_alerted"] = False
        else:
            st["flat_run"] = 1
        # outlier (EWMA mean and absolute deviation)
        if st["flat_run"] < self.flatline_count:
            mean = st["mean"]
            if n == 0:
                st["mean"] = v
                st["mean_deviation"] = 0.0
            else:
                dev = abs(v - mean)
                if n >= self.warmup:
                    floor = 0.01 * l1 if 0 < l1 < math.inf else 1e-9
                    scale = st["mean_deviation"] if st["mean_deviation"] > floor else floor
                    if dev / scale > self.outlier_z:
                        codes.append("OUTLIER")
                        alerts.append("OUTLIER")
                a = self.alpha
                st["mean"] = mean + a * (v - mean)
                st["mean_deviation"] = st["mean_deviation"] + a * (dev - st["mean_deviation"])
        st["readings_scored"] = n + 1
        st["last_value"] = v
        return level, codes, alerts
