"""A tiny status server for the worker and the sink: ``/metrics``, ``/healthz``, ``/readyz``.

- ``GET /metrics``: ``prometheus_client.generate_latest`` of the injected registry.
- ``GET /healthz``: 200 ``ok`` while the owner's loop is alive, i.e. it called
  :meth:`Heartbeat.beat` within ``max_age`` seconds; 503 naming the age when stale.
- ``GET /readyz``: runs the injected readiness checks (see :mod:`streams.readiness`, cached a
  few seconds); 200 with a JSON body of every check when all pass, else 503 naming the
  failing ones.

Usage (one server per process; nothing global, nothing at import time)::

    heartbeat = Heartbeat(max_age=30)
    server = StatusServer.from_settings(settings, "worker", metrics.registry,
                                        heartbeat=heartbeat, checks=checks)
    if server:            # None when settings.metrics_port == 0
        server.start()
    ...                   # in the processing loop / a periodic timer: heartbeat.beat()
    server.stop()

Ports: the worker serves on ``settings.metrics_port`` and the sink on ``metrics_port + 1``
(see :data:`ROLE_PORT_OFFSET`), so both can run on one host with one setting; 0 turns it off.
Binds ``settings.metrics_host`` (127.0.0.1 by default; 0.0.0.0 in containers).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streams.readiness import Check, Readiness
from streams.settings import Settings

log = logging.getLogger(__name__)

ROLE_PORT_OFFSET = {"worker": 0, "sink": 1}
DEFAULT_HOST = "127.0.0.1"


def port_for(settings: Settings, role: str) -> int:
    """The port a role serves on: ``metrics_port`` + its offset, or 0 (off)."""
    if settings.metrics_port == 0:
        return 0
    return settings.metrics_port + ROLE_PORT_OFFSET[role]


class Heartbeat:
    """Liveness of the owner's loop: call :meth:`beat` from it; stale after ``max_age`` s
    without a beat (counting from creation, which gives the loop time to start)."""

    def __init__(self, max_age: float = 30.0, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.max_age = max_age
        self._clock = clock
        self._last = clock()

    def beat(self) -> None:
        self._last = self._clock()

    def age(self) -> float:
        return self._clock() - self._last

    def alive(self) -> bool:
        return self.age() <= self.max_age


class StatusServer:
    """A threaded ``http.server`` on its own daemon thread; :meth:`start` / :meth:`stop`.

    ``port=0`` binds a free port (tests); read the bound one from :attr:`port` after start.
    """

    def __init__(self, registry: CollectorRegistry, *, port: int, host: str = DEFAULT_HOST,
                 heartbeat: Heartbeat | None = None, checks: Mapping[str, Check] | None = None,
                 ready_ttl: float = 5.0) -> None:
        self.registry = registry
        self.host = host
        self.heartbeat = heartbeat
        self.readiness = Readiness(checks or {}, ttl=ready_ttl)
        self._requested_port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings, role: str, registry: CollectorRegistry, *,
                      heartbeat: Heartbeat | None = None,
                      checks: Mapping[str, Check] | None = None) -> StatusServer | None:
        """The server for ``role`` ("worker" or "sink") on ``settings.metrics_host``, or
        None when metrics are off."""
        port = port_for(settings, role)
        if port == 0:
            return None
        return cls(registry, port=port, host=settings.metrics_host, heartbeat=heartbeat,
                   checks=checks)

    @property
    def port(self) -> int:
        if self._httpd is None:
            return self._requested_port
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        if self._httpd is not None:
            return
        httpd = ThreadingHTTPServer((self.host, self._requested_port), _handler_for(self))
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"status-http-{self.port}", daemon=True)
        self._thread.start()
        log.info("status server on %s (/metrics /healthz /readyz)", self.url)

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> StatusServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- responses: (status, content type, body) ----------------------------------------
    def metrics(self) -> tuple[int, str, bytes]:
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)

    def healthz(self) -> tuple[int, str, bytes]:
        if self.heartbeat is None or self.heartbeat.alive():
            return 200, "text/plain; charset=utf-8", b"ok\n"
        text = (f"stale: last heartbeat {self.heartbeat.age():.1f}s ago "
                f"(limit {self.heartbeat.max_age:g}s)\n")
        return 503, "text/plain; charset=utf-8", text.encode()

    def readyz(self) -> tuple[int, str, bytes]:
        results = self.readiness.run()
        failing = Readiness.failing(results)
        body = {
            "status": "not ready" if failing else "ready",
            "failing": failing,
            "checks": {name: result.as_dict() for name, result in sorted(results.items())},
        }
        data = (json.dumps(body, ensure_ascii=False, indent=1) + "\n").encode()
        return (503 if failing else 200), "application/json", data


def _handler_for(server: StatusServer) -> type[BaseHTTPRequestHandler]:
    routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
        "/metrics": server.metrics,
        "/healthz": server.healthz,
        "/readyz": server.readyz,
    }

    class Handler(BaseHTTPRequestHandler):
        server_version = "ebi-status"

        def do_GET(self) -> None:
            route = routes.get(self.path.split("?", 1)[0])
            if route is None:
                status, kind, body = 404, "text/plain; charset=utf-8", b"not found\n"
            else:
                try:
                    status, kind, body = route()
                except Exception:  # keep serving; the error is logged with its trace
                    log.exception("status server: %s failed", self.path)
                    status, kind, body = 500, "text/plain; charset=utf-8", b"error\n"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("status server: " + format, *args)

    return Handler
