"""Deliveries counted per batch, served by a poll thread (a fake librdkafka producer)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from streams.worker.delivery import Deliveries, DeliveryFailed, OutputProducer


class FakeRdkafka:
    """produce() queues the delivery report; poll() (any thread) serves them."""

    def __init__(self, fail_topic: str = "", full_times: int = 0) -> None:
        self.queued: list[tuple[Any, str]] = []
        self.lock = threading.Lock()
        self.fail_topic = fail_topic
        self.full_times = full_times
        self.threads: set[str] = set()

    def produce(self, topic: str, value: bytes, key: bytes | None, on_delivery: Any) -> None:
        if self.full_times:
            self.full_times -= 1
            raise BufferError("queue full")
        with self.lock:
            self.queued.append((on_delivery, topic))

    def poll(self, timeout: float) -> int:
        with self.lock:
            queued, self.queued = self.queued, []
        for callback, topic in queued:
            self.threads.add(threading.current_thread().name)
            callback("broker said no" if topic == self.fail_topic else None, None)
        if not queued:
            threading.Event().wait(timeout / 10)
        return len(queued)

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return 0


def _send(producer: OutputProducer, topics: list[str]) -> int:
    async def go() -> int:
        batch = Deliveries()
        for topic in topics:
            producer.produce(topic, None, b"v", batch)
        return await asyncio.wait_for(batch.wait(), 10)
    return asyncio.run(go())


def test_a_batch_completes_when_the_poll_thread_has_served_every_report() -> None:
    fake = FakeRdkafka()
    producer = OutputProducer(lambda: fake, poll_every=0.01)
    assert _send(producer, ["a"] * 500) == 500
    assert fake.threads == {"output-deliveries"}       # reports served off the event loop
    assert producer.close() == 0


def test_a_failed_delivery_fails_the_batch() -> None:
    producer = OutputProducer(lambda: FakeRdkafka(fail_topic="b"), poll_every=0.01)
    with pytest.raises(DeliveryFailed, match="broker said no"):
        _send(producer, ["a", "b", "a"])
    producer.close()


def test_a_full_queue_waits_instead_of_dropping() -> None:
    fake = FakeRdkafka(full_times=3)
    producer = OutputProducer(lambda: fake, poll_every=0.01)
    assert _send(producer, ["a", "a"]) == 2
    producer.close()


def test_an_empty_batch_and_reports_before_the_wait() -> None:
    async def go() -> tuple[int, int]:
        empty = Deliveries()
        early = Deliveries()
        early.add()
        early.delivered()         # reported before anyone waits
        return await empty.wait(), await early.wait()
    assert asyncio.run(go()) == (0, 1)


def test_nothing_is_made_before_the_first_output() -> None:
    made: list[FakeRdkafka] = []

    def make() -> FakeRdkafka:
        made.append(FakeRdkafka())
        return made[-1]

    producer = OutputProducer(make)
    assert made == [] and producer.close() == 0
