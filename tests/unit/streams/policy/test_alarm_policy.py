"""The [alarms] section of the policy: defaults, per-metric deadbands and delays, errors."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import pytest

from streams.policy import PolicyError, load_policy, parse_policy


def bundled() -> dict[str, Any]:
    text = resources.files("streams.policy").joinpath("default.toml").read_text("utf-8")
    return tomllib.loads(text)


def test_the_bundled_alarm_policy() -> None:
    alarms = load_policy().alarms
    methane = alarms.metric("METHANE")
    assert (methane.deadband, methane.on_delay_ms, methane.off_delay_ms) == (0.1, 0, 30_000)
    assert methane.source
    assert alarms.metric("TEMPERATURE").on_delay_ms == 60_000
    assert alarms.metric("NO_SUCH_METRIC").deadband == 0.0
    assert alarms.ends_of("ALARM_L2") == "limit" and alarms.ends_of("GATEWAY_OFFLINE") == "online"
    assert alarms.ends_of("SPIKE") == "quiet"            # not listed: an event
    assert alarms.ends_of("SOMETHING_NEW") == "quiet"
    assert alarms.ends_of("GATEWAY_ONLINE") is None      # not an alarm
    assert alarms.off_delay("GATEWAY_OFFLINE") == 60_000 and alarms.off_delay("SPIKE") == 0
    assert (alarms.flood_window_ms, alarms.flood_limit) == (600_000, 10)
    # every metric of the policy has its deadband, delays and source
    assert set(alarms.metrics) == set(load_policy().metrics)


def test_a_policy_without_alarms_gets_the_defaults() -> None:
    data = bundled()
    del data["alarms"]
    alarms = parse_policy(data).alarms
    assert alarms.metric("METHANE").deadband == 0.0 and alarms.update_every_ms == 60_000


@pytest.mark.parametrize(("change", "message"), [
    ({"colour": "red"}, r"alarms: unknown key\(s\) colour"),
    ({"ends": {"SPIKE": "never"}}, r"alarms.ends.SPIKE: 'never' is not one of"),
    ({"quiet_after": "soon"}, r"alarms.quiet_after"),
    ({"quiet_after": "0s"}, r"alarms.quiet_after: must be longer than 0"),
    ({"flood_limit": 0}, r"alarms.flood_limit"),
    ({"metric": {"METHANE": {"deadband": -1, "source": "x"}}}, r"METHANE.deadband"),
    ({"metric": {"METHANE": {"deadband": 0.1}}}, r"missing key 'source'"),
    ({"metric": {"METHANE": {"deadband": 0.1, "hysteresis": 2, "source": "x"}}},
     r"unknown key\(s\) hysteresis"),
    ({"metric": {"RADON": {"deadband": 1, "source": "x"}}}, r"no metric RADON"),
    ({"metric": {"METHANE": {"off_delay": "30 sec", "source": "x"}}}, r"METHANE.off_delay"),
])
def test_errors_name_the_key(change: dict[str, Any], message: str) -> None:
    data = bundled()
    data["alarms"] = {**data["alarms"], **change}
    with pytest.raises(PolicyError, match=message):
        parse_policy(data)
