from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from streams.httpserver import Heartbeat, StatusServer, port_for
from streams.metrics import Metrics
from streams.readiness import CheckResult
from streams.settings import Settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics.create(CollectorRegistry())


@pytest.fixture
def server(metrics: Metrics) -> Iterator[StatusServer]:
    with StatusServer(metrics.registry, port=0) as srv:
        yield srv


def test_metrics_serves_the_injected_registry(server: StatusServer, metrics: Metrics) -> None:
    metrics.records_in.labels("ebi.telemetry.raw", "TelemetryBatch").inc(3)
    metrics.gateways_offline.labels("11").set(2)
    status, kind, body = get(server.url + "/metrics")
    assert status == 200 and kind.startswith("text/plain")
    assert 'ebi_records_in_total{topic="ebi.telemetry.raw",type="TelemetryBatch"} 3.0' in body
    assert 'ebi_gateways_offline{province="11"} 2.0' in body
    assert "python_gc" not in body  # only the injected registry, not the global one


def test_server_binds_loopback_and_a_free_port(server: StatusServer) -> None:
    assert server.host == "127.0.0.1"
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_unknown_path_is_404(server: StatusServer) -> None:
    assert get(server.url + "/nope")[0] == 404


def test_healthz_without_heartbeat_is_ok(server: StatusServer) -> None:
    assert get(server.url + "/healthz")[::2] == (200, "ok\n")


def test_healthz_follows_the_heartbeat(metrics: Metrics) -> None:
    clock = FakeClock()
    heartbeat = Heartbeat(max_age=30, clock=clock)
    with StatusServer(metrics.registry, port=0, heartbeat=heartbeat) as srv:
        assert get(srv.url + "/healthz")[0] == 200
        clock.now += 31
        status, _, body = get(srv.url + "/healthz")
        assert status == 503 and "31.0s ago" in body and "limit 30s" in body
        heartbeat.beat()
        assert get(srv.url + "/healthz")[0] == 200


def test_readyz_all_pass(metrics: Metrics) -> None:
    checks = {"kafka": lambda: CheckResult(True, "1 broker(s)"),
              "registry": lambda: CheckResult(True, "3 subject(s)")}
    with StatusServer(metrics.registry, port=0, checks=checks) as srv:
        status, kind, body = get(srv.url + "/readyz")
    assert status == 200 and kind == "application/json"
    data = json.loads(body)
    assert data["status"] == "ready" and data["failing"] == []
    assert data["checks"]["kafka"]["ok"] is True
    assert data["checks"]["registry"]["detail"] == "3 subject(s)"


def test_readyz_names_the_failing_checks(metrics: Metrics) -> None:
    def clickhouse() -> CheckResult:
        raise ConnectionError("refused")

    checks = {"kafka": lambda: CheckResult(True), "clickhouse": clickhouse,
              "registry": lambda: CheckResult(False, "HTTP 500")}
    with StatusServer(metrics.registry, port=0, checks=checks) as srv:
        status, _, body = get(srv.url + "/readyz")
    data = json.loads(body)
    assert status == 503
    assert data["failing"] == ["clickhouse", "registry"]
    assert data["checks"]["clickhouse"]["detail"] == "ConnectionError: refused"


def test_readyz_caches_check_results(metrics: Metrics) -> None:
    calls: list[int] = []

    def kafka() -> CheckResult:
        calls.append(1)
        return CheckResult(True)

    with StatusServer(metrics.registry, port=0, checks={"kafka": kafka}, ready_ttl=60) as srv:
        for _ in range(3):
            assert get(srv.url + "/readyz")[0] == 200
    assert len(calls) == 1


def test_stop_releases_the_port_and_is_idempotent(metrics: Metrics) -> None:
    srv = StatusServer(metrics.registry, port=0)
    srv.start()
    url = srv.url
    srv.stop()
    srv.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/healthz", timeout=2)


def test_port_for_roles_and_off() -> None:
    assert port_for(Settings(metrics_port=0), "worker") == 0
    assert port_for(Settings(metrics_port=0), "sink") == 0
    assert port_for(Settings(metrics_port=9464), "worker") == 9464
    assert port_for(Settings(metrics_port=9464), "sink") == 9465


def test_from_settings_off_and_on(metrics: Metrics) -> None:
    assert StatusServer.from_settings(Settings(), "worker", metrics.registry) is None
    srv = StatusServer.from_settings(Settings(metrics_port=9464, metrics_host="0.0.0.0"),
                                     "sink", metrics.registry)
    assert srv is not None and srv.port == 9465 and srv.host == "0.0.0.0"
