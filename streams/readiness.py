"""Readiness checks for ``/readyz``: can this process reach what it needs right now?

A check is a callable with no arguments that returns a :class:`CheckResult`; it never raises
(:func:`run_check` turns an exception into a failed result). Checks carry their own short
timeouts. :class:`Readiness` runs a named set of them and caches the answer for a few
seconds, so a probe every second does not hammer Kafka, the registry or ClickHouse.

    checks = {
        "kafka": KafkaCheck(settings.bootstrap, topics=[settings.topic("telemetry.raw")]),
        "registry": RegistryCheck(settings.registry_url),
        "clickhouse": ClickHouseCheck(client.ping),   # any callable that raises when down
    }
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str = ""
    seconds: float = 0.0  # how long the check took

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "detail": self.detail, "seconds": round(self.seconds, 4)}


Check = Callable[[], CheckResult]


def run_check(check: Check, clock: Callable[[], float] = time.monotonic) -> CheckResult:
    """Run one check; an exception becomes a failed result naming it. Times the call."""
    started = clock()
    try:
        result = check()
    except Exception as exc:  # a check must never take the server down
        result = CheckResult(False, f"{type(exc).__name__}: {exc}")
    return CheckResult(result.ok, result.detail, clock() - started)


class _Admin(Protocol):
    def list_topics(self, *args: Any, **kwargs: Any) -> Any: ...


AdminConfig = dict[str, Any]


def _confluent_admin(config: AdminConfig) -> _Admin:
    from confluent_kafka.admin import AdminClient

    return AdminClient(config)


class KafkaCheck:
    """Kafka answers a metadata request within ``timeout``; optionally ``topics`` exist.

    The admin client is created on the first call and reused afterwards."""

    def __init__(self, bootstrap: str, *, timeout: float = 2.0, topics: Sequence[str] = (),
                 config: Mapping[str, Any] | None = None,
                 admin_factory: Callable[[AdminConfig], _Admin] = _confluent_admin) -> None:
        self.bootstrap = bootstrap
        self.config = dict(config or {})   # client settings (security, logging) to add
        self.timeout = timeout
        self.topics = tuple(topics)
        self._factory = admin_factory
        self._admin: _Admin | None = None
        self._lock = threading.Lock()

    def _client(self) -> _Admin:
        with self._lock:
            if self._admin is None:
                self._admin = self._factory({
                    **self.config,
                    "bootstrap.servers": self.bootstrap,
                    "socket.timeout.ms": max(1000, int(self.timeout * 1000)),
                    "log.connection.close": False,
                })
            return self._admin

    def __call__(self) -> CheckResult:
        metadata = self._client().list_topics(timeout=self.timeout)
        brokers = len(getattr(metadata, "brokers", {}) or {})
        present = set(getattr(metadata, "topics", {}) or {})
        missing = [t for t in self.topics if t not in present]
        if missing:
            return CheckResult(False, f"missing topics: {', '.join(missing)}")
        return CheckResult(True, f"{brokers} broker(s), {len(present)} topic(s)")


class RegistryCheck:
    """The schema registry's Confluent-compatible API answers ``GET {url}/subjects``."""

    def __init__(self, url: str, *, timeout: float = 2.0,
                 headers: Mapping[str, str] | None = None, context: Any = None) -> None:
        self.url = url.rstrip("/") + "/subjects"
        self.timeout = timeout
        self.headers = dict(headers or {})   # e.g. Authorization (never shown)
        self.context = context               # ssl.SSLContext for https

    def __call__(self) -> CheckResult:
        request = urllib.request.Request(self.url, headers={"Accept": "application/json",
                                                            **self.headers})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout,
                                        context=self.context) as response:
                body = json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return CheckResult(False, f"GET {self.url}: HTTP {exc.code}")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return CheckResult(False, f"GET {self.url}: {reason}")
        if not isinstance(body, list):
            return CheckResult(False, f"GET {self.url}: expected a JSON list of subjects")
        return CheckResult(True, f"{len(body)} subject(s)")


class ClickHouseCheck:
    """ClickHouse is reachable: ``ping`` (given by the sink, e.g. ``SELECT 1`` with a short
    timeout) returns without raising; a returned ``False`` also counts as a failure."""

    def __init__(self, ping: Callable[[], object]) -> None:
        self.ping = ping

    def __call__(self) -> CheckResult:
        answer = self.ping()
        if answer is False:
            return CheckResult(False, "ping returned False")
        return CheckResult(True, "reachable")


class Readiness:
    """Runs named checks, caching the whole answer for ``ttl`` seconds; thread-safe (one run
    at a time, concurrent callers get the fresh cached answer)."""

    def __init__(self, checks: Mapping[str, Check], *, ttl: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.checks = dict(checks)
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, CheckResult]] | None = None

    def run(self) -> dict[str, CheckResult]:
        with self._lock:
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < self.ttl:
                return self._cached[1]
            results = {name: run_check(check, self._clock) for name, check in self.checks.items()}
            self._cached = (self._clock(), results)
            return results

    @staticmethod
    def failing(results: Mapping[str, CheckResult]) -> list[str]:
        return sorted(name for name, result in results.items() if not result.ok)
