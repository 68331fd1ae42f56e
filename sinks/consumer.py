"""The consumer loop of ``ebi sink``: its own group, explicit commits after each write.

confluent-kafka ``Consumer`` with auto-commit off; ``consume(n, timeout)`` in a loop; each
message goes through the injected decoder (``decode(value, key, topic, partition, offset)
-> (item, rows)``) into any :class:`~sinks.base.BatchingSink`, which decides when to write;
offsets (last + 1 per partition) are committed only after the write succeeded. When
ClickHouse cannot take a batch, every assigned partition is paused (the buffered rows stay
in memory, nothing more is fetched) and the write is retried with exponential backoff; on
success the partitions resume. Consumption also pauses while the buffer holds more than
``max_buffered_rows`` (bounded memory).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from sinks.base import BackpressureError, BatchingSink, TopicPartition
from streams.metrics import Metrics

log = logging.getLogger(__name__)
Decoder = Callable[[bytes | None, bytes | None, str, int, int], tuple[Any, int]]


# librdkafka settings of the sink's consumer (besides address, group, security, logging)
CONSUMER_CONFIG: dict[str, Any] = {
    "enable.auto.commit": False, "auto.offset.reset": "earliest",
    "enable.partition.eof": False, "queued.max.messages.kbytes": 32768,
    "max.poll.interval.ms": 300000, "session.timeout.ms": 10000,
}


class SinkLoop:
    def __init__(self, consumer: Any, sink: BatchingSink, decode: Decoder, metrics: Metrics,
                 group: str, topics: list[str], max_buffered_rows: int,
                 poll_messages: int = 5000, poll_timeout: float = 0.2,
                 clock: Callable[[], float] = time.monotonic,
                 on_cycle: Callable[[], None] | None = None) -> None:
        self.consumer = consumer
        self.sink = sink
        self.decode = decode
        self.metrics = metrics
        self.group = group
        self.topics = topics
        self.max_buffered_rows = max_buffered_rows
        self.poll_messages = poll_messages
        self.poll_timeout = poll_timeout
        self.clock = clock
        self.on_cycle = on_cycle
        self.paused = False
        self.retry_at = 0.0
        self.assigned: list[Any] = []
        self.committed: dict[TopicPartition, int] = {}
        self._lag_at = float("-inf")

    # -- rebalance callbacks ---------------------------------------------------------------
    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        self.assigned = list(partitions)
        if self.paused and partitions:
            consumer.pause(partitions)

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        with contextlib.suppress(BackpressureError):
            self._flush()
        for tp in partitions:
            self.sink.drop(tp.topic, tp.partition)
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self.assigned = [tp for tp in self.assigned if (tp.topic, tp.partition) not in gone]

    # -- loop ------------------------------------------------------------------------------
    def run(self, should_stop: Callable[[], bool]) -> None:
        self.consumer.subscribe(self.topics, on_assign=self._on_assign,
                                on_revoke=self._on_revoke)
        try:
            while not should_stop():
                self.step()
            self.finish()
        finally:
            self.consumer.close()

    def step(self) -> None:
        """One cycle: fetch, buffer, maybe write and commit."""
        # consume(n, timeout) blocks until n messages arrived or the timeout ended, so at a
        # low rate every message waited a whole poll_timeout before the batch clock even
        # started. Take what is queued without waiting; when nothing is, block in poll()
        # (returns at the first message), never past the moment the oldest buffer is due.
        messages = self.consumer.consume(self.poll_messages, 0)
        if not messages:
            left = self.sink.seconds_until_due()
            timeout = self.poll_timeout if left is None else min(self.poll_timeout, left)
            first = self.consumer.poll(timeout)
            if first is not None:
                messages = [first, *self.consumer.consume(self.poll_messages - 1, 0)]
        for msg in messages:
            error = msg.error()
            if error is not None:
                log.warning("consumer error on %s [%s]: %s", msg.topic(), msg.partition(),
                            error)
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            item, rows = self.decode(msg.value(), msg.key(), topic, partition, offset)
            self.sink.add(item, topic, partition, offset, max(rows, 1))
            if self.sink.buffered_rows >= self.sink.max_rows and not self.paused:
                self._try_flush()  # a full batch goes out at once, even mid-poll
        now = self.clock()
        if not self.paused and self.sink.buffered_rows >= self.max_buffered_rows:
            self._pause("buffer full")
        waiting = self.paused and self.sink.pending()
        if now >= self.retry_at and (self.sink.due() or waiting):
            self._try_flush()
        if now - self._lag_at >= 5.0:
            self._lag_at = now
            self._update_lag()
        if self.on_cycle is not None:
            self.on_cycle()

    def _try_flush(self) -> None:
        try:
            self._flush()
        except BackpressureError as exc:
            self.retry_at = self.clock() + exc.retry_after
            self._pause(exc.reason)
            log.warning("ClickHouse unavailable, paused; retry in %.1f s: %s",
                        exc.retry_after, exc.reason)
        else:
            if self.paused:
                self._resume()

    def finish(self, attempts: int = 5) -> None:
        """Write what is buffered before stopping (a few tries; otherwise it is replayed)."""
        for _ in range(attempts):
            try:
                self._flush()
                return
            except BackpressureError as exc:
                time.sleep(min(exc.retry_after, 2.0))
        log.warning("stopping with %d unwritten rows; they will be re-read on restart",
                    self.sink.buffered_rows)

    def _flush(self) -> None:
        commits = self.sink.flush()
        if commits:
            self._commit(commits)

    def _commit(self, commits: dict[TopicPartition, int]) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka import TopicPartition as KafkaTP

        offsets = [KafkaTP(topic, partition, offset)
                   for (topic, partition), offset in commits.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
            self.committed.update(commits)
        except KafkaException as exc:  # e.g. a rebalance; the rows are in, a replay is harmless
            log.warning("commit failed (rows already written; will be re-read): %s", exc)

    def _pause(self, reason: str) -> None:
        if not self.paused and self.assigned:
            self.consumer.pause(self.assigned)
        self.paused = True
        self.metrics.sink_paused.set(1)
        log.info("consumption paused: %s", reason)

    def _resume(self) -> None:
        if self.assigned:
            self.consumer.resume(self.assigned)
        self.paused = False
        self.metrics.sink_paused.set(0)
        log.info("consumption resumed")

    def caught_up(self) -> bool:
        """Assigned, nothing buffered, and every partition read up to its high watermark."""
        if not self.assigned or self.sink.pending():
            return False
        try:
            positions = self.consumer.position(self.assigned)
            unread = [tp for tp in positions if tp.offset < 0]  # nothing fetched yet
            if unread:  # then the group's committed offset says how far it got
                done_by = {(tp.topic, tp.partition): tp.offset
                           for tp in self.consumer.committed(unread, timeout=5)}
            for tp in positions:
                low, high = self.consumer.get_watermark_offsets(tp, timeout=5, cached=False)
                done = tp.offset if tp.offset >= 0 else done_by[(tp.topic, tp.partition)]
                if max(done, low) < high:
                    return False
        except Exception:  # a broker hiccup: just not caught up yet
            return False
        return True

    def _update_lag(self) -> None:
        if not self.assigned:
            return
        try:
            positions = self.consumer.position(self.assigned)
        except Exception:  # lag is best effort
            return
        for tp in positions:
            try:
                _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            except Exception:
                continue
            if high is None or high < 0 or tp.offset < 0:
                continue
            self.metrics.consumer_lag.labels(group=self.group, topic=tp.topic,
                                             partition=str(tp.partition)).set(high - tp.offset)
