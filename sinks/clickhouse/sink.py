"""The ClickHouse sink: decoded clean-topic records -> columnar inserts, replay-safe.

``write(batch)``: skip envelopes whose input message the ledger already holds, insert each
table's columns (retrying transient errors briefly, then raising BackpressureError so the
consumer pauses), isolate rows ClickHouse rejects for good by bisecting and write them to the
dead letters (stage ``sink``), and insert the ledger rows last.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from schemas.codec import DecodeError
from sinks.base import BackpressureError, Batch, BatchingSink
from sinks.clickhouse.client import Backend, PermanentError, SchemaError, TransientError
from sinks.clickhouse.encoding import Columns, Envelope, RecordDecoder, TableEncoder, take
from sinks.clickhouse.ledger import (
    LEDGER_TYPES,
    already_recorded,
    ledger_columns,
    source_of,
)
from sinks.clickhouse.schema import TABLES
from streams.metrics import Metrics
from streams.processors.columns import ragged, reading_count

log = logging.getLogger(__name__)
T = TypeVar("T")
# Event time per table, for the end-to-end latency metric.
EVENT_TIME = {"readings_raw": "sent_at", "incident_reports_raw": "reported_at",
              "hazards_raw": "updated_at", "alerts_raw": "raised_at",
              "gateway_status_raw": "changed_at", "dead_letters_raw": "failed_at"}
WRITE_ORDER = ("readings_raw", "incident_reports_raw", "hazards_raw", "alerts_raw",
               "gateway_status_raw", "dead_letters_raw")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3          # tries per statement inside one write
    delay: float = 0.2         # first pause between tries (doubles)
    backoff: float = 0.5       # first wait asked of the consumer (doubles per failure)
    max_backoff: float = 10.0  # longest wait asked of the consumer


class ClickHouseSink(BatchingSink):
    def __init__(self, backend: Backend, routes: dict[str, tuple[str, RecordDecoder]],
                 metrics: Metrics, max_rows: int, max_seconds: float,
                 retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """``routes``: full topic name -> (table, decoder)."""
        super().__init__(max_rows, max_seconds)
        self.backend = backend
        self.routes = routes
        self.metrics = metrics
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.encoders = {name: TableEncoder(spec, backend.features)
                         for name, spec in TABLES.items()}
        self.failures = 0
        self.skipped_replays = 0
        started = time.time()
        for table in WRITE_ORDER:  # series exist from the start, so "stalled" can fire
            metrics.sink_last_insert.labels(table=table).set(started)
            metrics.sink_errors.labels(table=table, kind="transient")
            metrics.sink_errors.labels(table=table, kind="permanent")

    # -- input -----------------------------------------------------------------------------
    def add_message(self, value: bytes | None, key: bytes | None, topic: str, partition: int,
                    offset: int) -> None:
        table, decoder = self.routes[topic]
        try:
            record, _ = decoder(value, topic)
        except DecodeError as exc:
            self.metrics.rejects.labels(topic=topic, reason=exc.code).inc()
            record = _dead_letter((topic, partition, offset), key, value or b"", exc.code,
                                  exc.message, None, None, None)
            table = "dead_letters_raw"
        if table == "readings_raw":
            problem = ragged(record)
            if problem is not None:  # permanent: the whole message goes to the dead letters
                self.metrics.rejects.labels(topic=topic, reason="RAGGED_COLUMNS").inc()
                src = record["source"]
                record = _dead_letter((src["topic"], src["partition"], src["offset"]), key,
                                      value or b"", "RAGGED_COLUMNS",
                                      f"message on {topic}[{partition}]@{offset}: {problem}",
                                      None, None, record.get("tag"))
                table = "dead_letters_raw"
        envelope = Envelope(record, topic, partition, offset, table)
        rows = reading_count(record) if table == "readings_raw" else 1
        self.add(envelope, topic, partition, offset, max(rows, 1))

    # -- output ----------------------------------------------------------------------------
    def write(self, batch: Batch) -> None:
        try:
            self._write(batch.records())
        except TransientError as exc:
            self.failures += 1
            retry_after = min(self.retry.max_backoff,
                              self.retry.backoff * 2 ** (self.failures - 1))
            raise BackpressureError(retry_after, str(exc)) from exc
        self.failures = 0

    def _write(self, envelopes: list[Envelope]) -> None:
        version = time.time_ns() // 1_000_000
        now_s = version // 1000
        sources = [source_of(e) for e in envelopes]
        recorded = self._call("ledger", lambda: already_recorded(
            self.backend, {s for s in sources if s is not None}))
        kept: list[Envelope] = []
        ledgered: list[Envelope] = []
        in_batch: set[tuple[str, int, int]] = set()
        for envelope, source in zip(envelopes, sources, strict=True):
            if source is not None:
                if source in recorded or source in in_batch:
                    self.skipped_replays += 1
                    continue
                in_batch.add(source)
                ledgered.append(envelope)
            kept.append(envelope)
        by_table: dict[str, list[Envelope]] = {}
        for envelope in kept:
            if envelope.record.get("duplicate"):
                continue  # replays the worker recognised: ledger only
            by_table.setdefault(envelope.table, []).append(envelope)
        rejected: dict[int, int] = {}  # id(envelope) -> rows rejected
        sink_dead: list[Envelope] = []
        for table in WRITE_ORDER:
            rows = by_table.get(table, [])
            if table == "dead_letters_raw":
                rows = rows + sink_dead
            if rows:
                sink_dead += self._insert_table(table, rows, version, now_s, rejected)
        if ledgered:
            cols = ledger_columns([(e, rejected.get(id(e), 0)) for e in ledgered],
                                  version, now_s)
            self._call("ledger", lambda: self.backend.insert("ledger", cols, LEDGER_TYPES))

    def _insert_table(self, table: str, envelopes: list[Envelope], version: int, now_s: int,
                      rejected: dict[int, int]) -> list[Envelope]:
        """Insert; returns dead letters for the rows ClickHouse rejected for good."""
        encoder = self.encoders[table]
        cols = encoder.encode(envelopes, version, now_s)
        n = len(next(iter(cols.values())))
        if n == 0:
            return []
        started = time.perf_counter()
        bad = self._insert_isolating(table, cols, encoder.types, 0, n)
        m = self.metrics
        m.sink_insert_seconds.labels(table=table).observe(time.perf_counter() - started)
        m.sink_rows.labels(table=table).inc(n - len(bad))
        m.sink_batches.labels(table=table).inc()
        m.sink_last_insert.labels(table=table).set(time.time())
        self._observe_latency(table, envelopes)
        if not bad:
            return []
        m.sink_errors.labels(table=table, kind="permanent").inc(len(bad))
        return self._rejected(table, envelopes, cols, bad, rejected)

    def _insert_isolating(self, table: str, cols: Columns, types: dict[str, str],
                          start: int, stop: int) -> list[tuple[int, str]]:
        part = cols if start == 0 and stop == len(next(iter(cols.values()))) else take(
            cols, start, stop)
        try:
            self._call(table, lambda: self.backend.insert(table, part, types))
            return []
        except SchemaError:
            raise
        except PermanentError as exc:
            if stop - start == 1:
                log.warning("ClickHouse rejected a row of %s: %s", table, exc)
                return [(start, str(exc))]
            mid = (start + stop) // 2
            return (self._insert_isolating(table, cols, types, start, mid)
                    + self._insert_isolating(table, cols, types, mid, stop))

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        delay = self.retry.delay
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return fn()
            except TransientError as exc:
                self.metrics.sink_errors.labels(table=what, kind="transient").inc()
                if attempt == self.retry.attempts:
                    raise
                self.metrics.sink_retries.labels(table=what).inc()
                log.info("transient ClickHouse error (%s), retry %d: %s", what, attempt, exc)
                self.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _observe_latency(self, table: str, envelopes: Sequence[Envelope]) -> None:
        field = EVENT_TIME[table]
        now_ms = time.time() * 1000
        step = max(1, len(envelopes) // 32)
        hist = self.metrics.end_to_end_seconds.labels(table=table)
        for envelope in envelopes[::step]:
            at = envelope.record.get(field)
            if isinstance(at, int):
                hist.observe(max(0.0, (now_ms - at) / 1000))

    def _rejected(self, table: str, envelopes: list[Envelope], cols: Columns,
                  bad: list[tuple[int, str]], rejected: dict[int, int]) -> list[Envelope]:
        owners: list[tuple[Envelope, int | None]] = []
        for e in envelopes:
            if table == "readings_raw":
                owners.extend((e, i) for i in range(reading_count(e.record)))
            else:
                owners.append((e, None))
        out = []
        for row, error in bad:
            envelope, index = owners[row]
            rejected[id(envelope)] = rejected.get(id(envelope), 0) + 1
            values = {name: _jsonable(values[row]) for name, values in cols.items()}
            src = envelope.record.get("source") or {}
            where = ((src["topic"], src["partition"], src["offset"]) if src else
                     (envelope.topic, envelope.partition, envelope.offset))
            record_id = values.get("reading_id") or values.get(TABLES[table].order_by[0])
            out.append(Envelope(_dead_letter(
                where, None, json.dumps(values).encode(), "SINK_REJECTED",
                f"ClickHouse rejected the row for {table}: {error}", index,
                None if record_id is None else str(record_id), envelope.record.get("tag")),
                envelope.topic, envelope.partition, envelope.offset, "dead_letters_raw"))
        self.metrics.deadletter_writes.labels(stage="sink").inc(len(out))
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _dead_letter(where: tuple[str, int, int], key: bytes | None, value: bytes, code: str,
                 message: str, index: int | None, record_id: str | None,
                 tag: str | None) -> dict[str, Any]:
    topic, partition, offset = where
    return {"source": {"topic": topic, "partition": partition, "offset": offset,
                       "schema_id": None},
            "key": key, "value": value, "error_code": code, "error_message": message,
            "stage": "sink", "record_index": index, "record_id": record_id,
            "failed_at": time.time_ns() // 1_000_000, "tag": tag}
