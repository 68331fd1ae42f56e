"""One throughput run: start the consumers, poll ``count()`` until every reading is queryable.

Full pipeline: ``ebi sink`` and N x ``ebi worker`` as child processes (own groups, own
database), rows counted in ``readings_raw``. Baseline: ``python -m bench.baseline`` on the
same raw topic into its own MergeTree. Sustained throughput is measured between the first
visible row and the last; the total wall time includes start-up.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import Child, child_env, reap, run_step, spawn, stop
from sinks.clickhouse.config import login_url
from streams.settings import Settings

READINGS_TABLE = "readings_raw"   # sinks/clickhouse/schema.py READINGS
MISSING = {60, 81}                # ClickHouse error codes UNKNOWN_TABLE, UNKNOWN_DATABASE


class RowCounter:
    """``SELECT count()`` of one table over the native protocol (0 while it does not exist)."""

    def __init__(self, url: str, table: str) -> None:
        from clickhouse_driver import Client

        parts = urllib.parse.urlparse(url)
        self.database = parts.path.strip("/") or "default"
        self.table = table
        self.client = Client(host=parts.hostname or "127.0.0.1", port=parts.port or 9000,
                             user=urllib.parse.unquote(parts.username or "default"),
                             password=urllib.parse.unquote(parts.password or ""),
                             database="default")

    def count(self) -> int:
        try:
            rows = self.client.execute(f"SELECT count() FROM {self.database}.{self.table}")
        except Exception as exc:  # the table appears when the consumer has created it
            if getattr(exc, "code", None) in MISSING:
                return 0
            raise
        return int(rows[0][0])

    def execute(self, sql: str) -> Any:
        return self.client.execute(sql)

    def close(self) -> None:
        self.client.disconnect()


class EmbeddedRowCounter:
    """``SELECT count()`` on the embedded store through the sink's query server: the sink owns
    the store, so the counter never opens it (0 until the sink serves queries)."""

    def __init__(self, url: str, table: str) -> None:
        from sinks.clickhouse.config import parse_url

        self.config = parse_url(url)
        self.database = self.config.database
        self.table = table
        self.remote: Any = None

    def execute(self, sql: str) -> Any:
        from sinks.clickhouse.remote import RemoteBackend

        if self.remote is None:
            self.remote = RemoteBackend.for_store(self.config)
            if self.remote is None:
                raise LookupError("the sink does not serve queries yet")
        return self.remote.query(sql).rows

    def count(self) -> int:
        from sinks.clickhouse.backend import ClickHouseError

        try:
            rows = self.execute(f"SELECT count() FROM {self.database}.{self.table}")
        except (LookupError, ClickHouseError):   # not served yet, or no table yet
            return 0
        return int(rows[0][0])

    def close(self) -> None:
        self.remote = None


def row_counter(settings: Settings, table: str) -> RowCounter | EmbeddedRowCounter:
    if settings.clickhouse.startswith("chdb:"):
        return EmbeddedRowCounter(settings.clickhouse, table)
    return RowCounter(login_url(settings), table)


@dataclass
class Run:
    name: str
    expected: int
    visible: int = 0
    total_s: float = 0.0          # start of the consumers to the last row visible
    first_s: float = 0.0          # start to the first row visible (start-up + first batch)
    sustained_s: float = 0.0      # first visible row to the last
    sustained_rows: int = 0
    complete: bool = False
    usage: dict[str, dict[str, float]] = field(default_factory=dict)
    note: str = ""
    side_rows: dict[str, int] = field(default_factory=dict)  # alerts etc. (clean data: ~0)

    @property
    def readings_per_s(self) -> float:
        if self.sustained_s > 0 and self.sustained_rows > 0:
            return self.sustained_rows / self.sustained_s
        return self.visible / self.total_s if self.total_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "readings": self.visible, "expected": self.expected,
                "complete": self.complete, "readings_per_s": round(self.readings_per_s, 1),
                "total_s": round(self.total_s, 3), "first_row_s": round(self.first_s, 3),
                "sustained_s": round(self.sustained_s, 3), "usage": self.usage,
                "side_rows": self.side_rows,
                **({"note": self.note} if self.note else {})}


def watch(run: Run, counter: RowCounter | EmbeddedRowCounter, children: list[Child], *,
          poll: float = 0.1, stall_s: float = 45.0,
          on_first: Callable[[], None] | None = None) -> None:
    """Poll until ``run.expected`` rows are visible (or nothing moves for ``stall_s``)."""
    started = time.monotonic()
    first: tuple[float, int] | None = None
    first_cpu: dict[str, float] = {}
    last_change, last = started, 0
    while True:
        for child in children:
            if child.restart_if_asked():
                print(f"bench {run.name}: {child.name} asked to start over (exit 75); "
                      "restarted it, as `ebi run` would", flush=True)
            child.check()
        now = time.monotonic()
        count = counter.count()
        if count != last:
            last_change, last = now, count
        if count and first is None:
            first = (now, count)
            first_cpu = {c.name: u.cpu_s for c in children if (u := c.usage()) is not None}
            if on_first is not None:
                on_first()
        if count >= run.expected or now - last_change > stall_s:
            break
        time.sleep(poll)
    run.visible = last
    run.complete = last >= run.expected
    run.total_s = last_change - started
    if first is not None:
        run.first_s = first[0] - started
        run.sustained_s = last_change - first[0]
        run.sustained_rows = last - first[1]
    restarts = {c.name: c.restarts for c in children if c.restarts}
    if restarts:
        run.note = f"restarted after exit 75: {restarts}"
    for child in children:
        u = child.usage()
        if u is None:
            continue
        steady = u.cpu_s - first_cpu.get(child.name, 0.0)
        rows = max(run.sustained_rows, 1)
        run.usage[child.name] = {
            "cpu_s": round(u.cpu_s, 2), "cpu_s_steady": round(steady, 2),
            "cpu_s_per_m": round(steady / rows * 1e6, 2) if run.sustained_rows else 0.0,
            "cpu_s_per_m_total": round(u.cpu_s / max(last, 1) * 1e6, 2),
            "peak_rss_mb": round(u.peak_rss_mb, 1), "pid": child.pid}


def side_rows(counter: RowCounter | EmbeddedRowCounter) -> dict[str, int]:
    """Rows in the other tables so far: on clean traffic alerts and dead letters should be
    (nearly) zero; many would mean false positives that cost throughput."""
    out = {}
    for table in ("alerts_raw", "dead_letters_raw", "gateway_status_raw"):
        try:
            out[table] = int(counter.execute(
                f"SELECT count() FROM {counter.database}.{table}")[0][0])
        except Exception:  # a table another version of the sink does not have
            continue
    return out


def full(settings: Settings, name: str, expected: int, log_dir: Path, *, workers: int = 1,
         on_first: Callable[[list[Child]], None] | None = None, poll: float = 0.1,
         verify: bool = True, worker_input: str = "fetches") -> Run:
    """The full pipeline over the raw topics of ``settings.topic_prefix`` (``verify``
    False: the workers run with signature verification off; ``worker_input``: how they
    take their input, see streams/worker/fetches.py)."""
    env = child_env(settings)
    env["EBI_WORKER_INPUT"] = worker_input
    if not verify:
        env["EBI_VERIFY_SIGNATURES"] = "false"
    run_step(["migrate", "--quiet"], env)
    counter = row_counter(settings, READINGS_TABLE)
    embedded = isinstance(counter, EmbeddedRowCounter)
    run = Run(name, expected)
    children: list[Child] = []
    try:
        children.append(spawn(f"{name}-sink", ["sink", "--no-migrate"], env, log_dir))
        for i in range(workers):
            worker = spawn(f"{name}-worker{i}", ["worker", "--instance", str(i)],
                           {**env, "EBI_WORKER_INSTANCE": str(i)}, log_dir)
            worker.restartable = True
            children.append(worker)
        hook = (lambda: on_first(children)) if on_first is not None else None
        # through the sink's query server a poll costs the sink a little: poll less often
        watch(run, counter, children, poll=max(poll, 0.5) if embedded else poll,
              on_first=hook)
        run.side_rows = side_rows(counter)
    finally:
        for child in reversed(children):
            stop(child)
        counter.close()
    return run


def baseline(settings: Settings, name: str, expected: int, log_dir: Path,
             poll: float = 0.1) -> Run:
    """The plain consumer (bench/baseline.py) on the same raw telemetry topic."""
    table = f"baseline_{name}"
    counter = RowCounter(login_url(settings), table)
    counter.execute(f"CREATE DATABASE IF NOT EXISTS {counter.database}")
    db_table = f"{counter.database}.{table}"
    batch_rows = max(1000, min(50_000, expected // 10))
    child = spawn(f"{name}-baseline", ["--bootstrap", settings.bootstrap, "--topic",
                                       settings.topic("telemetry"), "--clickhouse",
                                       settings.clickhouse, "--table", db_table, "--expect",
                                       str(expected), "--batch-rows", str(batch_rows)],
                  child_env(settings), log_dir, module="bench.baseline")
    child.may_exit = True
    run = Run(f"{name}-baseline", expected)
    try:
        watch(run, counter, [child], poll=poll)
        u = reap(child, timeout=30.0)
        run.usage = {}
        if u is not None:
            run.usage["baseline"] = {
                "cpu_s": round(u.cpu_s, 2), "peak_rss_mb": round(u.peak_rss_mb, 1),
                "cpu_s_per_m_total": round(u.cpu_s / max(run.visible, 1) * 1e6, 2)}
    finally:
        stop(child)
        counter.close()
    return run
