from __future__ import annotations

import json

from streams.processors.anomalies import new_sensor_state
from streams.processors.dedup import id_hash, remember, source_of


def test_id_hash_is_stable_64_bit() -> None:
    h = id_hash("gw-1-s-1-0000001")
    assert h == id_hash("gw-1-s-1-0000001") and 0 <= h < 2 ** 64
    assert h != id_hash("gw-1-s-1-0000002")
    assert id_hash("a") == 16769080932515840098  # fixed: the ring outlives processes


def test_remember_groups_ids_by_envelope_and_trims_partial_groups() -> None:
    st = new_sensor_state()
    remember(st, [1, 2, 3], packed=10, arrival=100, ring_size=4, cutoff=0)
    remember(st, [4, 5], packed=11, arrival=200, ring_size=4, cutoff=0)
    assert st["recent_ids"] == [2, 3, 4, 5]
    assert st["recent_envelopes"] == [[10, 100, 2], [11, 200, 2]]
    remember(st, [6], packed=11, arrival=200, ring_size=4, cutoff=0)   # same envelope again
    assert st["recent_ids"] == [3, 4, 5, 6]
    assert st["recent_envelopes"] == [[10, 100, 1], [11, 200, 3]]
    remember(st, [7, 8, 9, 10, 11], packed=12, arrival=300, ring_size=4, cutoff=0)
    assert st["recent_ids"] == [7, 8, 9, 10, 11] and st["recent_envelopes"] == [[12, 300, 5]]


def test_remember_drops_whole_groups_before_the_cutoff() -> None:
    st = new_sensor_state()
    remember(st, [1, 2], packed=10, arrival=100, ring_size=8, cutoff=0)
    remember(st, [3], packed=11, arrival=200, ring_size=8, cutoff=0)
    remember(st, [4], packed=12, arrival=300, ring_size=8, cutoff=250)
    assert st["recent_ids"] == [4] and st["recent_envelopes"] == [[12, 300, 1]]


def test_source_of_is_the_latest_occurrence() -> None:
    st = new_sensor_state()
    remember(st, [1, 2], packed=10, arrival=100, ring_size=8, cutoff=0)
    remember(st, [2, 3], packed=11, arrival=200, ring_size=8, cutoff=0)
    assert source_of(st, 1) == 10 and source_of(st, 2) == 11 and source_of(st, 3) == 11
    assert source_of(st, 4) is None


def test_a_full_ring_is_compact() -> None:
    st = new_sensor_state()
    for n in range(8):   # 8 envelopes of 4 readings with long ids
        new = [id_hash(f"bench-18c2a3f1e2d-ent-0001-gw-01-s-03-{n * 4 + i:07d}")
               for i in range(4)]
        remember(st, new, packed=(3 << 40) + 1_000_000 + n, arrival=1_767_225_600_000 + n,
                 ring_size=32, cutoff=0)
    ring = {"recent_ids": st["recent_ids"], "recent_envelopes": st["recent_envelopes"]}
    size = len(json.dumps(ring, separators=(",", ":")))
    assert len(st["recent_ids"]) == 32 and size < 1000   # the per-reading layout took about 2.4 KB
