from __future__ import annotations

from schemas.catalog.declarations import ENTERPRISE, SENSOR
from streams.policy import Policy
from streams.processors.reference import ReferenceData
from streams.records.rules import check_sensor
from tests.unit.streams.processors.conftest import T0, sensor


def test_sensor_limits_resolved_against_policy(policy: Policy) -> None:
    ref = ReferenceData(policy)
    assert ref.put_sensor(sensor("s-1"), T0)
    assert ref.put_sensor(sensor("s-2", l1=0.8, l2=None), T0)
    assert (ref.sensors["s-1"].alarm_level1, ref.sensors["s-1"].alarm_level2) == (1.0, 1.5)
    assert (ref.sensors["s-2"].alarm_level1, ref.sensors["s-2"].alarm_level2) == (0.8, 1.5)


def test_bad_registrations_are_ignored(policy: Policy) -> None:
    ref = ReferenceData(policy)
    assert not ref.put_sensor(sensor("s-1", unit="PPM"), T0)
    assert not ref.put_enterprise({"enterprise_id": "e", "name": "n", "region_code": "000000",
                                   "industry": "x", "updated_at": T0}, T0)
    assert ref.ignored == 2 and not ref.sensors and not ref.enterprises


def test_apply_and_tombstones(policy: Policy) -> None:
    ref = ReferenceData(policy)
    ref.apply(SENSOR, "s-1", sensor("s-1"), T0)
    ref.apply(ENTERPRISE, "e-1", {"enterprise_id": "e-1", "name": "n",
                                     "region_code": "320102", "industry": "x",
                                     "updated_at": T0}, T0)
    assert ref.region_of("e-1") == "320102" and ref.region_of("nope") == ""
    ref.apply(SENSOR, "s-1", None, T0)
    assert "s-1" not in ref.sensors


def test_a_sensor_names_its_reporting_interval(policy: Policy) -> None:
    ref = ReferenceData(policy)
    assert ref.put_sensor({**sensor("s-9"), "expected_interval_s": 30}, T0)
    assert ref.sensors["s-9"].expected_interval_ms == 30_000
    assert ref.put_sensor(sensor("s-8"), T0)
    assert ref.sensors["s-8"].expected_interval_ms == 300_000        # the policy default
    assert [v.code for v in check_sensor({**sensor("s-7"), "expected_interval_s": 0},
                                         policy, T0)] == ["OUT_OF_RANGE"]
    assert set(ref.take_sensor_changes()) == {"s-8", "s-9"} and not ref.take_sensor_changes()
