"""The bench restarts a worker that exits 75, as `ebi run` does."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.procs import Child


def _wait(child: Child) -> int:
    deadline = time.monotonic() + 20
    while (code := child.poll()) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert code is not None
    return code


def test_a_child_that_asks_to_start_over_is_started_again(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(75)"])
    child = Child("w", proc, log, argv=["--help"], module="json.tool", restartable=True)
    assert _wait(child) == 75
    assert child.restart_if_asked()   # the "again" run (json.tool --help) exits 0
    assert child.restarts == 1 and _wait(child) == 0
    assert not child.restart_if_asked()


def test_other_exits_and_unrestartable_children_are_left_alone(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(75)"])
    child = Child("b", proc, tmp_path / "b.log", argv=["--help"], module="json.tool")
    assert _wait(child) == 75
    assert not child.restart_if_asked() and child.restarts == 0
