import pytest

from streams.records.convert import convert, parse_timestamp

INCIDENT = {"incident_id": "i1", "report_id": "r1", "stage": "INITIAL",
            "kind": "PRODUCTION_SAFETY", "occurred_at": "2026-01-01T08:00:00+08:00",
            "reported_at": 1767226000000, "reporting_unit": "Huqiu emergency bureau",
            "reporting_level": "COUNTY", "region_code": "320505",
            "declared_level": "ORDINARY", "deaths": 1}


def codes(data: dict, record: str = "IncidentReport", from_text: bool = False) -> dict:
    out, errors = convert(record, data, from_text)
    assert (out is None) == bool(errors)
    return {e.field: e.code for e in errors}


def test_valid_incident_gets_defaults_and_millis() -> None:
    out, errors = convert("IncidentReport", INCIDENT)
    assert errors == []
    assert out is not None
    assert out["occurred_at"] == 1767225600000
    assert out["serious_injuries"] == 0 and out["publication"] == "INTERNAL"
    assert out["industry"] is None


def test_each_error_names_its_field() -> None:
    data = {**INCIDENT, "deaths": "1", "stage": "INITAL", "reported_at": "yesterday",
            "serious_injury": 3, "disaster_category": "FLOOD"}
    del data["region_code"]
    assert codes(data) == {"deaths": "WRONG_TYPE", "stage": "UNKNOWN_SYMBOL",
                           "reported_at": "BAD_TIMESTAMP", "serious_injury": "UNKNOWN_FIELD",
                           "disaster_category": "UNKNOWN_SYMBOL",
                           "region_code": "MISSING_FIELD"}


def test_messages_help() -> None:
    _, errors = convert("IncidentReport", {**INCIDENT, "stage": "initial"})
    assert "did you mean INITIAL?" in errors[0].message
    _, errors = convert("IncidentReport", {**INCIDENT, "seriousinjuries": 1})
    assert "did you mean serious_injuries?" in errors[0].message


def test_invalid_utf8_is_named() -> None:
    bad = b"Huqiu \xff bureau".decode("utf-8", "surrogateescape")
    assert codes({**INCIDENT, "reporting_unit": bad}) == {"reporting_unit": "INVALID_UTF8"}


def test_nested_paths() -> None:
    batch = {"gateway_id": "g", "enterprise_id": "e", "sent_at": 1767225600000, "sequence": 1,
             "readings": [{"reading_id": "r", "sensor_id": "s", "metric": "METHANE",
                           "value": True, "unit": "PERCENT_VOL", "quality": "GOOD",
                           "event_time": 1767225600000}]}
    assert codes(batch, "TelemetryBatch") == {"readings[0].value": "WRONG_TYPE"}


def test_text_values_are_parsed() -> None:
    row = {"enterprise_id": "e1", "name": "Works", "region_code": "110101",
           "industry": "coal mining", "updated_at": "1767225600000"}
    out, errors = convert("Enterprise", row, from_text=True)
    assert errors == [] and out is not None and out["updated_at"] == 1767225600000
    sensor = {"sensor_id": "s", "enterprise_id": "e", "gateway_id": "g", "metric": "METHANE",
              "unit": "PERCENT_VOL", "alarm_level1": "", "alarm_level2": "1.5",
              "updated_at": "2026-01-01T00:00:00Z"}
    out, errors = convert("Sensor", sensor, from_text=True)
    assert errors == [] and out is not None
    assert out["alarm_level1"] is None and out["alarm_level2"] == 1.5


def test_int_range_and_bool() -> None:
    assert codes({**INCIDENT, "deaths": 2**31}) == {"deaths": "WRONG_TYPE"}
    assert codes({**INCIDENT, "deaths": True}) == {"deaths": "WRONG_TYPE"}
    assert codes({**INCIDENT, "deaths": 2.5}) == {"deaths": "WRONG_TYPE"}
    assert codes({**INCIDENT, "deaths": 2.0}) == {}


@pytest.mark.parametrize("value", ["2026-01-01T00:00:00", "2026-13-01T00:00:00Z", "soon",
                                   1767225600, True, 1.5, None, [1]])
def test_bad_timestamps(value: object) -> None:
    assert isinstance(parse_timestamp(value), str)


@pytest.mark.parametrize(("value", "millis"), [
    ("2026-01-01T00:00:00Z", 1767225600000), ("2026-01-01T08:00:00+08:00", 1767225600000),
    (1767225600000, 1767225600000), ("1767225600000", 1767225600000),
    ("2026-01-01T00:00:00.250+00:00", 1767225600250)])
def test_good_timestamps(value: object, millis: int) -> None:
    assert parse_timestamp(value) == millis
