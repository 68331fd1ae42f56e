"""Processor state in faust tables, with a decoded in-memory cache in front.

Values are JSON (compact dicts, see the processors' docstrings), keys the record key bytes.
Reads go to the cache, then to the table (rocksdict store, recovered from its changelog
topic after a restart or a rebalance). A value read from the table is decoded once per key
per cache lifetime, and passed through the table's ``upgrade`` (the catalog's
``State.upgrade``): states an earlier version wrote in another layout are converted there,
and written back in the current one with the key's next change.

Writes happen once per key per batch: the state is snapshotted when the batch is processed
and written after the batch's outputs were acknowledged (:meth:`StateCache.snapshot`,
:meth:`StateCache.write`; see :mod:`streams.worker.batches`), so the table never runs ahead
of what was delivered. The cache is dropped whenever partitions move.

faust decides which table partition (and changelog partition) a write goes to from the
"current event"; a batch holds events of several partitions, so each key is written with the
last event that touched it made current (same partition as the key, since the input topics
are keyed and co-partitioned with the table).

A key its clock expired (the state dropped by a tick, see :mod:`streams.worker.due`) is
deleted from the table by :meth:`StateCache.expire`, outside any batch: no batch will touch
it again. The tombstone goes to the key's own changelog partition (faust is handed an event
naming it). Should an earlier batch still write the key's old state after that, the key is
back in the table and its clock expires it again.
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from faust.streams import _current_event  # faust's contextvar behind current_event()

log = logging.getLogger(__name__)
State = dict[str, Any]
DELETE = b""          # snapshot of a deleted key (a real state is never empty JSON)
_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                          check_circular=False).encode


def encode_state(state: State) -> bytes:
    """A state as compact JSON: orjson (the snapshot of every touched key of every batch
    was 13 % of the worker at envelopes of 100 with the stdlib's encoder). orjson writes NaN
    and infinities as ``null``, so output holding a ``null`` is written again by the stdlib
    encoder, which keeps them (``NaN``, ``Infinity``; ``json.loads`` reads both)."""
    try:
        raw = orjson.dumps(state)
    except TypeError:        # a key that is not a string, an int past 64 bits
        return _DUMPS(state).encode()
    return _DUMPS(state).encode() if b"null" in raw else raw


class _KeyEvent:
    """What faust's table needs of the "current event" to write a key outside a stream: the
    partition the key belongs to (and a topic with the table's partition count)."""

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _Message(topic, partition)


class _Message:
    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition


class StateCache:
    def __init__(self, table: Any, name: str,
                 upgrade: Callable[[Any], State] | None = None,
                 on_corrupt: Callable[[bytes, Exception], None] | None = None) -> None:
        self.table = table
        self.name = name
        self.upgrade = upgrade
        self.on_corrupt = on_corrupt
        self._cache: dict[bytes, State] = {}
        self._deleted: set[bytes] = set()
        self._partition: dict[bytes, int] = {}

    def get(self, key: bytes) -> State | None:
        state = self._cache.get(key)
        if state is None and key not in self._deleted:
            raw = self.table.get(key)
            if raw is not None:
                try:
                    state = json.loads(raw)
                    if self.upgrade is not None:
                        state = self.upgrade(state)
                    if not isinstance(state, dict):
                        raise TypeError(f"a state is a JSON object, not {type(state).__name__}")
                except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
                    # not a state this worker wrote (a foreign or damaged changelog message):
                    # start the key afresh rather than stop every message of the partition
                    log.error("state %s of %s cannot be read (%s); starting it afresh",
                              self.name, key[:80], exc)
                    if self.on_corrupt is not None:
                        self.on_corrupt(key, exc)
                    return None
                self._cache[key] = state
        return state

    def put(self, key: bytes, state: State | None) -> None:
        if state is None:
            self._cache.pop(key, None)
            self._deleted.add(key)
        else:
            self._cache[key] = state
            self._deleted.discard(key)

    def forget(self, key: bytes) -> None:
        """Drop the cached copy (it may be half-updated); the table copy stands."""
        self._cache.pop(key, None)

    def snapshot(self, key: bytes) -> bytes | None:
        """The encoded state of ``key`` now, to be written later: JSON bytes, ``DELETE``
        for a deleted key, None when nothing is cached (a dropped, half-updated state)."""
        if key in self._deleted:
            return DELETE
        state = self._cache.get(key)
        return None if state is None else encode_state(state)

    def write(self, key: bytes, snapshot: bytes | None, event: Any) -> None:
        """Write a snapshot to the table (one changelog message), in ``event``'s partition."""
        if snapshot is None:
            return
        self._partition[key] = event.message.partition
        token = _current_event.set(weakref.ref(event))
        try:
            if snapshot == DELETE:
                self._deleted.discard(key)
                if key in self.table:
                    del self.table[key]
            else:
                self.table[key] = snapshot
        finally:
            _current_event.reset(token)

    def persist(self, key: bytes, event: Any) -> None:
        """Write ``key``'s cached state to the table now."""
        self.write(key, self.snapshot(key), event)

    def expire(self, key: bytes) -> bool:
        """Delete ``key`` from the table now, if it is still deleted in the cache; False when
        there was nothing to delete (or its partition is unknown: it stays until its clock
        expires it again)."""
        if key not in self._deleted:
            return False
        if key not in self.table:
            self._deleted.discard(key)
            return False
        partition = self.partition_of(key)
        if partition is None:
            find = getattr(self.table.data, "_get_bucket_for_key", None)
            if find is not None:
                find(key)            # records the key's partition in the store's index
                partition = self.partition_of(key)
        if partition is None:
            log.warning("state %s of %s expired but its partition is unknown; kept", self.name,
                        key[:80])
            return False
        topic = str(getattr(self.table, "changelog_topic_name", self.name))
        self.write(key, DELETE, _KeyEvent(topic, partition))
        self._partition.pop(key, None)
        return True

    def owned_keys(self) -> Iterator[bytes]:
        """Keys of the partitions this worker owns (table) plus any cached."""
        seen = set()
        for key in list(self.table.keys()):
            seen.add(key)
            yield key
        for key in list(self._cache):
            if key not in seen:
                yield key

    def partition_of(self, key: bytes) -> int | None:
        if key in self._partition:
            return self._partition[key]
        index = getattr(self.table.data, "_key_index", None)
        if index is not None and key in index:
            return int(index[key])
        return None

    def clear(self) -> None:
        """Partitions moved: forget everything (the table is the truth)."""
        self._cache.clear()
        self._deleted.clear()
        self._partition.clear()

    def __len__(self) -> int:
        return len(self._cache)
