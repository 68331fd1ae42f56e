from __future__ import annotations

from collections import namedtuple

from streams.worker.batches import OffsetGuard

TP = namedtuple("TP", "topic partition")
T0 = TP("in", 0)


def test_in_order_offsets_pass() -> None:
    guard = OffsetGuard(lambda tp: 10)
    assert [guard.check(T0, o)[0] for o in (10, 11, 12)] == ["ok"] * 3


def test_redeliveries_below_the_expected_offset_pass() -> None:
    guard = OffsetGuard(lambda tp: 10)
    for o in (10, 11, 12, 11, 12, 13):
        assert guard.check(T0, o)[0] == "ok"


def test_a_hole_seeks_back_and_drops_until_the_missing_offset_returns() -> None:
    guard = OffsetGuard(lambda tp: 97)
    assert guard.check(T0, 110) == ("seek", 97)         # first event after assignment
    assert guard.check(T0, 111) == ("drop", 97)          # still queued from before the seek
    assert guard.check(T0, 97) == ("ok", 97)
    assert [guard.check(T0, o)[0] for o in range(98, 112)] == ["ok"] * 14
    assert guard.check(T0, 115) == ("seek", 112)         # a hole in the middle


def test_unknown_committed_offset_and_stale_generation_are_not_judged() -> None:
    guard = OffsetGuard(lambda tp: None)
    assert guard.check(T0, 500)[0] == "ok"
    guard = OffsetGuard(lambda tp: 3)
    assert guard.check(T0, 9, current_generation=False)[0] == "ok"


def test_reset_forgets_positions() -> None:
    guard = OffsetGuard(lambda tp: 0)
    guard.check(T0, 0)
    guard.reset()
    assert guard.check(T0, 5) == ("seek", 0)
