"""The forwarding loop: the alarm events (``alarm.events``) from Kafka into an
:class:`AlarmForwarder`.

At start the source reads the topic from the beginning of every partition up to the end
offsets it saw at start (on a compacted topic, the latest event of each alarm): that rebuilds
the active set. Nothing is sent to Alertmanager during the replay, so an alarm raised and
cleared in the history never flickers into a notification; then the loop applies live events
and flushes after each batch, and at least every ``flush_every`` seconds for the re-posts.

The consumer is assigned every partition and commits nothing: each forwarder reads the whole
topic, so two of them can run side by side for redundancy.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from schemas.catalog import default_catalog
from schemas.catalog.model import Catalog, Topic
from schemas.codec import DecodeError
from streams.alarms.forwarder import AlarmForwarder, Throttle

log = logging.getLogger("ebi.alarms")

REPLAY_IDLE = 3.0          # a replay that receives nothing for this long is over


def events_topic(catalog: Catalog | None = None) -> Topic:
    """The alarm events topic: the catalog's output with the role ``alarm`` (logical name;
    ``Settings.topic()`` adds the prefix)."""
    return (catalog or default_catalog()).output("alarm").topic


class SourceError(RuntimeError):
    """The alarm topic cannot be read (Kafka unreachable at start)."""


class AlarmSource:
    """Decoded AlarmEvents of one topic, each with whether it is part of the start-up
    replay. ``decode(bytes) -> dict`` raises :class:`DecodeError` for a bad message (skipped,
    logged) and anything else for a passing trouble (the registry is down): then the message
    is held and decoded again by the next :meth:`read`, so nothing is skipped for it."""

    def __init__(self, consumer: Any, decode: Callable[[bytes], dict[str, Any]], topic: str,
                 log_every: float = 30.0) -> None:
        self.consumer = consumer
        self.decode = decode
        self.topic = topic
        self.replaying = True
        self.replayed = 0
        self.skipped = 0
        self._ends: dict[int, int] = {}   # partition -> end offset at start (replay bound)
        self._held: deque[Any] = deque()
        self._last_message = 0.0
        self._throttle = Throttle(log_every)

    def open(self, should_stop: Callable[[], bool], timeout: float = 10.0,
             wait_every: float = 2.0) -> bool:
        """Assign every partition from the beginning; waits while the topic does not exist
        yet (the worker creates it). False when stopped first; :class:`SourceError` when Kafka
        does not answer at all."""
        from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

        first = True
        while not should_stop():
            try:
                metadata = self.consumer.list_topics(self.topic, timeout=timeout)
            except KafkaException as exc:
                if first:
                    raise SourceError(f"cannot read the topics of Kafka: {exc}") from exc
                self._log("metadata", f"Kafka metadata for {self.topic} failed: {exc}")
                time.sleep(wait_every)
                continue
            first = False
            topic = metadata.topics.get(self.topic)
            if topic is None or topic.error is not None or not topic.partitions:
                self._log("missing", f"waiting for topic {self.topic} (not created yet: the "
                                     "worker creates it)")
                time.sleep(wait_every)
                continue
            partitions = sorted(topic.partitions)
            events = 0
            try:
                for partition in partitions:
                    low, high = self.consumer.get_watermark_offsets(
                        TopicPartition(self.topic, partition), timeout=timeout)
                    if high > low:
                        self._ends[partition] = high
                        events += high - low
            except KafkaException as exc:   # e.g. a new topic without a leader yet
                self._ends.clear()
                self._log("watermarks", f"end offsets of {self.topic} unknown yet, retrying: "
                                        f"{exc}")
                time.sleep(wait_every)
                continue
            self.consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING)
                                  for p in partitions])
            self._last_message = time.monotonic()
            self.replaying = bool(self._ends)
            log.info("alarm source: %s, %d partition(s), replaying %d event(s) at most",
                     self.topic, len(partitions), events)
            return True
        return False

    def read(self, max_messages: int = 500, timeout: float = 0.2) -> list[tuple[dict[str, Any],
                                                                              bool]]:
        """The next decoded events, each with its replay flag."""
        messages = list(self._held)
        self._held.clear()
        if not messages:
            messages = self.consumer.consume(max_messages, timeout=timeout)
        out: list[tuple[dict[str, Any], bool]] = []
        for index, message in enumerate(messages):
            error = message.error()
            if error is not None:
                self._log("kafka", f"reading {self.topic}: {error}")
                continue
            self._last_message = time.monotonic()
            replay = self._in_replay(message.partition(), message.offset())
            value = message.value()
            if value is None:
                continue  # a tombstone: compaction forgets the alarm
            try:
                event = self.decode(value)
            except DecodeError as exc:
                self.skipped += 1
                self._log("decode", f"alarm event at {self.topic}[{message.partition()}]@"
                                    f"{message.offset()} skipped: {exc}")
                continue
            except Exception as exc:
                self._held.extend(messages[index:])
                self._log("held", f"cannot decode alarm events now, retrying: "
                                  f"{type(exc).__name__}: {exc}")
                break
            if replay:
                self.replayed += 1
            out.append((event, replay))
        if self.replaying and (not self._ends
                               or time.monotonic() - self._last_message > REPLAY_IDLE):
            self.replaying = False
            self._ends.clear()
        return out

    def _in_replay(self, partition: int, offset: int) -> bool:
        end = self._ends.get(partition)
        if end is None:
            return False
        if offset + 1 >= end:
            del self._ends[partition]
        return offset < end

    def _log(self, key: str, message: str) -> None:
        held = self._throttle(key)
        if held is not None:
            log.warning("%s%s", message, f" (and {held} more like it)" if held else "")


def forward(source: AlarmSource, forwarder: AlarmForwarder, should_stop: Callable[[], bool],
            flush_every: float = 1.0, status_every: float = 300.0) -> None:
    """Apply events and flush until ``should_stop()``; never raises for a passing trouble."""
    throttle = Throttle(30.0)
    last_flush = last_status = time.monotonic()
    was_replaying = source.replaying
    while not should_stop():
        try:
            events = source.read()
            for event, replay in events:
                forwarder.apply(event, replay=replay)
            if was_replaying and not source.replaying:
                log.info("alarm replay done: %d event(s), %d active alarm(s)", source.replayed,
                         len(forwarder.active))
            was_replaying = source.replaying
            now = time.monotonic()
            if not source.replaying and (events or now - last_flush >= flush_every):
                forwarder.flush()
                last_flush = now
            if now - last_status >= status_every:
                last_status = now
                log.info("alarms: %d active, pending %s, %s", len(forwarder.active),
                         forwarder.pending(), forwarder.stats.as_dict())
        except Exception as exc:  # keep forwarding whatever one iteration tripped on
            held = throttle("loop")
            if held is not None:
                log.error("alarm loop: %s: %s", type(exc).__name__, exc, exc_info=True)
            time.sleep(1.0)
