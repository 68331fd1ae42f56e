"""AlarmEvent.avsc: the record the forwarder reads, through the project codec."""

from schemas.catalog import default_catalog
from schemas.codec import AvroDeserializer, AvroSerializer, SerializationContext
from schemas.registry import InMemoryRegistry
from tests.unit.streams.alarms.factories import alarm_event

parsed = default_catalog().schemas.parsed


def test_an_alarm_event_round_trips_through_the_codec() -> None:
    registry = InMemoryRegistry()
    context = SerializationContext("p.alarm.events", "AlarmEvent")
    event = alarm_event("A1", "CLEARED", at=30, acknowledged_by="王工", note="已处置",
                        tag="canary-1")
    data = AvroSerializer(registry)(event, context)
    decoded, _ = AvroDeserializer(registry)(data, context)
    assert decoded == event


def test_severity_is_the_same_enum_as_in_alert() -> None:
    def severity(record: str) -> dict[str, object]:
        field = next(f for f in parsed(record)["fields"] if f["name"] == "severity")
        kind: dict[str, object] = field["type"]
        return kind

    assert severity("AlarmEvent") == severity("Alert")
    assert severity("AlarmEvent")["name"] == "ebi.v1.Severity"


def test_what_every_event_must_carry() -> None:
    required = [f["name"] for f in parsed("AlarmEvent")["fields"] if "default" not in f]
    assert required == ["event_id", "alarm_id", "alarm_type", "severity", "transition",
                        "subject_type", "subject_id", "raised_at", "changed_at", "count",
                        "message_zh", "message_en"]
