"""The columnar layout of the clean telemetry topic: arrays plus sparse flags."""

from __future__ import annotations

from schemas.columns import columnar, ragged, reading_count, rows


def _reading(i: int, **flags: object) -> dict[str, object]:
    return {"reading_id": f"r{i}", "sensor_id": "s-1", "metric": "METHANE", "value": 0.1 * i,
            "unit": "PERCENT_VOL", "quality": "GOOD", "event_time": 1000 + i,
            "arrival_lag_ms": 5, **flags}


def test_columnar_and_rows_round_trip_with_flags_only_where_set() -> None:
    readings = [_reading(0), _reading(1, late=True), _reading(2, alarm_level=2,
                                                              anomalies=["ALARM_L2"])]
    batch = columnar(readings)
    assert reading_count(batch) == 3 and batch["value"] == [0.0, 0.1, 0.2]
    assert batch["flags"] == [
        {"index": 1, "late": True, "alarm_level": 0, "anomalies": []},
        {"index": 2, "late": False, "alarm_level": 2, "anomalies": ["ALARM_L2"]}]
    back = rows(batch)
    assert back[0] == {**_reading(0), "late": False, "alarm_level": 0, "anomalies": []}
    assert back[1]["late"] is True and back[2]["anomalies"] == ["ALARM_L2"]
    assert ragged(batch) is None


def test_ragged_names_unequal_arrays_and_bad_flag_indexes() -> None:
    batch = columnar([_reading(0), _reading(1)])
    assert "unequal length" in str(ragged({**batch, "value": [1.0]}))
    out_of_range = {**batch, "flags": [{"index": 2, "late": True, "alarm_level": 0,
                                        "anomalies": []}]}
    assert "index 2 is out of order or out of range" in str(ragged(out_of_range))
    twice = {**batch, "flags": [{"index": 1, "late": True, "alarm_level": 0, "anomalies": []}] * 2}
    assert "out of order" in str(ragged(twice))
