from datetime import UTC, datetime, timedelta

import pytest

from streams.alarms.labels import (
    AlarmEventError,
    alarm_annotations,
    alarm_labels,
    province,
    rfc3339,
    to_alert,
)
from tests.unit.streams.alarms.factories import T0, alarm_event


def test_labels_identify_and_route_the_alarm() -> None:
    assert alarm_labels(alarm_event()) == {
        "alertname": "ALARM_L2", "severity": "critical", "province": "32",
        "region_code": "320506", "enterprise_id": "E-1", "gateway_id": "G-3",
        "subject": "sensor:S-7", "alarm_id": "A1",
    }


def test_empty_values_are_left_out_and_canary_data_is_tagged() -> None:
    labels = alarm_labels(alarm_event(region_code="", enterprise_id="", gateway_id="",
                                      tag="canary-1", severity="INFO"))
    assert labels == {"alertname": "ALARM_L2", "severity": "info", "subject": "sensor:S-7",
                      "alarm_id": "A1", "tag": "canary-1"}


@pytest.mark.parametrize(("code", "expected"), [("320506", "32"), ("110000", "11"),
                                                ("4", ""), ("", ""), ("000000", ""),
                                                ("XX0101", "")])
def test_province_is_the_first_two_digits(code: str, expected: str) -> None:
    assert province(code) == expected


def test_what_changes_while_active_is_not_a_label() -> None:
    raised = alarm_labels(alarm_event())
    updated = alarm_labels(alarm_event(transition="UPDATED", at=30, count=9, peak=3.0,
                                       value=2.0, message_zh="新消息"))
    assert raised == updated


@pytest.mark.parametrize("missing", ["alarm_id", "alarm_type", "subject_type", "subject_id"])
def test_an_event_without_identity_is_refused(missing: str) -> None:
    with pytest.raises(AlarmEventError, match=f"without {missing}"):
        alarm_labels(alarm_event(**{missing: ""}))


def test_an_unknown_severity_is_refused() -> None:
    with pytest.raises(AlarmEventError, match="severity 'FATAL'"):
        alarm_labels(alarm_event(severity="FATAL"))


def test_annotations_in_chinese_and_english() -> None:
    notes = alarm_annotations(alarm_event(count=3))
    assert notes["summary"] == "甲烷浓度 1.62% 超过二级报警值"
    assert notes["summary_en"] == "methane 1.62 % above the second alarm level"
    assert "当前值 1.62，峰值 1.7，阈值 1.5" in notes["description"]
    assert "发生 3 次" in notes["description"]
    assert notes["description_en"] == (
        "ALARM_L2 on sensor:S-7 (enterprise E-1, region 320506): value 1.62, peak 1.7, "
        "threshold 1.5, 3 occurrence(s) since 2026-11-28T08:00:00.000Z.")
    assert "acknowledged" not in notes
    acked = alarm_annotations(alarm_event(acknowledged_by="王工", note="已派人"))
    assert acked["acknowledged"] == "王工: 已派人"


def test_annotations_without_numbers_or_messages() -> None:
    notes = alarm_annotations(alarm_event(value=None, peak=None, threshold=None,
                                          message_zh="", alarm_type="GATEWAY_OFFLINE"))
    assert notes["summary"] == notes["summary_en"]
    assert "当前值 -，峰值 -，阈值 -" in notes["description"]


def test_alert_times_are_rfc3339() -> None:
    ends = T0 + timedelta(minutes=4)
    alert = to_alert(alarm_event(), ends, generator_url="https://ebi.example/alarms/{alarm_id}")
    assert alert["startsAt"] == "2026-11-28T08:00:00.000Z"
    assert alert["endsAt"] == "2026-11-28T08:04:00.000Z"
    assert alert["generatorURL"] == "https://ebi.example/alarms/A1"
    assert "generatorURL" not in to_alert(alarm_event(), ends)


def test_alert_never_ends_before_it_starts() -> None:
    alert = to_alert(alarm_event(), T0 - timedelta(seconds=5))
    assert alert["endsAt"] == alert["startsAt"]


def test_times_from_epoch_millis_and_naive_datetimes() -> None:
    millis = int(T0.timestamp() * 1000) + 123
    assert rfc3339(millis) == "2026-11-28T08:00:00.123Z"
    assert rfc3339(datetime(2026, 11, 28, 8, 0)) == "2026-11-28T08:00:00.000Z"
    assert rfc3339(T0.astimezone(UTC)) == "2026-11-28T08:00:00.000Z"
    with pytest.raises(AlarmEventError, match="raised_at: expected a timestamp"):
        to_alert(alarm_event(raised_at="yesterday"), T0)
