"""Observability against the running processes: the worker's and sink's counters equal the
simulator's ground truth, and a real Prometheus scraping them fires an alert from the
project's own rules."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas.catalog import default_catalog
from schemas.codec import AvroSerializer
from streams import clients
from streams.kafkaio import Coordinates, publish
from streams.policy import load_policy
from streams.settings import Settings
from streams.simulate import SimConfig, Simulator
from streams.stack.process import free_port, port_free
from streams.worker.topics import ensure_topics
from tests.integration.conftest import unique
from tests.integration.promserver import start_prometheus
from tests.integration.test_worker_kit import (
    past_config,
    reader,
    wait_for_ledger,
    worker_env,
)

CATALOG = default_catalog()
SCHEMAS = CATALOG.schemas

pytestmark = pytest.mark.integration


def _port_pair() -> int:
    while True:
        port = free_port()
        if port < 65535 and port_free(port + 1):
            return port


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as rsp:
        text = rsp.read().decode()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
           **labels: str) -> float:
    return sum(v for (n, lbls), v in samples.items()
               if n == name and all(dict(lbls).get(k) == want for k, want in labels.items()))


def _publish_paced(settings: Settings, config: SimConfig, seconds: float,
                   chunks: int = 20) -> tuple[Simulator, list[Coordinates]]:
    """Registrations first, then the traffic in ``chunks`` spread over ``seconds``."""
    ensure_topics(settings)
    registry = clients.registry(settings)
    header = AvroSerializer(registry).header
    sim = Simulator(config, load_policy(settings.policy_file or None),
                    header=lambda t: header(settings.topic(t), CATALOG.topic(t).record))
    events = [(t, k, v) for t, k, v, _ in sim]
    publish(settings, registry, [e for e in events if e[0] in ("enterprises", "sensors")])
    traffic = [e for e in events if e[0] not in ("enterprises", "sensors")]
    coords: list[Coordinates] = []
    size = max(1, len(traffic) // chunks)
    for start in range(0, len(traffic), size):
        coords += publish(settings, registry, traffic[start:start + size])
        time.sleep(seconds / chunks)
    return sim, coords


def _spawn(command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen([sys.executable, "-m", "streams", command], env=env, stdout=handle,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def pipeline(settings: Settings, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("obs")
    st = settings.replace(topic_prefix=f"{unique('obs')}.", worker_id=unique("ebi-obs"),
                          sink_group=unique("ebi-obs-sink"),
                          clickhouse_url=f"chdb://{workdir / 'chdb'}")
    port = _port_pair()
    env = worker_env(st)
    env.update({"EBI_METRICS_PORT": str(port), "EBI_CLICKHOUSE_URL": st.clickhouse,
                "EBI_SINK_GROUP": st.sink_group, "EBI_SINK_BATCH_SECONDS": "0.5"})
    worker = _spawn("worker", env, workdir / "worker.log")
    sink = _spawn("sink", env, workdir / "sink.log")
    prom = start_prometheus({"ebi-worker": [f"127.0.0.1:{port}"],
                             "ebi-sink": [f"127.0.0.1:{port + 1}"]},
                            workdir / "prometheus", fast_rules=True)
    try:
        prom.wait_for_targets_up(timeout=90)
        cfg = past_config(seed=21, duration_s=30.0, rate=500.0, incidents_per_min=20.0,
                          duplicate_rate=0.005, invalid_rate=0.15, anomalies=0,
                          late_rate=0.0, silent_gateways=0)
        # Spread over many scrapes: a counter series that appears only at its final value
        # shows no increase, and rate() would stay 0.
        sim, coords = _publish_paced(st, cfg, seconds=20.0)
        outputs = reader(st)
        missing = wait_for_ledger(outputs, coords, timeout=120)
        assert not missing, f"{len(missing)} inputs without output"
        yield {"sim": sim, "outputs": outputs, "port": port, "prom": prom,
               "worker": worker, "sink": sink, "workdir": workdir}
        outputs.close()
    finally:
        prom.stop()
        _stop(sink)
        _stop(worker)


def test_worker_counters_equal_the_ground_truth(pipeline: dict[str, Any]) -> None:
    truth = [line for line in pipeline["sim"].truth if "fault" in line]
    faults = Counter((t["fault"], t.get("type")) for t in truth)
    invalid = Counter(t["error_code"] for t in truth if t["fault"] == "invalid")
    samples = _scrape(pipeline["port"])
    assert _total(samples, "ebi_duplicates_dropped_total", type="telemetry") == \
        faults[("duplicate", "telemetry")]
    assert _total(samples, "ebi_duplicates_dropped_total", type="incident") == \
        faults[("duplicate", "incident")]
    for code, count in invalid.items():
        assert _total(samples, "ebi_rejects_total", reason=code) == count, code
    assert _total(samples, "ebi_rejects_total") == sum(invalid.values())
    late = sum(n for (fault, _), n in faults.items() if fault == "late_report")
    assert _total(samples, "ebi_late_reports_total", kind="PRODUCTION_SAFETY") + \
        _total(samples, "ebi_late_reports_total", kind="NATURAL_DISASTER") == late
    ledger = len(pipeline["outputs"].of("telemetry.clean"))
    assert _total(samples, "ebi_records_out_total", topic="telemetry.clean") >= ledger


def test_sink_counts_every_accepted_reading(pipeline: dict[str, Any]) -> None:
    accepted = sum(env["readings_in"] - env["duplicates"] - env["rejected"]
                   for env in pipeline["outputs"].of("telemetry.clean"))
    deadline = time.monotonic() + 90
    rows = -1.0
    while time.monotonic() < deadline:
        rows = _total(_scrape(pipeline["port"] + 1), "ebi_sink_rows_total",
                       table="readings_raw")
        if rows >= accepted:
            break
        time.sleep(1)
    assert rows == accepted


def test_prometheus_fires_the_dead_letter_ratio_alert(pipeline: dict[str, Any]) -> None:
    prom = pipeline["prom"]
    try:
        alert = prom.wait_for_alert("EbiDeadLetterRatioHigh", timeout=60, topic="telemetry")
    except Exception:
        seen = {expr: prom.query(expr) for expr in (
            "ebi_rejects_total", "sum by (topic) (rate(ebi_rejects_total[5m]))",
            "sum by (topic) (rate(ebi_records_in_total[5m]))")}
        raise AssertionError(f"alert not firing; alerts={prom.alerts()}; series={seen}") from None
    assert alert["labels"]["severity"] == "warning"
    assert float(alert["value"]) > 0.01
