"""ClickHouse (a private server) stopped for 30 s mid-stream, then started again: the sink
pauses with a bounded buffer, resumes, and nothing is lost or doubled."""

from __future__ import annotations

import signal
import time
import urllib.request
from pathlib import Path

import pytest

from sinks.clickhouse import ClickHouseError, connect
from sinks.clickhouse.config import login_url
from streams.settings import Settings
from streams.stack.clickhouse import ClickHouseServer
from streams.stack.process import free_port
from tests.integration.conftest import unique
from tests.integration.test_sink_kit import ensure_topics, produce, start_sink, wait_exit
from tests.unit.sinks import factories as f

pytestmark = pytest.mark.integration
OUTAGE_SECONDS = 30


def ledger_count(url: str) -> int:
    try:
        backend = connect(url)
    except ClickHouseError:
        return -1
    try:
        return int(backend.query("SELECT count() FROM ledger FINAL").scalar())
    except ClickHouseError:  # not migrated yet, or down
        return -1
    finally:
        backend.close()


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as rsp:
            text = rsp.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def batch(s: Settings, start: int, count: int, readings: int) -> list[dict[str, object]]:
    t0 = int(time.time() * 1000) - 60_000
    return [f.telemetry(o, topic=s.topic("telemetry"), partition=0, readings=readings,
                        sensors=8, t0=t0) for o in range(start, start + count)]


def test_clickhouse_outage_pauses_and_loses_nothing(settings: Settings,
                                                    tmp_path: Path) -> None:
    port = free_port()
    url = f"clickhouse://127.0.0.1:{port}/outage"
    s = settings.replace(data_dir=tmp_path, clickhouse_tcp_port=port,
                         clickhouse_http_port=free_port(), clickhouse_url=url,
                         topic_prefix=f"{unique('out')}.", sink_group=unique("sink"),
                         sink_batch_rows=1000, sink_batch_seconds=0.3,
                         metrics_port=free_port())
    server = ClickHouseServer(s)
    server.up()
    url = login_url(s)   # ebi_admin's login of this private server
    sink = None
    try:
        ensure_topics(s)
        sink = start_sink(s, EBI_METRICS_PORT=str(s.metrics_port))
        status_port = s.metrics_port + 1  # the sink serves on metrics_port + 1
        produce(s, "telemetry.clean", batch(s, 0, 40, readings=25))
        wait_for(lambda: ledger_count(url) == 40, 60, "the first 40 envelopes")

        stopped = time.monotonic()
        server.down()
        produce(s, "telemetry.clean", batch(s, 40, 240, readings=25))  # 6000 readings
        wait_for(lambda: metric(status_port, "ebi_sink_paused") == 1.0, 20,
                 "the sink to pause")
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
        assert sink.poll() is None, "the sink must survive the outage"
        server.up()
        wait_for(lambda: ledger_count(url) == 280, 60, "all 280 envelopes after the outage")
        wait_for(lambda: metric(status_port, "ebi_sink_paused") == 0.0, 10, "resume")
        sink.send_signal(signal.SIGTERM)
        out = wait_exit(sink, timeout=30)
        assert "paused" in out
        sink = None
        backend = connect(url)
        try:
            assert backend.query("SELECT count(), uniqExact(reading_id) FROM readings"
                                 ).rows == [(7000, 7000)]
            assert backend.query("SELECT sum(readings) FROM sensor_minutes").scalar() == 7000
        finally:
            backend.close()
    finally:
        if sink is not None:
            sink.kill()
            sink.wait()
        server.down()
