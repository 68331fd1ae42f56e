"""Mapping published envelopes to the poll that first shows their rows."""

from __future__ import annotations

import pytest

from bench.latency import latencies


def test_latency_is_first_poll_covering_the_cumulative_count() -> None:
    sent = [(10.0, 100), (10.1, 200), (10.2, 300)]
    samples = [(10.05, 0), (10.30, 150), (10.50, 300)]
    assert latencies(sent, samples, base=0) == pytest.approx([0.30, 0.40, 0.30])


def test_latency_stops_at_rows_never_seen_and_uses_the_base() -> None:
    sent = [(1.0, 100), (2.0, 200)]
    samples = [(1.5, 1100)]
    assert latencies(sent, samples, base=1000) == [0.5]
