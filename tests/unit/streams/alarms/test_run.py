"""The Kafka side of the forwarder with a fake consumer (the real one: the integration test)."""

import json
import threading
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaException

from schemas.codec import DecodeError
from streams.alarms import run
from streams.alarms.forwarder import AlarmForwarder
from streams.alarms.run import AlarmSource, SourceError, forward
from tests.unit.streams.alarms.factories import T0, alarm_event
from tests.unit.streams.alarms.fakes import FakeAlertmanager

TOPIC = "p.alarm.events"


@dataclass
class Message:
    partition_: int
    offset_: int
    value_: bytes | None
    error_: object = None

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def value(self) -> bytes | None:
        return self.value_

    def error(self) -> object:
        return self.error_


class FakeConsumer:
    """Partitions of messages; ``consume`` hands them out in batches once assigned."""

    def __init__(self, partitions: dict[int, list[bytes | None]] | None,
                 fail_metadata: int = 0) -> None:
        self.partitions = partitions
        self.fail_metadata = fail_metadata
        self.assigned: list[Any] = []
        self.queue: list[Message] = []

    def list_topics(self, topic: str, timeout: float) -> Any:
        if self.fail_metadata:
            self.fail_metadata -= 1
            raise KafkaException("broker transport failure")
        topics = {}
        if self.partitions is not None:
            topics[topic] = SimpleNamespace(error=None, partitions={p: None for p in
                                                                    self.partitions})
        return SimpleNamespace(topics=topics)

    def get_watermark_offsets(self, tp: Any, timeout: float) -> tuple[int, int]:
        assert self.partitions is not None
        return 0, len(self.partitions[tp.partition])

    def assign(self, partitions: list[Any]) -> None:
        assert self.partitions is not None
        self.assigned = partitions
        self.queue = [Message(p, offset, value) for p in sorted(self.partitions)
                      for offset, value in enumerate(self.partitions[p])]

    def add(self, partition: int, value: bytes | None) -> None:
        assert self.partitions is not None
        offset = len(self.partitions[partition])
        self.partitions[partition].append(value)
        self.queue.append(Message(partition, offset, value))

    def consume(self, num: int, timeout: float) -> list[Message]:
        batch, self.queue = self.queue[:num], self.queue[num:]
        return batch


def encode(event: dict[str, Any]) -> bytes:
    """JSON with times as epoch milliseconds (the forwarder takes those as well)."""
    return json.dumps(event, default=lambda t: int(t.timestamp() * 1000)).encode()


def decode(data: bytes) -> dict[str, Any]:
    if data == b"garbage":
        raise DecodeError("NOT_CONFLUENT_FRAMED", "not framed")
    event: dict[str, Any] = json.loads(data)
    return event


def never() -> bool:
    return False


def test_open_assigns_every_partition_from_the_beginning() -> None:
    consumer = FakeConsumer({0: [b"x"], 1: []})
    source = AlarmSource(consumer, decode, TOPIC)
    assert source.open(never)
    assert [(tp.topic, tp.partition, tp.offset) for tp in consumer.assigned] == [
        (TOPIC, 0, OFFSET_BEGINNING), (TOPIC, 1, OFFSET_BEGINNING)]
    assert source.replaying


def test_an_empty_topic_has_nothing_to_replay() -> None:
    source = AlarmSource(FakeConsumer({0: [], 1: []}), decode, TOPIC)
    assert source.open(never)
    assert not source.replaying


def test_open_waits_for_the_topic_and_can_be_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run.time, "sleep", lambda s: None)
    calls = iter([False, False, True])
    assert not AlarmSource(FakeConsumer(None), decode, TOPIC).open(lambda: next(calls))


def test_open_fails_when_kafka_does_not_answer_at_all() -> None:
    with pytest.raises(SourceError, match="broker transport failure"):
        AlarmSource(FakeConsumer({0: []}, fail_metadata=1), decode, TOPIC).open(never)


def test_open_waits_while_a_new_topic_has_no_leader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run.time, "sleep", lambda s: None)
    consumer = FakeConsumer({0: [b"x"], 1: []})
    failures = [KafkaException("Broker: Not leader for partition")]
    offsets = consumer.get_watermark_offsets

    def flaky(tp: Any, timeout: float) -> tuple[int, int]:
        if failures and tp.partition == 1:
            raise failures.pop()
        return offsets(tp, timeout)

    consumer.get_watermark_offsets = flaky  # type: ignore[method-assign]
    source = AlarmSource(consumer, decode, TOPIC)
    assert source.open(never)
    assert not failures and len(consumer.assigned) == 2 and source.replaying


def test_replay_flags_history_then_live_events() -> None:
    consumer = FakeConsumer({0: [encode(alarm_event("A1")), None],
                             1: [encode(alarm_event("A2", subject_id="S2"))]})
    source = AlarmSource(consumer, decode, TOPIC)
    source.open(never)
    history = source.read()
    assert [(e["alarm_id"], replay) for e, replay in history] == [("A1", True), ("A2", True)]
    assert not source.replaying  # every partition read to its end at start (tombstone too)
    consumer.add(0, encode(alarm_event("A3", subject_id="S3")))
    assert [(e["alarm_id"], r) for e, r in source.read()] == [("A3", False)]
    assert source.replayed == 2


def test_bad_messages_are_skipped_and_kafka_errors_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    consumer = FakeConsumer({0: [b"garbage", encode(alarm_event("A1"))]})
    source = AlarmSource(consumer, decode, TOPIC)
    source.open(never)
    consumer.queue.insert(0, Message(0, -1, None, error_="_TRANSPORT: broker down"))
    events = source.read()
    assert [e["alarm_id"] for e, _ in events] == ["A1"]
    assert source.skipped == 1
    assert "skipped: NOT_CONFLUENT_FRAMED" in caplog.text and "broker down" in caplog.text


def test_a_message_that_cannot_be_decoded_now_is_held_not_skipped() -> None:
    consumer = FakeConsumer({0: [encode(alarm_event("A1")), encode(alarm_event("A2"))]})
    registry_up = {"now": False}

    def flaky(data: bytes) -> dict[str, Any]:
        if not registry_up["now"]:
            raise OSError("registry unreachable")
        return decode(data)

    source = AlarmSource(consumer, flaky, TOPIC)
    source.open(never)
    assert source.read() == []
    assert source.read() == []
    registry_up["now"] = True
    assert [e["alarm_id"] for e, _ in source.read()] == ["A1", "A2"]
    assert source.skipped == 0


def test_forward_replays_without_sending_then_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    history = [encode(alarm_event("PAST")), encode(alarm_event("PAST", "CLEARED", at=5)),
               encode(alarm_event("NOW", subject_id="S2"))]
    consumer = FakeConsumer({0: history})
    source = AlarmSource(consumer, decode, TOPIC)
    source.open(never)
    am = FakeAlertmanager()
    applied: list[tuple[str, bool]] = []
    fw = AlarmForwarder(am, repost_every=1, lease=10, clock=lambda: T0.timestamp() + 3600)
    original = fw.apply

    def spy(event: dict[str, Any], replay: bool = False) -> bool:
        applied.append((event["alarm_id"], replay))
        return original(event, replay=replay)

    monkeypatch.setattr(fw, "apply", spy)
    rounds = iter(range(3))
    forward(source, fw, lambda: next(rounds, None) is None, flush_every=0)
    assert applied == [("PAST", True), ("PAST", True), ("NOW", True)]
    assert {a["labels"]["alarm_id"] for a in am.alerts()} == {"NOW"}


def test_forward_survives_whatever_one_round_trips_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run.time, "sleep", lambda s: None)
    source = AlarmSource(FakeConsumer({0: []}), decode, TOPIC)
    source.open(never)
    calls = {"n": 0}

    def broken(max_messages: int = 500, timeout: float = 0.2) -> list[Any]:
        calls["n"] += 1
        raise RuntimeError("boom")

    monkeypatch.setattr(source, "read", broken)
    stop = threading.Event()
    rounds = iter(range(3))
    forward(source, AlarmForwarder(FakeAlertmanager()),
            lambda: next(rounds, None) is None or stop.is_set())
    assert calls["n"] == 3
