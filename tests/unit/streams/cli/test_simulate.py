"""The simulator says when it produced less than asked, and why."""

from __future__ import annotations

from streams.cli.simulate import rate_line


def test_the_diurnal_profile_explains_a_lower_rate() -> None:
    line = rate_line(2000, 1420 * 45, 1418 * 45, 45, 10, 0)
    assert "1,418 readings/s produced" in line and "makes 1,420/s" in line
    assert "SHORT" not in line


def test_a_shortfall_names_its_cause() -> None:
    cpu = rate_line(2000, 2000 * 45, 1000 * 45, 45, 0.0, 0)
    assert "SHORT by 1,000/s" in cpu and "CPU" in cpu
    broker = rate_line(2000, 2000 * 45, 1000 * 45, 45, 3, 40)
    assert "queue was full 40 times" in broker
