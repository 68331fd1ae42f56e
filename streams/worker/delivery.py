"""The worker's output producer: librdkafka (confluent-kafka), deliveries counted per batch.

Every output of a batch is handed to librdkafka with ``produce`` (a C call; acks=all,
idempotent, the Java client's murmur2 partitioner so keys land where they always did) and
counted in the batch's :class:`Deliveries`; a poll thread serves the delivery reports and
wakes the event loop once per batch, when the last output of it is acknowledged (or at the
first failure). No future per message: at small envelopes the per-message futures and
aiokafka's Python send path cost more than the processing.

faust's own producer stays for what faust writes itself (table changelogs).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class DeliveryFailed(RuntimeError):
    """Kafka did not take an output."""


class Deliveries:
    """The outputs of one batch: ``await deliveries.wait()`` returns once Kafka acknowledged
    every one of them and raises :class:`DeliveryFailed` at the first that failed.

    Thread safety without a lock: ``sent`` is written by the event loop only, ``done`` and
    ``error`` by the poll thread only; whichever side sees the batch complete wakes the loop
    (waking it twice is harmless)."""

    __slots__ = ("_future", "_loop", "done", "error", "sealed", "sent")

    def __init__(self) -> None:
        self.sent = 0
        self.done = 0
        self.error: str | None = None
        self.sealed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._future: asyncio.Future[None] | None = None

    def add(self) -> None:
        self.sent += 1

    def delivered(self, error: Any = None, message: Any = None) -> None:
        """One delivery report (poll thread; or at once from a fake producer)."""
        if error is not None and self.error is None:
            where = f" ({message.topic()}[{message.partition()}])" if message is not None \
                else ""
            self.error = f"{error}{where}"
        self.done += 1
        if self.error is not None or (self.sealed and self.done >= self.sent):
            self._wake()

    def _wake(self) -> None:
        loop, future = self._loop, self._future
        if loop is not None and future is not None:
            loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        future = self._future
        if future is None or future.done():
            return
        if self.error is not None:
            future.set_exception(DeliveryFailed(f"an output was not delivered: {self.error}"))
        elif self.done >= self.sent:
            future.set_result(None)

    async def wait(self) -> int:
        """Wait for every delivery; returns how many outputs there were."""
        self._loop = asyncio.get_running_loop()
        self._future = self._loop.create_future()
        self.sealed = True
        if self.error is not None or self.done >= self.sent:
            self._settle()
        await self._future
        return self.sent


class OutputProducer:
    """confluent-kafka's Producer (made by ``make`` at the first output: no I/O before) and
    the thread that serves its delivery reports."""

    def __init__(self, make: Callable[[], Any], poll_every: float = 0.05) -> None:
        self.make = make
        self.producer: Any = None
        self.poll_every = poll_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_settings(cls, settings: Any, max_request_bytes: int) -> OutputProducer:
        from streams import clients

        return cls(lambda: clients.producer(settings, **{
            "acks": "all", "enable.idempotence": True, "linger.ms": 5,
            "batch.size": 1024 * 1024, "message.max.bytes": max_request_bytes,
            "partitioner": "murmur2_random", "queue.buffering.max.kbytes": 256 * 1024,
        }))

    def start(self) -> None:
        if self._thread is None:
            self.producer = self.make()
            self._thread = threading.Thread(target=self._serve, name="output-deliveries",
                                            daemon=True)
            self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(self.poll_every)

    def produce(self, topic: str, key: bytes | None, value: bytes,
                deliveries: Deliveries) -> None:
        if self._thread is None:
            self.start()
        deliveries.add()
        while True:
            try:
                self.producer.produce(topic, value, key, on_delivery=deliveries.delivered)
                return
            except BufferError:   # librdkafka's queue is full: the poll thread drains it
                time.sleep(0.005)

    def close(self, timeout: float = 30.0) -> int:
        """Deliver what is queued (at most ``timeout`` s); returns what is left."""
        if self.producer is None:
            return 0
        left = int(self.producer.flush(timeout))
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return left
