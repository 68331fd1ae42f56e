"""The ClickHouse sink: envelopes of the clean topics -> columnar inserts, replay-safe.

``write(batch)``: skip envelopes whose input message the ledger already holds, insert each
table's columns in the catalog's order (retrying transient errors briefly, then raising
BackpressureError so the consumer pauses), isolate rows ClickHouse rejects for good by
bisecting and write them to the dead letters (stage ``sink``), and insert the ledger rows
last (rows of the ledger ClickHouse rejects become dead letters too, LEDGER_REJECTED).

Poison pills: a batch on which writing fails with anything that is not a ClickHouse error
(a record the encoder cannot handle, a bug) is tried again ``poison_attempts`` times; then
its envelopes are written in halves until each one that fails alone is set aside to the dead
letters (QUARANTINED, with the exception and the record as JSON), and the rest is written.
Envelopes come from :class:`~sinks.clickhouse.encoding.EnvelopeDecoder`, which the consumer
loop calls.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from schemas.catalog import default_catalog
from schemas.catalog.model import Catalog
from schemas.records import Source, dead_letter
from sinks.base import BackpressureError, Batch, BatchingSink
from sinks.clickhouse.backend import (
    Backend,
    ClickHouseError,
    PermanentError,
    SchemaError,
    TransientError,
)
from sinks.clickhouse.encoding import Columns, Envelope, TableEncoder, take
from sinks.clickhouse.ledger import LEDGER_TYPES, LedgerRows, already_recorded
from sinks.clickhouse.recheck import recheck
from sinks.clickhouse.schema import CONSUMED_COLUMNS, TableSpec, table_specs
from streams.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")
CONSUMED_TYPES = dict(CONSUMED_COLUMNS)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3          # tries per statement inside one write
    delay: float = 0.2         # first pause between tries (doubles)
    backoff: float = 0.5       # first wait asked of the consumer (doubles per failure)
    max_backoff: float = 10.0  # longest wait asked of the consumer


class ClickHouseSink(BatchingSink):
    def __init__(self, backend: Backend, metrics: Metrics, max_rows: int, max_seconds: float,
                 retry: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 catalog: Catalog | None = None, poison_attempts: int = 3) -> None:
        super().__init__(max_rows, max_seconds)
        catalog = catalog or default_catalog()
        self.backend = backend
        self.metrics = metrics
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.specs = table_specs(catalog)       # in write order, dead letters last
        self.encoders = {name: TableEncoder(spec, backend.features)
                         for name, spec in self.specs.items()}
        self.ledger = LedgerRows(catalog)
        self.dead_table = catalog.dead_letter_table()
        self.failures = 0
        self.poison_attempts = max(1, poison_attempts)
        self.poisoned = 0            # batches in a row that failed with an unexpected error
        self.skipped_replays = 0
        started = time.time()
        for table in self.specs:  # series exist from the start, so "stalled" can fire
            metrics.sink_last_insert.labels(table=table).set(started)
            metrics.sink_errors.labels(table=table, kind="transient")
            metrics.sink_errors.labels(table=table, kind="permanent")

    # -- output ----------------------------------------------------------------------------
    def write(self, batch: Batch) -> None:
        envelopes = batch.records()
        stamp = batch.stamp_ms     # the same on every retry: identical blocks (replicas
        try:                       # deduplicate a block they already have)
            self._write(envelopes, stamp)
        except TransientError as exc:
            self.failures += 1
            raise BackpressureError(self._backoff(), str(exc)) from exc
        except ClickHouseError:
            raise
        except Exception as exc:  # not ClickHouse's doing: a poison pill, or a bug
            self.poisoned += 1
            log.exception("writing a batch of %d envelopes failed (%d of %d)", len(envelopes),
                          self.poisoned, self.poison_attempts)
            if self.poisoned < self.poison_attempts:
                self.failures += 1
                raise BackpressureError(self._backoff(), f"{type(exc).__name__}: {exc}") \
                    from exc
            self._write_isolating(envelopes, stamp)
        self.failures = 0
        self.poisoned = 0

    def _backoff(self) -> float:
        return min(self.retry.max_backoff, self.retry.backoff * 2 ** (self.failures - 1))

    def _write_isolating(self, envelopes: list[Envelope], stamp: int) -> None:
        """Write in halves; an envelope that fails alone is quarantined."""
        try:
            self._write(envelopes, stamp)
            return
        except ClickHouseError:
            raise
        except Exception as exc:
            if len(envelopes) == 1:
                self._quarantine(envelopes[0], exc, stamp)
                return
        mid = len(envelopes) // 2
        self._write_isolating(envelopes[:mid], stamp)
        self._write_isolating(envelopes[mid:], stamp)

    def _quarantine(self, envelope: Envelope, exc: BaseException, stamp: int) -> None:
        record = envelope.record
        src = record.get("source") if isinstance(record.get("source"), dict) else None
        where = (Source(src["topic"], src["partition"], src["offset"]) if src else
                 Source(envelope.topic, envelope.partition, envelope.offset))
        text = json.dumps(record, default=repr)[: 1_000_000].encode()
        dead = Envelope(dead_letter(
            where, None, text, "QUARANTINED",
            f"message on {envelope.topic}[{envelope.partition}]@{envelope.offset} set aside "
            f"after failing {self.poison_attempts} times: {type(exc).__name__}: {exc}",
            "sink", stamp, tag=record.get("tag"),
            record_index=record.get("record_index") if envelope.table == self.dead_table
            else None),
            envelope.topic, envelope.partition, envelope.offset, self.dead_table)
        self._write([dead], stamp)
        self.metrics.quarantined.labels(stage="sink").inc()
        self.metrics.deadletter_writes.labels(stage="sink").inc()
        log.error("quarantined %s[%d]@%d: %s", envelope.topic, envelope.partition,
                  envelope.offset, exc)

    def _write(self, envelopes: list[Envelope], stamp: int) -> None:
        """Write the envelopes; every value derived from the clock comes from ``stamp``."""
        version = stamp
        now_s = version // 1000
        sources = [self.ledger.source_of(e) for e in envelopes]
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
        kept = self._recheck(kept)
        ledgered = [e for e in kept if self.ledger.source_of(e) is not None]
        by_table: dict[str, list[Envelope]] = {}
        for envelope in kept:
            if envelope.record.get("duplicate"):
                continue  # replays the worker recognised: ledger only
            by_table.setdefault(envelope.table, []).append(envelope)
        rejected: dict[int, int] = {}  # id(envelope) -> rows rejected
        sink_dead: list[Envelope] = []
        for table in self.specs:
            rows = by_table.get(table, [])
            if table == self.dead_table:
                rows = rows + sink_dead
            if rows:
                sink_dead += self._insert_table(table, rows, version, now_s, rejected)
        if ledgered:
            cols = self.ledger.columns([(e, rejected.get(id(e), 0)) for e in ledgered],
                                       version, now_s)
            bad = self._insert_isolating("ledger", cols, LEDGER_TYPES, 0, len(ledgered))
            if bad:
                self._insert_table(self.dead_table, [
                    self._ledger_rejected(ledgered[row], error, version) for row, error in bad],
                    version, now_s, rejected)
        self._call("consumed", lambda: self.backend.insert("consumed", {
            "clean_topic": [e.topic for e in envelopes],
            "clean_partition": [e.partition for e in envelopes],
            "clean_offset": [e.offset for e in envelopes],
            "stored_in": [e.table for e in envelopes],
            "inserted_at": [now_s] * len(envelopes)}, CONSUMED_TYPES))

    def _ledger_rejected(self, envelope: Envelope, error: str, stamp: int) -> Envelope:
        """A dead letter for an envelope whose ledger row ClickHouse rejected for good (its
        data rows are in; ``ebi reconcile`` shows the offset as a gap, explained here)."""
        src = envelope.record["source"]
        return Envelope(dead_letter(
            Source(src["topic"], src["partition"], src["offset"]), None, b"",
            "LEDGER_REJECTED", f"ClickHouse rejected the ledger row of "
            f"{envelope.topic}[{envelope.partition}]@{envelope.offset}: {error}", "sink",
            stamp, tag=envelope.record.get("tag")),
            envelope.topic, envelope.partition, envelope.offset, self.dead_table)

    def _recheck(self, envelopes: list[Envelope]) -> list[Envelope]:
        """Rows of envelopes marked ``recheck`` that are stored already are dropped."""
        for spec in self.specs.values():
            mine = [e for e in envelopes if e.table == spec.name]
            if not spec.table.row_id or not any(e.record.get("recheck") for e in mine):
                continue

            def check(spec: TableSpec = spec, mine: list[Envelope] = mine) -> list[Envelope]:
                return recheck(self.backend, spec, mine)

            checked = iter(self._call(spec.name, check))
            envelopes = [next(checked) if e.table == spec.name else e for e in envelopes]
        return envelopes

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
        return self._rejected(table, envelopes, cols, bad, rejected, version)

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
        field = self.specs[table].table.event_time
        now_ms = time.time() * 1000
        step = max(1, len(envelopes) // 32)
        hist = self.metrics.end_to_end_seconds.labels(table=table)
        for envelope in envelopes[::step]:
            at = envelope.record.get(field)
            if isinstance(at, int):
                hist.observe(max(0.0, (now_ms - at) / 1000))

    def _rejected(self, table: str, envelopes: list[Envelope], cols: Columns,
                  bad: list[tuple[int, str]], rejected: dict[int, int],
                  stamp: int) -> list[Envelope]:
        owners: list[tuple[Envelope, int | None]] = []
        columnar = self.specs[table].columnar
        for e in envelopes:
            if columnar:
                owners.extend((e, i) for i in range(e.rows))
            else:
                owners.append((e, None))
        key_column = self.specs[table].order_by[-1]
        out = []
        for row, error in bad:
            envelope, index = owners[row]
            rejected[id(envelope)] = rejected.get(id(envelope), 0) + 1
            values = {name: _jsonable(values[row]) for name, values in cols.items()}
            src = envelope.record.get("source") or {}
            where = (Source(src["topic"], src["partition"], src["offset"]) if src else
                     Source(envelope.topic, envelope.partition, envelope.offset))
            record_id = values.get(key_column)
            out.append(Envelope(dead_letter(
                where, None, json.dumps(values).encode(), "SINK_REJECTED",
                f"ClickHouse rejected the row for {table}: {error}", "sink",
                stamp, record_index=index,
                record_id=None if record_id is None else str(record_id),
                tag=envelope.record.get("tag")),
                envelope.topic, envelope.partition, envelope.offset, self.dead_table))
        self.metrics.deadletter_writes.labels(stage="sink").inc(len(out))
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value
