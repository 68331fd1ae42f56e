"""Aggregation of py-spy's collapsed stacks (no py-spy needed)."""

from __future__ import annotations

from bench.profile import inclusive_time, self_time, short_frame

RAW = [
    "<module> (streams/__main__.py:3);handle (streams/worker/app.py:142);"
    "apply (streams/processors/telemetry.py:160) 30",
    "<module> (streams/__main__.py:3);handle (streams/worker/app.py:142);"
    "schemaless_reader (/x/.venv/lib/python3.11/site-packages/fastavro/_read.py:10) 10",
    "garbage line",
]


def test_short_frame_trims_paths() -> None:
    assert short_frame("apply (streams/processors/telemetry.py:160)") == \
        "streams/processors/telemetry.py:apply"
    assert short_frame("f (/x/lib/python3.11/site-packages/fastavro/_read.py:1)") == \
        "fastavro/_read.py:f"
    assert short_frame("f (/usr/lib/python3.11/asyncio/events.py:80)") == \
        "stdlib:asyncio/events.py:f"


def test_self_and_inclusive_time() -> None:
    counts, total = self_time(RAW)
    assert total == 40
    assert counts["streams/processors/telemetry.py:apply"] == 30
    assert counts["fastavro/_read.py:schemaless_reader"] == 10
    ours = inclusive_time(RAW, ("streams/",))
    assert ours["streams/worker/app.py:handle"] == 40
