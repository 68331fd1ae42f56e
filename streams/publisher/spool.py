"""A durable on-disk FIFO for store-and-forward: append-only segment files plus a checkpoint.

Every entry gets a sequence number (0, 1, 2, ...). ``append`` writes and fsyncs before it
returns. ``ack(seq)`` marks an entry delivered; ``commit()`` persists the checkpoint (every
entry below it is delivered) atomically and deletes fully delivered segments. After a crash,
reopening the spool yields every entry from the checkpoint on again (at-least-once); a torn
last record (power loss mid-write) is detected by its CRC and cut off.

Segment ``<first seq, 20 digits>.seg`` holds records ``length(4) crc32(4) payload``;
payload = ``topic_len(2) topic record_len(2) record key_len(4, 0xFFFFFFFF = no key) key body``.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

_FRAME = struct.Struct(">II")
_NO_KEY = 0xFFFFFFFF
CHECKPOINT = "checkpoint"


class SpoolFullError(RuntimeError):
    """The spool holds as many undelivered bytes as it may; nothing was appended."""


class Entry(NamedTuple):
    seq: int
    topic: str          # full Kafka topic
    record: str         # schema name (the wire header is added when sending)
    key: bytes | None
    body: bytes         # Avro body without the Confluent header


def _encode(topic: str, record: str, key: bytes | None, body: bytes) -> bytes:
    t, r = topic.encode(), record.encode()
    parts = [struct.pack(">H", len(t)), t, struct.pack(">H", len(r)), r,
             struct.pack(">I", _NO_KEY if key is None else len(key)), key or b"", body]
    payload = b"".join(parts)
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _decode(seq: int, payload: bytes) -> Entry:
    (tlen,) = struct.unpack_from(">H", payload, 0)
    topic = payload[2:2 + tlen].decode()
    pos = 2 + tlen
    (rlen,) = struct.unpack_from(">H", payload, pos)
    record = payload[pos + 2:pos + 2 + rlen].decode()
    pos += 2 + rlen
    (klen,) = struct.unpack_from(">I", payload, pos)
    pos += 4
    key = None
    if klen != _NO_KEY:
        key, pos = payload[pos:pos + klen], pos + klen
    return Entry(seq, topic, record, key, payload[pos:])


def _scan(path: Path) -> Iterator[tuple[int, bytes]]:
    """(end offset, payload) of each intact record; stops at the first torn one."""
    data = path.read_bytes()
    pos = 0
    while pos + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, pos)
        end = pos + _FRAME.size + length
        payload = data[pos + _FRAME.size:end]
        if end > len(data) or zlib.crc32(payload) != crc:
            return
        yield end, payload
        pos = end


class Spool:
    """``Spool(path, max_bytes)``; thread-safe; see the module docstring for the format."""

    def __init__(self, path: str | Path, max_bytes: int = 256 * 1024 * 1024,
                 segment_bytes: int = 16 * 1024 * 1024, fsync: bool = True) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self._lock = threading.RLock()
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoint = self._read_checkpoint()
        self._acked: set[int] = set()
        self._segments: dict[int, int] = {}  # first seq -> entry count
        self._sizes: dict[int, int] = {}     # first seq -> bytes
        for seg in sorted(self.path.glob("*.seg")):
            first = int(seg.stem)
            count, size = 0, 0
            for end, _ in _scan(seg):
                count, size = count + 1, end
            if size != seg.stat().st_size:   # torn tail after a crash: cut it off
                with open(seg, "r+b") as handle:
                    handle.truncate(size)
                    os.fsync(handle.fileno())
            self._segments[first], self._sizes[first] = count, size
        self.next_seq = max((f + c for f, c in self._segments.items()), default=self.checkpoint)
        self.next_seq = max(self.next_seq, self.checkpoint)
        self._handle: BinaryIO | None = None
        if self._segments:  # kept open for appends until close()
            self._handle = open(self._segment_path(self._current()), "ab")  # noqa: SIM115

    # -- state ------------------------------------------------------------------------
    def _segment_path(self, first: int) -> Path:
        return self.path / f"{first:020d}.seg"

    def _current(self) -> int:
        return max(self._segments)

    def pending(self) -> int:
        """Entries not yet covered by the committed checkpoint."""
        return self.next_seq - self.checkpoint

    def used_bytes(self) -> int:
        return sum(self._sizes.values())

    def _read_checkpoint(self) -> int:
        try:
            return int((self.path / CHECKPOINT).read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    # -- writing ------------------------------------------------------------------------
    def append(self, topic: str, record: str, key: bytes | None, body: bytes) -> int:
        return self.append_many([(topic, record, key, body)])[0]

    def append_many(self, items: Iterable[tuple[str, str, bytes | None, bytes]]) -> list[int]:
        """Append entries with one fsync; returns their sequence numbers once on disk."""
        frames = [_encode(*item) for item in items]
        if not frames:
            return []
        with self._lock:
            size = sum(len(f) for f in frames)
            used = self.used_bytes()
            if used + size > self.max_bytes:
                raise SpoolFullError(
                    f"spool {self.path} is full: {used} bytes await delivery and {size} more "
                    f"would exceed the limit of {self.max_bytes} bytes (the broker has not "
                    "acknowledged them yet); deliver them with drain() once the broker is "
                    "reachable, or raise the limit with GatewayPublisher(spool_max_bytes=...)")
            if self._handle is None or self._sizes[self._current()] >= self.segment_bytes:
                self._roll()
            assert self._handle is not None
            first = self._current()
            self._handle.write(b"".join(frames))
            self._handle.flush()
            if self.fsync:
                os.fsync(self._handle.fileno())
            self._segments[first] += len(frames)
            self._sizes[first] += size
            seqs = list(range(self.next_seq, self.next_seq + len(frames)))
            self.next_seq += len(frames)
            return seqs

    def _roll(self) -> None:
        if self._handle is not None:
            self._handle.close()
        first = self.next_seq
        self._handle = open(self._segment_path(first), "ab")  # noqa: SIM115
        self._segments[first], self._sizes[first] = 0, 0
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        if not self.fsync:
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- reading and acknowledging -------------------------------------------------------
    def read(self, start: int, limit: int | None = None) -> Iterator[Entry]:
        """Entries with seq >= ``start`` in order (at most ``limit``)."""
        with self._lock:
            segments = sorted(self._segments.items())
        sent = 0
        for first, count in segments:
            if first + count <= start:
                continue
            seq = first
            for _, payload in _scan(self._segment_path(first)):
                if seq >= first + count:
                    break
                if seq >= start:
                    yield _decode(seq, payload)
                    sent += 1
                    if limit is not None and sent >= limit:
                        return
                seq += 1

    def ack(self, seq: int) -> None:
        with self._lock:
            if seq >= self.checkpoint:
                self._acked.add(seq)

    def acked_through(self) -> int:
        """The lowest sequence number not yet delivered (acks included, committed or not)."""
        with self._lock:
            mark = self.checkpoint
            while mark in self._acked:
                mark += 1
            return mark

    def commit(self) -> int:
        """Persist the checkpoint and delete delivered segments; returns the checkpoint."""
        with self._lock:
            mark = self.acked_through()
            if mark != self.checkpoint:
                self._acked = {s for s in self._acked if s >= mark}
                tmp = self.path / (CHECKPOINT + ".tmp")
                with open(tmp, "w") as handle:
                    handle.write(f"{mark}\n")
                    handle.flush()
                    if self.fsync:
                        os.fsync(handle.fileno())
                os.replace(tmp, self.path / CHECKPOINT)
                self._fsync_dir()
                self.checkpoint = mark
            current = self._current() if self._segments else None
            for first, count in list(self._segments.items()):
                if first + count <= self.checkpoint:
                    if first == current and self._handle is not None:
                        self._handle.close()
                        self._handle = None
                    self._segment_path(first).unlink(missing_ok=True)
                    del self._segments[first], self._sizes[first]
            return self.checkpoint

    def close(self) -> None:
        with self._lock:
            self.commit()
            if self._handle is not None:
                self._handle.close()
                self._handle = None
