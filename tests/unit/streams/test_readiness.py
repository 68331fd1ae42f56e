from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from streams.readiness import (
    CheckResult,
    ClickHouseCheck,
    KafkaCheck,
    Readiness,
    RegistryCheck,
    run_check,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeAdmin:
    def __init__(self, topics: list[str], fail: Exception | None = None) -> None:
        self.topics = topics
        self.fail = fail
        self.timeouts: list[float] = []

    def list_topics(self, *args: Any, **kwargs: Any) -> Any:
        self.timeouts.append(kwargs["timeout"])
        if self.fail:
            raise self.fail
        return SimpleNamespace(brokers={1: object()}, topics={t: object() for t in self.topics})


def test_kafka_check_passes_and_reuses_one_admin_client() -> None:
    admin = FakeAdmin(["ebi.telemetry.raw"])
    configs: list[dict[str, Any]] = []

    def factory(config: dict[str, Any]) -> FakeAdmin:
        configs.append(config)
        return admin

    check = KafkaCheck("127.0.0.1:9", timeout=1.5, topics=["ebi.telemetry.raw"],
                       admin_factory=factory)
    assert check() == CheckResult(True, "1 broker(s), 1 topic(s)")
    assert check().ok
    assert len(configs) == 1 and configs[0]["bootstrap.servers"] == "127.0.0.1:9"
    assert admin.timeouts == [1.5, 1.5]


def test_kafka_check_names_missing_topics() -> None:
    check = KafkaCheck("x:1", topics=["a", "b"], admin_factory=lambda c: FakeAdmin(["a"]))
    result = check()
    assert not result.ok and result.detail == "missing topics: b"


def test_kafka_check_failure_becomes_a_failed_result() -> None:
    check = KafkaCheck("x:1", admin_factory=lambda c: FakeAdmin([], RuntimeError("timed out")))
    result = run_check(check)
    assert not result.ok and result.detail == "RuntimeError: timed out"


def test_kafka_check_against_nothing_listening_fails_within_timeout() -> None:
    from streams.stack.process import free_port

    result = run_check(KafkaCheck(f"127.0.0.1:{free_port()}", timeout=0.5))
    assert not result.ok
    assert result.detail


@pytest.fixture
def registry_server() -> Iterator[tuple[str, dict[str, Any]]]:
    state: dict[str, Any] = {"status": 200, "body": b'["ebi.telemetry.raw-value"]', "paths": []}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["paths"].append(self.path)
            self.send_response(state["status"])
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(state["body"])

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/apis/ccompat/v7/", state
    httpd.shutdown()
    httpd.server_close()


def test_registry_check_reads_subjects(registry_server: tuple[str, dict[str, Any]]) -> None:
    url, state = registry_server
    assert RegistryCheck(url)() == CheckResult(True, "1 subject(s)")
    assert state["paths"] == ["/apis/ccompat/v7/subjects"]


def test_registry_check_fails_on_http_error_and_bad_body(
        registry_server: tuple[str, dict[str, Any]]) -> None:
    url, state = registry_server
    state["status"] = 503
    result = RegistryCheck(url)()
    assert not result.ok and "HTTP 503" in result.detail
    state["status"], state["body"] = 200, json.dumps({"not": "a list"}).encode()
    assert not RegistryCheck(url)().ok


def test_registry_check_fails_when_nothing_listens() -> None:
    from streams.stack.process import free_port

    result = RegistryCheck(f"http://127.0.0.1:{free_port()}", timeout=0.5)()
    assert not result.ok and "subjects" in result.detail


def test_clickhouse_check_wraps_the_sinks_ping() -> None:
    assert ClickHouseCheck(lambda: 1)().ok
    assert not ClickHouseCheck(lambda: False)().ok

    def down() -> None:
        raise ConnectionError("connection refused")

    result = run_check(ClickHouseCheck(down))
    assert not result.ok and "connection refused" in result.detail


def test_readiness_caches_for_ttl_and_names_failures() -> None:
    clock = FakeClock()
    calls = {"kafka": 0, "clickhouse": 0}

    def kafka() -> CheckResult:
        calls["kafka"] += 1
        return CheckResult(True, "fine")

    def clickhouse() -> CheckResult:
        calls["clickhouse"] += 1
        raise OSError("no route")

    readiness = Readiness({"kafka": kafka, "clickhouse": clickhouse}, ttl=5.0, clock=clock)
    first = readiness.run()
    assert Readiness.failing(first) == ["clickhouse"]
    assert first["clickhouse"].detail == "OSError: no route"
    clock.now += 4.9
    assert readiness.run() is first
    assert calls == {"kafka": 1, "clickhouse": 1}
    clock.now += 0.2
    readiness.run()
    assert calls == {"kafka": 2, "clickhouse": 2}


def test_check_result_as_dict_is_json_ready() -> None:
    assert json.loads(json.dumps(CheckResult(False, "x", 0.123456).as_dict())) == {
        "ok": False, "detail": "x", "seconds": 0.1235}
