from __future__ import annotations

from collections import namedtuple

from streams.worker.batches import OffsetGuard

TP = namedtuple("TP", "topic partition")
T0 = TP("in", 0)


def guard_from(start: int | None) -> OffsetGuard:
    guard = OffsetGuard()
    guard.begin(T0, start)
    return guard


def test_in_order_offsets_pass() -> None:
    guard = guard_from(10)
    assert [guard.check(T0, o) for o in (10, 11, 12)] == [None] * 3


def test_redeliveries_below_the_expected_offset_pass() -> None:
    guard = guard_from(10)
    assert [guard.check(T0, o) for o in (10, 11, 12, 11, 12, 13)] == [None] * 6


def test_holes_are_reported() -> None:
    guard = guard_from(97)
    assert guard.check(T0, 110) == "in[0]: offset 110 arrived but 97..109 did not"
    guard = guard_from(5)
    assert guard.check(T0, 5) is None and guard.check(T0, 7) is not None


def test_a_fresh_partition_starts_at_the_log_start() -> None:
    assert guard_from(0).check(T0, 1) is not None


def test_unknown_start_is_not_judged() -> None:
    guard = OffsetGuard()
    assert not guard.knows(T0)
    assert guard.check(T0, 500) is None and guard.knows(T0)


def test_reset_forgets_positions() -> None:
    guard = guard_from(0)
    guard.check(T0, 0)
    guard.reset()
    assert not guard.knows(T0)


def test_stall_watch_reports_a_backlog_without_progress() -> None:
    from streams.worker.batches import StallWatch

    watch = StallWatch(stall_after=30)
    assert watch.observe(T0, 10, 50, now=0.0) == 0.0          # not armed: nothing processed yet
    watch.arm(100.0)
    assert watch.observe(T0, 10, 50, now=101.0) == 0.0
    assert watch.observe(T0, 10, 50, now=120.0) == 19.0
    assert watch.observe(T0, 12, 50, now=125.0) == 0.0        # progress resets
    assert watch.observe(T0, 12, 50, now=160.0) == 35.0
    assert watch.observe(T0, 50, 50, now=200.0) == 0.0        # caught up
    watch.reset()
    assert watch.observe(T0, 10, 50, now=300.0) == 0.0


def test_new_partitions_of_a_batch_are_looked_up_in_one_call() -> None:
    import asyncio
    from types import SimpleNamespace
    from typing import Any

    from streams.worker.batches import BatchRunner

    calls: list[list[Any]] = []

    async def start(tps: list[Any]) -> list[int | None]:
        calls.append(list(tps))
        return [7 if tp.partition == 0 else None for tp in tps]

    guard = OffsetGuard()
    runner = BatchRunner(None, None, None, {}, {}, None, guard,  # type: ignore[arg-type]
                         lambda: 3, start)
    t1 = TP("in", 1)
    old = TP("in", 2)   # fetched before the last rebalance: not judged, not looked up
    events = [SimpleNamespace(message=SimpleNamespace(tp=tp, generation_id=gen))
              for tp, gen in ((T0, 3), (t1, 3), (T0, 3), (old, 2))]
    asyncio.run(runner._begin_partitions(events, 3))
    assert calls == [[T0, t1]]
    assert guard.check(T0, 8) is not None       # starts at 7: offset 8 leaves a hole
    assert guard.check(t1, 500) is None         # start unknown: not judged, known from here
    asyncio.run(runner._begin_partitions(events, 3))
    assert calls == [[T0, t1]]                  # nothing new: no second lookup
