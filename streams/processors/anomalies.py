"""Per-sensor anomaly scoring: alarm limits (two levels), spikes, flatlines, outliers.

The state is a small dict per sensor (part of the gateway's table value), updated in place
once per reading; this runs per reading, so it is plain arithmetic on floats and ints.

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
"""

from __future__ import annotations

import math
from typing import Any

from streams.policy import Policy

SensorState = dict[str, Any]


def new_sensor_state() -> SensorState:
    return {"n": 0, "v": 0.0, "t": 0, "b": 0.0, "sp": 0, "fr": 0, "fa": 0, "m": 0.0,
            "d": 0.0, "al": 0, "ids": [], "g": []}


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
            if level > st["al"]:
                alerts.append(codes[-1])
        st["al"] = level
        n = st["n"]
        if n:
            last = st["v"]
            # spike
            thr = self.spike_ratio * l1 if 0 < l1 < math.inf else 0.0
            if thr > 0 and abs(v - last) > thr:
                if st["sp"] and abs(v - st["b"]) <= thr:
                    st["sp"] = 0            # back to the pre-spike level: the spike ended
                else:
                    if not st["sp"]:
                        st["b"] = last
                    st["sp"] = 1
                    codes.append("SPIKE")
                    alerts.append("SPIKE")
            else:
                st["sp"] = 0
            # flatline
            if v == last:
                run = st["fr"] + 1
                st["fr"] = run
                if run >= self.flatline_count:
                    codes.append("FLATLINE")
                    if not st["fa"]:
                        st["fa"] = 1
                        alerts.append("FLATLINE")
            else:
                st["fr"] = 1
                st["fa"] = 0
        else:
            st["fr"] = 1
        # outlier (EWMA mean and absolute deviation)
        if st["fr"] < self.flatline_count:
            mean = st["m"]
            if n == 0:
                st["m"] = v
                st["d"] = 0.0
            else:
                dev = abs(v - mean)
                if n >= self.warmup:
                    floor = 0.01 * l1 if 0 < l1 < math.inf else 1e-9
                    scale = st["d"] if st["d"] > floor else floor
                    if dev / scale > self.outlier_z:
                        codes.append("OUTLIER")
                        alerts.append("OUTLIER")
                a = self.alpha
                st["m"] = mean + a * (v - mean)
                st["d"] = st["d"] + a * (dev - st["d"])
        st["n"] = n + 1
        st["v"] = v
        return level, codes, alerts
