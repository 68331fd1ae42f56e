"""``ebi canary`` against a live pipeline: worker, sink and a real ClickHouse server.

The worker's deadline/silence timer runs every second here (a policy file with
``check_every = "1s"``), so the silent gateway is found by the timer, not only when it
comes back. The canary must report every expectation caught and exit 0; with no worker
running it must report misses and exit 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.settings import Settings
from tests.integration.conftest import unique
from tests.integration.test_worker_kit import WorkerProcess, pipeline_env

pytestmark = pytest.mark.integration


def fast_policy(directory: Path) -> str:
    text = (Path(__file__).resolve().parents[2] / "streams" / "policy" / "default.toml") \
        .read_text("utf-8").replace('check_every = "30s"', 'check_every = "1s"')
    assert 'check_every = "1s"' in text
    path = directory / "policy-fast.toml"
    path.write_text(text, "utf-8")
    return str(path)


def canary(settings: Settings, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[
        str]:
    return subprocess.run([sys.executable, "-m", "streams", "canary", *args],
                          env=pipeline_env(settings), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def pipeline(settings: Settings, clickhouse_server_url: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    directory = tmp_path_factory.mktemp("canary")
    database = unique("canary")
    st = settings.replace(topic_prefix=f"{unique('can')}.", worker_id=unique("ebi-can"),
                          sink_group=unique("ebi-can-sink"), policy_file=fast_policy(directory),
                          clickhouse_url=f"{clickhouse_server_url.rsplit('/', 1)[0]}/{database}")
    worker = WorkerProcess(st).start()
    log = open(directory / "sink.log", "wb")  # noqa: SIM115 - closed below
    sink = subprocess.Popen([sys.executable, "-m", "streams", "sink"], env=pipeline_env(st),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield st
    finally:
        if sink.poll() is None:
            os.killpg(sink.pid, 15)
            sink.wait(30)
        log.close()
        worker.stop()


def test_canary_catches_everything_and_checks_clickhouse(pipeline: Settings) -> None:
    done = canary(pipeline, "--timeout", "120", "--silence-wait", "60")
    print(done.stdout)
    lines = [line for line in done.stdout.splitlines() if line[:1].isupper()]
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "silent gateway found by the timer" in done.stdout
    for name in ("duplicate", "late incident", "alarm-limit breach", "flatline",
                 "invalid reading", "invalid message", "concealment", "silent gateway",
                 "clickhouse"):
        assert any(line.startswith("CAUGHT") and f" {name}:" in line for line in lines), name
    assert not any(line.startswith(("MISSED", "WRONGLY")) for line in lines)


def test_canary_fails_when_nothing_processes(settings: Settings) -> None:
    st = settings.replace(topic_prefix=f"{unique('cannone')}.", worker_id=unique("ebi-cannone"))
    done = canary(st, "--timeout", "5", "--silence-wait", "1", "--no-clickhouse", timeout=90)
    assert done.returncode == 1, done.stdout + done.stderr[-2000:]
    assert "MISSED           duplicate" in done.stdout
    assert "canary FAILED" in done.stdout
