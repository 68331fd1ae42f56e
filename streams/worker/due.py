"""Which keys a clock has to look at: a due index per state table, so that the timer's cost
follows the number of keys that are due, not the number of keys.

A clock (:class:`streams.processors.base.Clock`) MAY implement

- ``next_due(state) -> int | None``: the earliest ``now_ms`` at which its tick could emit
  anything for that state or drop it (None: never, until the state changes). Visiting a key
  earlier is harmless (the tick does nothing for it); visiting it later is a missed alarm, so
  when in doubt a clock returns the earlier time;
- ``next_due_of(key, state) -> int | None`` instead, when the due time depends on the key
  (the gateways' clock: the sensors registered on that gateway);
- ``category(state) -> str | None``: what the key counts as in the clock's gauges (e.g.
  ``"online:11"``); the index keeps the counts over every owned key, so the gauges need no
  scan either.

For such a clock the pipeline keeps a :class:`DueIndex`: a heap of ``(due, key)`` with the
current due per key (older heap entries are skipped when popped, and the heap is compacted
when it holds more than twice the live entries). It is updated on every state written by a
processor (:meth:`DueIndex.note`) and after each tick for every key the tick visited or
changed, and rebuilt from the owned keys (``store.owned_keys()``) when partitions move or
table recovery completes (``stale``). A tick gets a :class:`DueView` of the store, whose
``owned_keys()`` yields only the due keys, so ``tick(store, now_ms, trusted)`` keeps its
signature. A tick that returns a key in its changed list with the state removed (``put(key,
None)`` or ``forget(key)`` on the view) expires it: the worker then deletes it from the
table.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from streams.processors.base import StateStore

NextDue = Callable[[bytes, Any], "int | None"]
Category = Callable[[Any], "str | None"]


class DueIndex:
    """The due time (ms) of every owned key of one state table that has one."""

    def __init__(self, next_due: NextDue, category: Category | None = None) -> None:
        self.next_due = next_due
        self.category = category
        self._heap: list[tuple[int, bytes]] = []
        self._due: dict[bytes, int] = {}
        self._category: dict[bytes, str] = {}
        self.counts: Counter[str] = Counter()
        self.stale = True       # rebuilt from the store before it is used

    def __len__(self) -> int:
        return len(self._due)

    def note(self, key: bytes, state: Any) -> None:
        """``key`` now holds ``state`` (None: the key is gone)."""
        if self.category is not None:
            self._recount(key, None if state is None else self.category(state))
        due = None if state is None else self.next_due(key, state)
        if due is None:
            self._due.pop(key, None)
            return
        if self._due.get(key) == due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, key))
        if len(self._heap) > 2 * len(self._due) + 64:
            self._heap = [(d, k) for k, d in self._due.items()]
            heapq.heapify(self._heap)

    def soon(self, key: bytes) -> None:
        """Visit ``key`` at the next tick whatever its state says (its state is in doubt)."""
        self._due[key] = 0
        heapq.heappush(self._heap, (0, key))

    def _recount(self, key: bytes, category: str | None) -> None:
        old = self._category.get(key)
        if old == category:
            return
        if old is not None:
            self.counts[old] -= 1
            if not self.counts[old]:
                del self.counts[old]
            del self._category[key]
        if category is not None:
            self._category[key] = category
            self.counts[category] += 1

    def take(self, now_ms: int) -> list[bytes]:
        """The keys due at ``now_ms``, each once, removed from the index (the pipeline notes
        their state again after the tick)."""
        out = []
        heap, current = self._heap, self._due
        while heap and heap[0][0] <= now_ms:
            due, key = heapq.heappop(heap)
            if current.get(key) == due:
                del current[key]
                out.append(key)
        return out

    def rebuild(self, store: StateStore) -> None:
        """From every owned key of ``store`` (partitions moved, or the table was recovered)."""
        self._heap.clear()
        self._due.clear()
        self._category.clear()
        self.counts.clear()
        for key in store.owned_keys():
            self.note(key, store.get(key))
        self.stale = False


def due_function(clock: Any) -> NextDue:
    """A clock's ``next_due_of(key, state)``, or its ``next_due(state)``."""
    of = getattr(clock, "next_due_of", None)
    if of is not None:
        return of
    plain = clock.next_due
    return lambda key, state: plain(state)


class DueView:
    """A store as one tick of a clock sees it: only the due keys are owned. Writes go to the
    store; ``assignment`` is what the worker owns of the table (None: every partition)."""

    def __init__(self, store: StateStore, due: list[bytes], index: DueIndex,
                 assignment: tuple[frozenset[int], int] | None = None) -> None:
        self.store = store
        self.due = due
        self.index = index
        self.assignment = assignment

    def get(self, key: bytes) -> Any:
        return self.store.get(key)

    def put(self, key: bytes, state: Any) -> None:
        self.store.put(key, state)

    def forget(self, key: bytes) -> None:
        """For a clock, forgetting a key drops its state (as ``put(key, None)``): returned in
        the tick's changed list, the key is expired."""
        self.store.put(key, None)

    def owned_keys(self) -> Iterator[bytes]:
        return iter(self.due)

    def partition_of(self, key: bytes) -> int | None:
        return self.store.partition_of(key)

    def categories(self) -> Counter[str]:
        """Keys per category over every owned key (see the module docstring), with the due
        keys as this tick left them so far."""
        for key in self.due:
            self.index.note(key, self.store.get(key))
        return self.index.counts
