"""Anomaly programs: the exact values a sensor reports next, and the ground truth they imply.

Each program is built so that its kind is unambiguous under the policy:
- SPIKE: one reading jumps by more than spike_ratio * level 1 (staying under level 1), the
  next returns to the baseline (both readings listed);
- FLATLINE: flatline_count + 5 identical values; afterwards the noise recovers slowly so the
  robust z-score of the returning noise stays low;
- OUTLIER: a drift of three steps up and two down, each step (outlier_z + 4) times the
  noise's mean absolute deviation, far below the spike threshold and level 1;
- ALARM_L1 / ALARM_L2: a ramp in steps below the spike threshold to a value between level 1
  and level 2 (or above level 2) and back; readings in (L1, L2] are listed as ALARM_L1 and
  readings above L2 as ALARM_L2. Values keep 1 % of level 1 away from both limits.
Ramps and drifts also deviate from the sensor's baseline, so a detector may additionally
raise OUTLIER on those same readings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from streams.policy import Policy
from streams.simulate.topology import SensorState

KINDS = ("SPIKE", "FLATLINE", "OUTLIER", "ALARM_L1", "ALARM_L2")


@dataclass
class Program:
    anomaly: str
    sensor: SensorState
    values: list[float | None]           # None: a clean value (the return after a spike)
    emitted: list[tuple[str, float]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return len(self.emitted) >= len(self.values)

    def next_value(self, clean: float) -> float:
        planned = self.values[len(self.emitted)]
        return clean if planned is None else planned

    def record(self, reading_id: str, value: float) -> None:
        self.emitted.append((reading_id, value))

    def truth(self, policy: Policy) -> list[dict[str, Any]]:
        """Ground-truth lines for what was actually emitted (also for a cut-off program)."""
        s = self.sensor
        ids = [rid for rid, _ in self.emitted]
        if self.anomaly == "SPIKE":
            return [_line("SPIKE", s, ids)] if ids else []
        if self.anomaly == "FLATLINE":
            return [_line("FLATLINE", s, ids)] if len(ids) >= policy.flatline_count else []
        if self.anomaly == "OUTLIER":
            return [_line("OUTLIER", s, ids)] if ids else []
        level1 = [rid for rid, v in self.emitted if s.level1 < v <= s.level2]
        level2 = [rid for rid, v in self.emitted if v > s.level2]
        out = [_line("ALARM_L1", s, level1)] if level1 else []
        return out + ([_line("ALARM_L2", s, level2)] if level2 else [])

    def finish(self) -> None:
        if self.anomaly == "FLATLINE":
            self.sensor.noise_scale = 0.15


def _line(kind: str, sensor: SensorState, ids: list[str]) -> dict[str, Any]:
    return {"fault": "anomaly", "anomaly": kind, "sensor_id": sensor.sensor_id,
            "reading_ids": ids}


def build(kind: str, s: SensorState, policy: Policy) -> Program | None:
    """The program for ``kind`` on sensor ``s``, or None if the policy makes it ambiguous."""
    l1, l2 = s.level1, s.level2
    spike_at = policy.spike_ratio * l1
    margin = 2 * s.noise
    if kind == "SPIKE":
        value = s.base + spike_at + margin + 0.05 * l1
        return Program(kind, s, [round(value, 4), None]) if value < 0.98 * l1 else None
    if kind == "FLATLINE":
        return Program(kind, s, [round(s.base, 4)] * (policy.flatline_count + 5))
    if kind == "OUTLIER":
        step = (policy.outlier_z + 4) * s.noise / 2
        if 3 * step + s.base + s.noise >= 0.95 * l1 or step + margin >= spike_at:
            return None
        return Program(kind, s, [round(s.base + k * step, 4) for k in (1, 2, 3, 2, 1)])
    high = policy.metrics[s.metric].high
    target = (l1 + l2) / 2 if kind == "ALARM_L1" else min(l2 + 0.2 * l1, 0.95 * high)
    max_step = spike_at - margin - 0.1 * l1
    if target <= l1 or max_step <= 0 or (kind == "ALARM_L2" and target <= l2):
        return None
    steps = math.ceil((target - s.base) / max_step)
    up = [s.base + k * (target - s.base) / steps for k in range(1, steps + 1)]
    down = list(reversed(up[:-1]))
    values = [_away(v, l1, l2) for v in [*up, target, target, *down]]
    return Program(kind, s, [round(v, 4) for v in values])


def _away(value: float, l1: float, l2: float) -> float:
    for limit in (l1, l2):
        if abs(value - limit) < 0.01 * l1:
            value = limit - 0.02 * l1
    return value
