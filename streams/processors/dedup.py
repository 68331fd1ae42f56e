"""Per-sensor rings of recent reading ids, compact enough to write once per envelope.

A sensor's state (:class:`.anomalies.SensorState`) carries:

- ``recent_ids``: the most recent reading ids as 64-bit hashes (:func:`id_hash`: CRC-32 and
  Adler-32 of the UTF-8 bytes side by side, both in C and stable across processes), oldest
  first;
- ``recent_envelopes``: the envelopes that carried them, as ``[packed source coordinates,
  arrival ms, count]`` groups in the same order (the counts add up to ``len(recent_ids)``): a
  reading's source is stored once per envelope, not once per reading.

A reading id found in the ring under different source coordinates is a duplicate; under the
same coordinates it is this message processed again (a replay of itself), not a duplicate.
The chance that two different ids of one sensor's ring share a 64-bit hash is about
``ring_size / 2**64`` per reading. Rings written in earlier layouts (string ids with
per-reading source lists) are converted when first read (:mod:`.layouts`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from zlib import adler32, crc32

if TYPE_CHECKING:
    from streams.processors.anomalies import SensorState


def id_hash(reading_id: str) -> int:
    """A stable 64-bit hash of a reading id (the same in every process). Not cryptographic:
    it only has to tell apart the few dozen ids of one sensor's ring, at a quarter of the cost
    of a blake2b digest (it runs once per reading)."""
    data = reading_id.encode()
    return crc32(data) << 32 | adler32(data)


def source_of(st: SensorState, hashed: int) -> int | None:
    """Packed source coordinates of the latest occurrence of ``hashed`` in the ring."""
    ids = st["recent_ids"]
    try:
        index = len(ids) - 1 - ids[::-1].index(hashed)
    except ValueError:
        return None
    pos = 0
    for packed, _, count in st["recent_envelopes"]:
        pos += count
        if index < pos:
            return int(packed)
    return None


def remember(st: SensorState, new: list[int], packed: int, arrival: int, ring_size: int,
             cutoff: int) -> None:
    """Append the hashed ids of one envelope, then keep the last ``ring_size`` (or all of this
    envelope's, if more), dropping further any that arrived before ``cutoff``."""
    ids, groups = st["recent_ids"], st["recent_envelopes"]
    ids.extend(new)
    last = groups[-1] if groups else None
    if last is not None and last[0] == packed and last[1] == arrival:
        last[2] += len(new)
    else:
        groups.append([packed, arrival, len(new)])
    drop = max(0, len(ids) - max(ring_size, len(new)))
    pos = k = 0
    while k < len(groups) and pos + groups[k][2] <= drop:
        pos += groups[k][2]
        k += 1
    while k < len(groups) and groups[k][1] < cutoff:
        pos += groups[k][2]
        drop = pos
        k += 1
    if drop:
        del ids[:drop], groups[:k]
        if groups and drop > pos:
            groups[0][2] -= drop - pos
