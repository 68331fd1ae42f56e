"""The ledger: one row per input message of every ledgered record type, whatever became of it.

A clean record on a clean topic carries its input coordinates (``source``); a dead letter for
a whole message (no ``record_index``, not a row the sink had rejected) carries them too, and
so does a message the sink quarantined (QUARANTINED) in place of its record. What
a row counts comes from the record type's ledger declaration in the catalog (one record, or
an envelope of rows). Before a batch is written the sink asks which of its input
coordinates are already in the ledger and skips those envelopes, so a replay never reaches
the tables (and their materialized views) twice. The ledger row is inserted after the data
rows, so a crash in between only causes a replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from schemas.catalog.model import Catalog, Ledger
from sinks.clickhouse.backend import Backend
from sinks.clickhouse.encoding import Columns, Envelope
from sinks.clickhouse.schema import LEDGER_COLUMNS

Source = tuple[str, int, int]  # input topic, partition, offset
LEDGER_TYPES = dict(LEDGER_COLUMNS)


class LedgerRows:
    """Which envelopes the ledger accounts for, and their ledger rows (from the catalog)."""

    def __init__(self, catalog: Catalog) -> None:
        self.by_table: dict[str, Ledger] = {
            kind.table.name: kind.ledger for kind in catalog.ledgered
            if kind.table is not None and kind.ledger is not None}
        self.dead_table = catalog.dead_letter_table()

    def source_of(self, envelope: Envelope) -> Source | None:
        """The input coordinates an envelope accounts for in the ledger, if any."""
        record = envelope.record
        if envelope.table == self.dead_table:
            if record.get("record_index") is not None:
                return None      # one reading of a message: its envelope is ledgered
            if record.get("stage") == "sink" and record.get("error_code") != "QUARANTINED":
                return None      # a row ClickHouse rejected: its envelope is ledgered
        elif envelope.table not in self.by_table:
            return None
        src = record["source"]
        return (src["topic"], int(src["partition"]), int(src["offset"]))

    def columns(self, entries: Sequence[tuple[Envelope, int]], version: int,
                now_s: int) -> Columns:
        """Ledger rows for (envelope, rows ClickHouse rejected) pairs."""
        cols: Columns = {name: [] for name in LEDGER_TYPES}
        for envelope, sink_rejected in entries:
            row = self._row(envelope, sink_rejected)
            for name in LEDGER_TYPES:
                cols[name].append(row.get(name))
        n = len(entries)
        cols["_version"] = [version] * n
        cols["inserted_at"] = [now_s] * n
        return cols

    def _row(self, envelope: Envelope, sink_rejected: int) -> dict[str, Any]:
        r = envelope.record
        src = r["source"]
        row: dict[str, Any] = {
            "source_topic": src["topic"], "source_partition": src["partition"],
            "source_offset": src["offset"], "source_schema_id": src.get("schema_id"),
            "outcome": "enriched", "readings_in": 0, "accepted": 0, "duplicates": 0,
            "rejected": 0, "sink_rejected": sink_rejected, "duplicate": 0,
            "clean_topic": envelope.topic, "clean_partition": envelope.partition,
            "clean_offset": envelope.offset, "received_at_ms": r.get("received_at") or 0,
        }
        ledger = self.by_table.get(envelope.table)
        if ledger is None:  # a whole-message dead letter
            row.update(outcome="deadletter", record_type=r.get("error_code") or "",
                       record_id=r.get("record_id") or "", readings_in=1, rejected=1,
                       received_at_ms=r.get("failed_at") or 0)
            return row
        row.update(record_type=ledger.label,
                   record_id="/".join(str(r[name]) for name in ledger.record_id))
        if ledger.counts == "rows":
            row.update(readings_in=r["readings_in"], accepted=envelope.rows,
                       duplicates=r["duplicates"], rejected=r["rejected"])
        else:
            dup = 1 if r.get("duplicate") else 0
            row.update(readings_in=1, accepted=1 - dup, duplicates=dup, duplicate=dup)
        return row


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def already_recorded(backend: Backend, sources: Iterable[Source]) -> set[Source]:
    """Which of ``sources`` the ledger holds (one query, by offset range per partition)."""
    ranges: dict[tuple[str, int], list[int]] = {}
    for topic, partition, offset in sources:
        span = ranges.setdefault((topic, partition), [offset, offset])
        span[0] = min(span[0], offset)
        span[1] = max(span[1], offset)
    if not ranges:
        return set()
    where = " OR ".join(
        f"(source_topic = {_quote(t)} AND source_partition = {p} "
        f"AND source_offset BETWEEN {lo} AND {hi})"
        for (t, p), (lo, hi) in ranges.items())
    rows = backend.query("SELECT source_topic, source_partition, source_offset FROM ledger "
                         f"WHERE {where}").rows
    return {(str(t), int(p), int(o)) for t, p, o in rows}
