"""The blind-spot (盲区死角) rules of the policy: ``[blind_spots]`` (see default.toml) —
registered gateways that never connect, sensors that fall silent while their gateway is
online, and when the state of gateways and sensors nobody registers any more is dropped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from streams.policy.sections import Section


@dataclass(frozen=True)
class BlindSpotPolicy:
    never_connected_after: timedelta      # registered, nothing arrived: GATEWAY_NEVER_CONNECTED
    never_connected_source: str
    sensor_expected_interval: timedelta   # a sensor's reporting interval when it names none
    sensor_silent_after_intervals: int    # silent this many intervals: SENSOR_SILENT
    sensor_silent_source: str
    forget_after: timedelta               # silence after which unregistered state is dropped
    forget_source: str


DEFAULT_BLIND_SPOTS = BlindSpotPolicy(
    never_connected_after=timedelta(hours=1),
    never_connected_source="Joint notice on emergency basic information: no monitoring blind "
                           "spots (registered systems must be connected)",
    sensor_expected_interval=timedelta(minutes=5), sensor_silent_after_intervals=3,
    sensor_silent_source="Joint notice: real-time monitoring data streamed without gaps",
    forget_after=timedelta(days=30),
    forget_source="Platform default: state of deregistered gateways and sensors kept 30 days")


def blind_spot_policy(data: dict[str, Any]) -> BlindSpotPolicy:
    """``[blind_spots]`` of a policy file (absent keys: the defaults above)."""
    d, s = DEFAULT_BLIND_SPOTS, Section(data, "blind_spots")
    policy = BlindSpotPolicy(
        never_connected_after=s.duration("never_connected_after", "1h"),
        never_connected_source=s.text("never_connected_source", d.never_connected_source),
        sensor_expected_interval=s.duration("sensor_expected_interval", "5m"),
        sensor_silent_after_intervals=s.count("sensor_silent_after_intervals",
                                              d.sensor_silent_after_intervals),
        sensor_silent_source=s.text("sensor_silent_source", d.sensor_silent_source),
        forget_after=s.duration("forget_after", "30d"),
        forget_source=s.text("forget_source", d.forget_source))
    s.done()
    return policy
