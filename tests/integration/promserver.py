"""A real Prometheus (Debian's /usr/bin/prometheus) for integration tests.

    prom = start_prometheus({"ebi-worker": [worker.url], "ebi-sink": [sink.url]}, tmp_path)
    try:
        prom.wait_for_targets_up()
        alert = prom.wait_for_alert("EbiSinkInsertErrors", timeout=30)
        value = prom.query("sum(ebi_records_in_total)")
    finally:
        prom.stop()

It scrapes the given targets every second and evaluates the repo's rules
(deploy/prometheus/rules/*.rules.yml) every second, on a free loopback port, with its data
and its generated config under ``workdir``. ``fast_rules=True`` loads a copy of the rules with
every ``for:`` set to 0s, so alerts with a pending period can fire within a short test;
``extra_rules`` adds rule files of the test's own.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.stack.process import free_port

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"
PROMETHEUS = "/usr/bin/prometheus"


class PrometheusError(RuntimeError):
    """Prometheus did not start, or an API call failed."""


def _hostport(target: str) -> str:
    """'http://127.0.0.1:9464' or '127.0.0.1:9464' -> '127.0.0.1:9464'."""
    return target.split("://", 1)[-1].split("/", 1)[0]


def _rule_files(workdir: Path, fast_rules: bool, extra_rules: Sequence[Path]) -> list[str]:
    files = sorted(RULES_DIR.glob("*.rules.yml"))
    if fast_rules:
        fast_dir = workdir / "rules-fast"
        fast_dir.mkdir(parents=True, exist_ok=True)
        copies = []
        for path in files:
            copy = fast_dir / path.name
            copy.write_text(re.sub(r"(?m)^(\s+)for:\s*\S+", r"\1for: 0s", path.read_text()))
            copies.append(copy)
        files = copies
    return [str(p) for p in [*files, *extra_rules]]


@dataclass
class PromServer:
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    log_file: Path
    _stopped: bool = field(default=False, repr=False)

    # -- HTTP API ------------------------------------------------------------------------
    def api(self, path: str, **params: str) -> Any:
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as response:
                body = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise PrometheusError(f"GET {path}: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"GET {path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query: the result vector, each item {"metric": {...}, "value": [t, "v"]}."""
        data = self.api("/api/v1/query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single value of an instant query, or None when it is empty."""
        result = self.query(expr)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(f"{expr} returned {len(result)} series")
        return float(result[0]["value"][1])

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts: each {"labels": {...}, "annotations": {...}, "state": ...}."""
        alerts: list[dict[str, Any]] = self.api("/api/v1/alerts")["alerts"]
        return alerts

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self.api("/api/v1/targets")["activeTargets"]
        return active

    # -- waiting -------------------------------------------------------------------------
    def wait_until(self, what: str, predicate: Callable[[], Any], timeout: float = 60.0
                   ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            answer = predicate()
            if answer:
                return answer
            if self.process.poll() is not None:
                raise PrometheusError(f"prometheus exited while waiting for {what}: "
                                      f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise PrometheusError(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(0.25)

    def wait_for_targets_up(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        def all_up() -> list[dict[str, Any]] | None:
            targets = self.targets()
            return targets if targets and all(t["health"] == "up" for t in targets) else None

        result: list[dict[str, Any]] = self.wait_until("all targets up", all_up, timeout)
        return result

    def wait_for_alert(self, name: str, state: str = "firing", timeout: float = 60.0,
                       **labels: str) -> dict[str, Any]:
        """The first alert ``name`` in ``state`` whose labels include ``labels``."""
        def found() -> dict[str, Any] | None:
            for alert in self.alerts():
                if (alert["labels"].get("alertname") == name and alert["state"] == state
                        and all(alert["labels"].get(k) == v for k, v in labels.items())):
                    return alert
            return None

        alert: dict[str, Any] = self.wait_until(f"alert {name} {state}", found, timeout)
        return alert

    # -- lifecycle -----------------------------------------------------------------------
    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> PromServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_prometheus(targets: Mapping[str, Sequence[str]], workdir: Path, *,
                     fast_rules: bool = False, extra_rules: Sequence[Path] = (),
                     binary: str = PROMETHEUS, timeout: float = 60.0) -> PromServer:
    """Start Prometheus scraping ``targets`` (job name -> ["host:port" or URLs]) at 1 s with
    the repo's rules evaluated every 1 s; returns once ``/-/ready`` answers 200."""
    if not Path(binary).exists():
        raise PrometheusError(f"{binary} not found: install the Debian package 'prometheus' "
                              "(make system-deps)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                   "evaluation_interval": "1s"},
        "rule_files": _rule_files(workdir, fast_rules, extra_rules),
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [_hostport(t) for t in hosts]}]}
            for job, hosts in targets.items()
        ],
    }
    config_file = workdir / "prometheus.yml"
    config_file.write_text(json.dumps(config, indent=1))  # JSON is YAML
    log_file = workdir / "prometheus.log"
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={config_file}",
             f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}",
             "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    server = PromServer(f"http://127.0.0.1:{port}", process, workdir, log_file)

    def ready() -> bool:
        try:
            with urllib.request.urlopen(server.url + "/-/ready", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    try:
        server.wait_until("prometheus /-/ready", ready, timeout)
    except BaseException:
        server.stop()
        raise
    return server
