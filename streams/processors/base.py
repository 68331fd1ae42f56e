"""What the worker expects of a processor and of a clock, and of the state they use.

A processor (named by a record type's ``processor`` in the catalog) is built with the
:class:`~streams.processors.context.ProcessorContext` and handles one decoded record at a
time: ``process(record, source, key, value, state, now_ms) -> (outputs, new state)``; a new
state of None means "unchanged or nothing to keep". It may also say that a record names
reference data the worker does not know yet (``missing_reference``), so the worker can wait
for the reference feed before deciding.

A clock (a state table's ``clock``) runs on the worker's timer over the locally owned keys of
its table: ``tick(store, now_ms, trusted) -> (outputs, changed keys)``; ``trusted(partition)``
says whether silence on that partition means something (the worker is not reading a
backlog there). A clock that also says when each state is next due (:class:`DueClock`) is
given only the due keys (see :mod:`streams.worker.due`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

from schemas.records import Record, Source
from streams.processors.common import Outputs


class StateStore(Protocol):
    def get(self, key: bytes) -> Any: ...
    def put(self, key: bytes, state: Any) -> None: ...
    def forget(self, key: bytes) -> None: ...
    def owned_keys(self) -> Iterator[bytes]: ...
    def partition_of(self, key: bytes) -> int | None: ...


class Processor(Protocol):
    def process(self, record: Record, source: Source, key: bytes | None, value: bytes,
                state: Any, now_ms: int) -> tuple[Outputs, Any]: ...


class Clock(Protocol):
    def tick(self, store: StateStore, now_ms: int,
             trusted: Callable[[int | None], bool]) -> tuple[Outputs, list[bytes]]: ...


@runtime_checkable
class DueClock(Clock, Protocol):
    """A clock that knows, per state, the earliest time its tick could act on it (None:
    never until the state changes); it may also implement ``next_due_of(key, state)`` (used
    instead when present) and ``category(state)`` for its gauges (see
    :mod:`streams.worker.due`)."""

    def next_due(self, state: Any) -> int | None: ...


class DictStore:
    """A plain in-memory store (unit tests, tools)."""

    def __init__(self) -> None:
        self.data: dict[bytes, Any] = {}

    def get(self, key: bytes) -> Any:
        return self.data.get(key)

    def put(self, key: bytes, state: Any) -> None:
        if state is None:
            self.data.pop(key, None)
        else:
            self.data[key] = state

    def forget(self, key: bytes) -> None:
        self.data.pop(key, None)

    def owned_keys(self) -> Iterator[bytes]:
        return iter(list(self.data))

    def partition_of(self, key: bytes) -> int | None:
        return None


def missing_reference(processor: Processor, record: Record) -> bool:
    """Whether ``record`` names reference data the worker does not know (yet)."""
    check = getattr(processor, "missing_reference", None)
    return bool(check(record)) if check is not None else False
