from __future__ import annotations

import pytest

from sinks.base import BackpressureError, Batch, BatchingSink


class Recorder(BatchingSink):
    def __init__(self, max_rows: int = 10, max_seconds: float = 1.0) -> None:
        self.now = 0.0
        super().__init__(max_rows, max_seconds, clock=lambda: self.now)
        self.written: list[Batch] = []
        self.fail: BackpressureError | None = None

    def write(self, batch: Batch) -> None:
        if self.fail is not None:
            raise self.fail
        self.written.append(batch)


def test_due_by_size_and_by_age() -> None:
    sink = Recorder(max_rows=5, max_seconds=2.0)
    sink.add("a", "t", 0, 10, rows=3)
    assert not sink.due()
    sink.add("b", "t", 1, 4, rows=2)
    assert sink.due()  # 5 rows buffered in total
    sink.flush()
    sink.add("c", "t", 0, 11)
    assert not sink.due()
    sink.now = 2.0
    assert sink.due()


def test_flush_returns_next_offsets_per_partition() -> None:
    sink = Recorder()
    for offset in (5, 6, 7):
        sink.add(offset, "t", 0, offset)
    sink.add("x", "u", 3, 40)
    assert sink.flush() == {("t", 0): 8, ("u", 3): 41}
    assert sink.written[0].records() == [5, 6, 7, "x"]
    assert sink.buffered_rows == 0 and not sink.pending()
    assert sink.flush() == {}


def test_backpressure_keeps_everything_buffered() -> None:
    sink = Recorder()
    sink.add("a", "t", 0, 1, rows=4)
    sink.fail = BackpressureError(2.0, "down")
    with pytest.raises(BackpressureError) as info:
        sink.flush()
    assert info.value.retry_after == 2.0
    assert sink.buffered_rows == 4 and sink.pending()
    sink.fail = None
    sink.add("b", "t", 0, 2)
    assert sink.flush() == {("t", 0): 2}      # the retry is the batch that failed
    assert sink.written[0].records() == ["a"]
    assert sink.buffered_rows == 1 and sink.pending()
    assert sink.flush() == {("t", 0): 3}
    assert sink.written[1].records() == ["b"]


def test_a_retry_is_the_same_batch_with_the_same_stamp() -> None:
    sink = Recorder()
    sink.add("a", "t", 0, 1)
    sink.add("x", "u", 2, 7)
    sink.fail = BackpressureError(1.0, "down")
    attempts = []
    for _ in range(3):
        with pytest.raises(BackpressureError):
            sink.flush()
        attempts.append(sink._held)
        sink.add(f"late{len(attempts)}", "t", 0, 1 + len(attempts))
    sink.fail = None
    assert sink.flush() == {("t", 0): 2, ("u", 2): 8}
    first = attempts[0]
    assert first is not None and sink.written[0].stamp_ms == first.stamp_ms
    assert sink.written[0].records() == ["a", "x"]
    assert sink.flush() == {("t", 0): 5}
    assert sink.written[1].records() == ["late1", "late2", "late3"]


def test_drop_takes_a_revoked_partition_out_of_a_held_batch() -> None:
    sink = Recorder()
    sink.add("a", "t", 0, 1)
    sink.add("b", "t", 1, 1)
    sink.fail = BackpressureError(1.0, "down")
    with pytest.raises(BackpressureError):
        sink.flush()
    sink.drop("t", 0)
    sink.fail = None
    assert sink.flush() == {("t", 1): 2}
    assert sink.written[0].records() == ["b"]


def test_drop_forgets_a_revoked_partition() -> None:
    sink = Recorder()
    sink.add("a", "t", 0, 1, rows=2)
    sink.add("b", "t", 1, 1)
    sink.drop("t", 0)
    assert sink.buffered_rows == 1
    assert sink.flush() == {("t", 1): 2}
