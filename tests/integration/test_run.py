"""`ebi run` (what `make run` calls): the stack comes up, data flows from the simulator through
worker and sink into ClickHouse, and at the end no service process is left and the data stays
queryable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.credentials import all_passwords
from streams.stack.process import free_port
from tests.integration.conftest import leaked_passwords

pytestmark = pytest.mark.integration


def _ebi(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams", *args], env=env, text=True,
                          capture_output=True, timeout=timeout)


def test_run_brings_the_stack_up_and_down_and_keeps_the_data(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBI_")}
    env.update({
        "EBI_DATA_DIR": str(tmp_path / "var"),
        "EBI_KAFKA_PORT": str(free_port()), "EBI_KAFKA_CONTROLLER_PORT": str(free_port()),
        "EBI_KAFKA_BROKER_PORT": str(free_port()), "EBI_REGISTRY_PORT": str(free_port()),
    })
    run = subprocess.Popen([sys.executable, "-m", "streams", "run", "--duration", "25",
                            "--rate", "1000"], env=env, text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    assert run.stdout is not None
    seen = []
    for line in run.stdout:           # until the traffic flows
        seen.append(line)
        if "simulator at" in line:
            break
    # while the sink owns the embedded store, everyone else queries through it
    import time

    time.sleep(8)
    during = _ebi(["query", "--format", "csv", "SELECT count() FROM readings"], env, 60)
    assert during.returncode == 0, during.stderr
    assert int(during.stdout.strip().splitlines()[-1]) >= 0
    live = _ebi(["reconcile"], env, timeout=120)
    assert live.returncode == 0, live.stdout + live.stderr     # in flight is not a gap
    assert "reconcile" in live.stdout
    report = _ebi(["report"], env, timeout=120)
    assert report.returncode == 0, report.stderr
    rest, err = run.communicate(timeout=300)
    stdout = "".join(seen) + rest
    done = subprocess.CompletedProcess(run.args, run.returncode, stdout, err)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no service process left" in done.stdout
    # the run waited until everything was stored, and its account adds up
    assert "nothing in flight" in done.stdout, done.stdout
    assert "account of every input message" in done.stdout and "readings =" in done.stdout
    status = _ebi(["stack", "status"], env, timeout=60)
    assert "local processes: none running" in status.stdout
    # the worker, the sink and the simulator ran as their own principals on the secured
    # stack; no generated password is in any log nor in the status output
    leaked = leaked_passwords(tmp_path / "var")
    assert not leaked, leaked
    passwords = all_passwords(tmp_path / "var")
    assert len(passwords) >= 10
    assert not [p for p in passwords if p in status.stdout + done.stdout + done.stderr]
    query = _ebi(["query", "--format", "csv", "SELECT count() FROM readings"], env, timeout=60)
    assert query.returncode == 0, query.stderr
    assert int(query.stdout.strip().splitlines()[-1]) > 0
