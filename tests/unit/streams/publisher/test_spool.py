from pathlib import Path

import pytest

from streams.publisher.spool import Spool, SpoolFullError


def test_append_read_ack_commit(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=200)
    seqs = [spool.append("t", "R", f"k{i}".encode(), b"x" * 50) for i in range(10)]
    assert seqs == list(range(10))
    assert [e.key for e in spool.read(3, limit=2)] == [b"k3", b"k4"]
    assert len(list(tmp_path.glob("*.seg"))) > 1
    for seq in (0, 1, 2, 4):
        spool.ack(seq)
    assert spool.commit() == 3          # 3 is not acknowledged: checkpoint stops there
    for seq in range(3, 10):
        spool.ack(seq)
    assert spool.commit() == 10
    assert spool.pending() == 0
    assert list(tmp_path.glob("*.seg")) == []   # delivered segments are deleted
    spool.close()


def test_reopen_resends_unacknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append("t", "R", None, b"a")
    spool.append("t", "R", b"k", b"b")
    spool.append("t", "R", b"k", b"c")
    spool.ack(0)
    spool.commit()
    spool.ack(1)          # acknowledged but not committed: lost in the crash
    # no close(): simulate a crash
    again = Spool(tmp_path)
    entries = list(again.read(again.checkpoint))
    assert [(e.seq, e.key, e.body) for e in entries] == [(1, b"k", b"b"), (2, b"k", b"c")]
    assert again.append("t", "R", None, b"d") == 3


def test_torn_tail_is_cut(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append_many([("t", "R", None, b"one"), ("t", "R", None, b"two")])
    seg = next(tmp_path.glob("*.seg"))
    data = seg.read_bytes()
    seg.write_bytes(data[:-2])            # power loss in the middle of the last record
    again = Spool(tmp_path)
    assert [e.body for e in again.read(0)] == [b"one"]
    assert again.next_seq == 1
    again.append("t", "R", None, b"three")
    assert [e.body for e in Spool(tmp_path).read(0)] == [b"one", b"three"]


def test_full_spool_says_limit_path_and_how_to_raise(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=100)
    spool.append("t", "R", None, b"x" * 40)
    with pytest.raises(SpoolFullError) as info:
        spool.append("t", "R", None, b"x" * 80)
    text = str(info.value)
    assert "100 bytes" in text and str(tmp_path) in text and "spool_max_bytes" in text
    spool.ack(0)
    spool.commit()
    spool.append("t", "R", None, b"x" * 60)   # room again once delivered
