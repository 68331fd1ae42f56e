"""Rows the worker could not vouch for: a columnar record marked ``recheck`` (some of its
readings are older than what the worker's deduplication remembers of their sensor: a replay
of dead letters, a gateway re-sending a back-fill) keeps only the rows whose id the table
does not hold yet. The rest are duplicates: they are counted in the ledger and reach
neither the table nor its rollups, so a replay is idempotent at rest."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.columns import keep
from sinks.clickhouse.backend import Backend
from sinks.clickhouse.encoding import Envelope
from sinks.clickhouse.schema import TableSpec

CHUNK = 5_000   # ids per lookup query


def _q(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def stored_ids(backend: Backend, spec: TableSpec, ids: Sequence[str], lo_ms: int,
               hi_ms: int) -> set[str]:
    """Which of ``ids`` the table holds among rows of event times in [lo, hi]."""
    column, when = spec.table.row_id, spec.table.row_time
    found: set[str] = set()
    unique = sorted(set(ids))
    for start in range(0, len(unique), CHUNK):
        part = unique[start:start + CHUNK]
        rows = backend.query(
            f"SELECT DISTINCT {column} FROM {spec.name} WHERE {when} >= "
            f"toDateTime({lo_ms // 1000}, 'UTC') AND {when} <= "
            f"toDateTime({hi_ms // 1000 + 1}, 'UTC') AND {column} IN "
            f"({', '.join(_q(i) for i in part)})").rows
        found.update(str(r[0]) for r in rows)
    return found


def recheck(backend: Backend, spec: TableSpec, envelopes: list[Envelope]) -> list[Envelope]:
    """The envelopes with rows already stored removed (counted as duplicates)."""
    marked = {id(e): e for e in envelopes if e.record.get("recheck") and e.rows}
    if not marked or not spec.table.row_id:
        return envelopes
    column, when = spec.table.row_id, spec.table.row_time
    ids = [i for e in marked.values() for i in e.record[column]]
    times = [t for e in marked.values() for t in e.record[when]]
    stored = stored_ids(backend, spec, ids, min(times), max(times))
    if not stored:
        return envelopes
    out = []
    for e in envelopes:
        if id(e) not in marked:
            out.append(e)
            continue
        wanted = [i not in stored for i in e.record[column]]
        dropped = wanted.count(False)
        if not dropped:
            out.append(e)
            continue
        record = keep(e.record, wanted)
        record["duplicates"] = e.record["duplicates"] + dropped
        out.append(Envelope(record, e.topic, e.partition, e.offset, e.table, e.rows - dropped))
    return out
