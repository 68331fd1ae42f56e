"""HttpTransport against a tiny local HTTP server (loopback only)."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from streams.alarms.forwarder import AlertmanagerError, HttpTransport
from streams.stack.process import free_port


class Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, Any]]] = []

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Handler.seen.append(("POST", self.path, json.loads(raw)))
        if self.path == "/api/v2/alerts":
            self._answer(200, b"")
        elif self.path == "/api/v2/silences":
            self._answer(200, b'{"silenceID":"s-1"}')
        else:
            self._answer(400, b'"bad request: no matchers"')

    def do_GET(self) -> None:
        if self.path == "/slow":
            threading.Event().wait(2)
        self._answer(200, b"<html>" if self.path == "/html" else b"[]")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_json_in_and_out(base_url: str) -> None:
    transport = HttpTransport(base_url + "/")
    assert transport.request("POST", "/api/v2/alerts", [{"labels": {"a": "甲"}}]) is None
    assert Handler.seen[-1] == ("POST", "/api/v2/alerts", [{"labels": {"a": "甲"}}])
    assert transport.request("POST", "/api/v2/silences", {"x": 1}) == {"silenceID": "s-1"}
    assert transport.request("GET", "/api/v2/silences") == []


def test_http_errors_carry_status_and_detail(base_url: str) -> None:
    with pytest.raises(AlertmanagerError, match=r"POST /other: HTTP 400: .*no matchers") as exc:
        HttpTransport(base_url).request("POST", "/other", {})
    assert exc.value.status == 400 and not exc.value.retryable


def test_no_answer_is_status_0_and_retryable() -> None:
    with pytest.raises(AlertmanagerError, match=r"no answer from http://127\.0\.0\.1") as exc:
        HttpTransport(f"http://127.0.0.1:{free_port()}", timeout=1).request("GET", "/x")
    assert exc.value.status == 0 and exc.value.retryable


def test_a_slow_answer_times_out(base_url: str) -> None:
    with pytest.raises(AlertmanagerError) as exc:
        HttpTransport(base_url, timeout=0.2).request("GET", "/slow")
    assert exc.value.retryable


def test_an_answer_that_is_not_json(base_url: str) -> None:
    with pytest.raises(AlertmanagerError, match="not JSON"):
        HttpTransport(base_url).request("GET", "/html")


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retryable_statuses(status: int) -> None:
    assert AlertmanagerError("GET", "/", status, "x").retryable


def test_the_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="expected http"):
        HttpTransport("127.0.0.1:9093")
