"""Who sends: enterprises in real GB/T 2260 districts, their gateways and sensors.

Sensor baselines sit at 20-30 % of the first alarm limit with uniform noise of +-2 % of it,
so clean traffic stays far below alarm level 1, never jumps by spike_ratio * level 1, never
repeats a value 30 times and keeps a robust z-score around 2 (no false positives).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from streams.policy import Policy

# Real GB/T 2260 county-level codes.
REGIONS = (
    "110101",  # Beijing, Dongcheng
    "110105",  # Beijing, Chaoyang
    "120101",  # Tianjin, Heping
    "130102",  # Shijiazhuang, Chang'an
    "150602",  # Ordos, Dongsheng
    "210102",  # Shenyang, Heping
    "310115",  # Shanghai, Pudong
    "320505",  # Suzhou, Huqiu
    "330106",  # Hangzhou, Xihu
    "370102",  # Jinan, Lixia
    "410105",  # Zhengzhou, Jinshui
    "420106",  # Wuhan, Wuchang
    "440106",  # Guangzhou, Tianhe
    "500103",  # Chongqing, Yuzhong
    "510104",  # Chengdu, Jinjiang
    "530102",  # Kunming, Wuhua
    "610113",  # Xi'an, Yanta
    "620102",  # Lanzhou, Chengguan
    "650102",  # Urumqi, Tianshan
)

INDUSTRIES: dict[str, tuple[str, ...]] = {
    "hazardous chemicals": ("FLAMMABLE_GAS", "TOXIC_GAS", "TEMPERATURE", "PRESSURE",
                            "LIQUID_LEVEL"),
    "coal mining": ("METHANE", "CARBON_MONOXIDE", "TEMPERATURE"),
    "tailings pond": ("DISPLACEMENT", "LIQUID_LEVEL"),
    "metallurgy": ("CARBON_MONOXIDE", "TEMPERATURE", "PRESSURE"),
}


@dataclass
class SensorState:
    sensor_id: str
    gateway_id: str
    enterprise_id: str
    metric: str
    unit: str
    level1: float
    level2: float
    base: float
    noise: float              # half-width of the uniform noise
    noise_scale: float = 1.0  # < 1 right after a flatline, recovering 2 % per reading
    count: int = 0            # readings generated so far
    faulted: bool = False     # carries an anomaly: no other faults on this sensor
    last: dict[str, Any] | None = None   # last clean reading (for duplicates)

    def clean_value(self, rng: random.Random) -> float:
        value = self.base + rng.uniform(-self.noise, self.noise) * self.noise_scale
        if self.noise_scale < 1.0:
            self.noise_scale = min(1.0, self.noise_scale * 1.02)
        return round(value, 4)


@dataclass
class Gateway:
    gateway_id: str
    enterprise_id: str
    region_code: str
    sensors: list[SensorState] = field(default_factory=list)
    sequence: int = 0
    beat_sequence: int = 0
    beat_offset_ms: int = 0
    silent_from_ms: int | None = None
    silent_until_ms: int | None = None

    def silent(self, now_ms: int) -> bool:
        return (self.silent_from_ms is not None and self.silent_until_ms is not None
                and self.silent_from_ms <= now_ms < self.silent_until_ms)


@dataclass
class Topology:
    enterprises: list[dict[str, Any]]
    sensors: list[dict[str, Any]]
    gateways: list[Gateway]

    @property
    def states(self) -> list[SensorState]:
        return [s for g in self.gateways for s in g.sensors]


def build(rng: random.Random, policy: Policy, enterprises: int, gateways_per_enterprise: int,
          sensors_per_gateway: int, start_ms: int, heartbeat_interval_s: int) -> Topology:
    ents: list[dict[str, Any]] = []
    regs: list[dict[str, Any]] = []
    gws: list[Gateway] = []
    industries = sorted(INDUSTRIES)
    for e in range(enterprises):
        region = REGIONS[e % len(REGIONS)]
        industry = industries[rng.randrange(len(industries))]
        ent_id = f"ent-{region}-{e + 1:04d}"
        ents.append({"enterprise_id": ent_id, "name": f"{industry.title()} Works No. {e + 1}",
                     "region_code": region, "industry": industry, "updated_at": start_ms})
        metrics = INDUSTRIES[industry]
        for g in range(gateways_per_enterprise):
            gw = Gateway(f"gw-{e + 1:04d}-{g + 1:02d}", ent_id, region,
                         beat_offset_ms=rng.randrange(heartbeat_interval_s * 1000))
            for s in range(sensors_per_gateway):
                metric = metrics[s % len(metrics)]
                mp = policy.metrics[metric]
                own = rng.random() < 0.5   # half carry their own limits (= policy defaults)
                state = SensorState(
                    f"{gw.gateway_id}-s{s + 1:03d}", gw.gateway_id, ent_id, metric, mp.unit,
                    mp.alarm_level1, mp.alarm_level2,
                    base=round(mp.alarm_level1 * rng.uniform(0.2, 0.3), 4),
                    noise=mp.alarm_level1 * 0.02)
                gw.sensors.append(state)
                regs.append({"sensor_id": state.sensor_id, "enterprise_id": ent_id,
                             "gateway_id": gw.gateway_id, "metric": metric, "unit": mp.unit,
                             "alarm_level1": mp.alarm_level1 if own else None,
                             "alarm_level2": mp.alarm_level2 if own else None,
                             "updated_at": start_ms})
            gws.append(gw)
    return Topology(ents, regs, gws)
