"""A batching sink in the quix-streams style.

``add(record, topic, partition, offset)`` buffers a record per partition; ``due()`` says when a
partition's buffer reached its size or age; ``flush()`` hands everything buffered to the
backend's only method, ``write(batch)``, and returns the offsets to commit (last offset + 1
per partition), which the caller commits only then. A backend that cannot write now raises
:class:`BackpressureError`: nothing is dropped, the caller pauses the partitions and calls
``flush()`` again after ``retry_after`` seconds.

A retry is the same batch: the records of the failed attempt and its ``stamp_ms`` (the
backend's version and insert time), nothing added in the meantime, so a replicated store
recognises blocks it already took (ClickHouse's block deduplication). Records buffered
since then go in the next batch.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TopicPartition = tuple[str, int]


class BackpressureError(Exception):
    """The store cannot take the batch now; keep it and retry after ``retry_after`` s."""

    def __init__(self, retry_after: float, reason: str = "") -> None:
        super().__init__(reason or f"retry after {retry_after:.1f} s")
        self.retry_after = retry_after
        self.reason = reason


@dataclass
class PartitionBatch:
    topic: str
    partition: int
    started: float
    records: list[Any] = field(default_factory=list)
    last_offset: int = -1
    first_offset: int = -1
    rows: int = 0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Batch:
    partitions: list[PartitionBatch]
    # when the batch was first written (ms): a retry carries the same stamp
    stamp_ms: int = field(default_factory=_now_ms)

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.partitions)

    def records(self) -> list[Any]:
        return [r for p in self.partitions for r in p.records]


class BatchingSink(ABC):
    """Buffers per partition; flushes by size (rows) and by time (seconds)."""

    def __init__(self, max_rows: int, max_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self.clock = clock
        self._buffers: dict[TopicPartition, PartitionBatch] = {}
        self.buffered_rows = 0
        self._held: Batch | None = None    # a batch whose write failed: the next to write

    def add(self, record: Any, topic: str, partition: int, offset: int, rows: int = 1) -> None:
        key = (topic, partition)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = PartitionBatch(topic, partition, self.clock(),
                                                      first_offset=offset)
        buf.records.append(record)
        buf.last_offset = offset
        buf.rows += rows
        self.buffered_rows += rows

    def due(self) -> bool:
        """A partition is full, or its oldest record waited ``max_seconds``."""
        if self.buffered_rows >= self.max_rows:
            return True
        now = self.clock()
        return any(b.rows >= self.max_rows or now - b.started >= self.max_seconds
                   for b in self._buffers.values() if b.records)

    def seconds_until_due(self) -> float | None:
        """Seconds until the oldest buffered record has waited ``max_seconds`` (None when
        nothing is buffered): the longest a poll may block without delaying a flush."""
        starts = [b.started for b in self._buffers.values() if b.records]
        if not starts:
            return None
        return max(0.0, min(starts) + self.max_seconds - self.clock())

    def pending(self) -> bool:
        return any(b.records for b in self._buffers.values())

    def flush(self) -> dict[TopicPartition, int]:
        """Write everything buffered (or, after a failure, exactly the batch that failed);
        return {(topic, partition): offset to commit}. Raises :class:`BackpressureError`
        with the buffers kept."""
        batch = self._held or self._snapshot()
        if batch is None:
            return {}
        try:
            self.write(batch)
        except BackpressureError:
            self._held = batch
            raise
        self._held = None
        commits = {}
        for part in batch.partitions:
            key = (part.topic, part.partition)
            commits[key] = part.last_offset + 1
            buf = self._buffers.get(key)
            if buf is None:
                continue
            del buf.records[:len(part.records)]     # written; later records stay
            buf.rows -= part.rows
            if buf.records:   # waiting since before the write: due at once
                buf.first_offset = part.last_offset + 1
            else:
                self._buffers.pop(key)
        self.buffered_rows = sum(b.rows for b in self._buffers.values())
        return commits

    def _snapshot(self) -> Batch | None:
        """The buffered records as a batch of their own (later adds do not change it)."""
        parts = [PartitionBatch(b.topic, b.partition, b.started, list(b.records),
                                b.last_offset, b.first_offset, b.rows)
                 for b in self._buffers.values() if b.records]
        return Batch(parts) if parts else None

    def drop(self, topic: str, partition: int) -> None:
        """Forget a partition's buffer (it was revoked; its new owner re-reads it)."""
        buf = self._buffers.pop((topic, partition), None)
        if buf is not None:
            self.buffered_rows -= buf.rows
        held = self._held
        if held is not None:
            rest = [p for p in held.partitions if (p.topic, p.partition) != (topic, partition)]
            self._held = Batch(rest, held.stamp_ms) if rest else None

    @abstractmethod
    def write(self, batch: Batch) -> None:
        """Store the batch, or raise :class:`BackpressureError` (nothing is lost)."""
