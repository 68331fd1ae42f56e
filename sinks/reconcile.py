"""Reconciliation: what Kafka says was published against what ClickHouse accounts for.

Per input topic of every ledgered record type and partition, every offset in ``[low, high)``
must appear exactly once in the ledger (a clean record or a whole-message dead letter). For
envelopes (ledger counts "rows", e.g. telemetry), the rows the ledger says were accepted must
also be in the record type's table. An offset not there yet is *in flight* when the worker
has not processed it (at or past its committed offset) or the sink has not stored it (the
sink is behind on the record type's clean topic by at least that many messages); anything
else is a gap.

Per topic the worker writes and partition (alerts, gateway statuses, dead letters, the
clean topics), every offset before the sink's committed offset must be in ``consumed`` (one
row per message the sink stored); the offsets after it are in flight.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.catalog.model import RecordType
from sinks.clickhouse.backend import Backend


@dataclass
class PartitionCheck:
    topic: str
    partition: int
    low: int
    high: int
    enriched: int = 0
    dead_letters: int = 0
    duplicates: int = 0          # envelopes the worker recognised as replays
    readings_dropped: int = 0    # readings dropped as duplicates inside envelopes
    readings_rejected: int = 0   # readings sent to the dead letters
    readings_expected: int = 0   # accepted by the worker, not rejected by ClickHouse
    readings_found: int = 0
    missing: list[tuple[int, int]] = field(default_factory=list)  # offset ranges [a, b]
    in_flight: int = 0           # missing offsets the worker or the sink has not got to yet

    @property
    def published(self) -> int:
        return max(0, self.high - self.low)

    @property
    def accounted(self) -> int:
        return self.enriched + self.dead_letters

    @property
    def missing_count(self) -> int:
        return sum(b - a + 1 for a, b in self.missing)

    @property
    def ok(self) -> bool:
        """Everything accounted for, or on its way (nothing lost)."""
        return (self.missing_count == self.in_flight and self.accounted <= self.published
                and (self.readings_found == self.readings_expected
                     or (self.in_flight > 0 and self.readings_found > self.readings_expected)))

    @property
    def status(self) -> str:
        if not self.ok:
            return "GAP"
        return "in flight" if self.in_flight else "ok"


@dataclass
class OutputCheck:
    """A topic the worker writes: offsets up to the sink's committed offset must be stored."""

    topic: str
    partition: int
    low: int
    high: int
    committed: int               # the sink group's committed offset (low when none)
    stored: int = 0              # of [low, committed): messages the sink stored

    @property
    def in_flight(self) -> int:
        return max(0, self.high - max(self.committed, self.low))

    @property
    def ok(self) -> bool:
        return self.stored >= max(0, self.committed - self.low)

    @property
    def status(self) -> str:
        if not self.ok:
            return "GAP"
        return "in flight" if self.in_flight else "ok"


def _ranges(offsets: Iterable[int], low: int, high: int) -> list[tuple[int, int]]:
    """Offsets in [low, high) that are NOT in ``offsets``, as inclusive ranges."""
    gaps = []
    expected = low
    for offset in sorted(o for o in set(offsets) if low <= o < high):
        if offset > expected:
            gaps.append((expected, offset - 1))
        expected = offset + 1
    if expected < high:
        gaps.append((expected, high - 1))
    return gaps


def _q(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _where(checks: list[PartitionCheck]) -> str:
    return " OR ".join(
        f"(source_topic = {_q(c.topic)} AND source_partition = {c.partition} AND "
        f"source_offset >= {c.low} AND source_offset < {c.high})" for c in checks)


def reconcile(backend: Backend, watermarks: dict[tuple[str, int], tuple[int, int]],
              kinds: dict[str, RecordType],
              processed: dict[tuple[str, int], int] | None = None,
              sink_behind: dict[str, int] | None = None) -> list[PartitionCheck]:
    """``watermarks``: (full input topic, partition) -> (low, high) from Kafka; ``kinds``:
    full input topic -> its record type (from the catalog); ``processed``: the worker
    group's committed offset per input partition (None or empty: all processed; a
    partition left out of the others: none yet); ``sink_behind``:
    full input topic -> messages of its clean topic the sink has not committed."""
    checks = {key: PartitionCheck(key[0], key[1], low, high)
              for key, (low, high) in sorted(watermarks.items())}
    if not checks:
        return []
    rows = backend.query(f"""
SELECT source_topic, source_partition, countIf(outcome = 'enriched'),
       countIf(outcome = 'deadletter'), sum(duplicate),
       sumIf(duplicates, outcome = 'enriched'), sumIf(rejected, outcome = 'enriched'),
       sumIf(accepted - sink_rejected, outcome = 'enriched')
FROM ledger FINAL WHERE {_where(list(checks.values()))}
GROUP BY source_topic, source_partition""").rows
    for topic, partition, enriched, dead, dup, dropped, rejected, expected in rows:
        check = checks[(str(topic), int(partition))]
        check.enriched, check.dead_letters, check.duplicates = int(enriched), int(dead), int(dup)
        kind = kinds[check.topic]
        if kind.ledger is not None and kind.ledger.counts == "rows":
            check.readings_dropped, check.readings_rejected = int(dropped), int(rejected)
            check.readings_expected = int(expected)
    by_table: dict[str, list[PartitionCheck]] = {}
    for check in checks.values():
        kind = kinds[check.topic]
        if kind.ledger is not None and kind.ledger.counts == "rows" and kind.table is not None:
            by_table.setdefault(kind.table.name, []).append(check)
    for table, parts in by_table.items():
        for topic, partition, found in backend.query(f"""
SELECT source_topic, source_partition, count() FROM {table} FINAL
WHERE {_where(parts)} GROUP BY source_topic, source_partition""").rows:
            checks[(str(topic), int(partition))].readings_found = int(found)
    behind = dict(sink_behind or {})
    for check in checks.values():
        if check.accounted != check.published:
            offsets = [int(r[0]) for r in backend.query(
                f"SELECT DISTINCT source_offset FROM ledger WHERE source_topic = "
                f"{_q(check.topic)} AND source_partition = {check.partition} AND "
                f"source_offset >= {check.low} AND source_offset < {check.high}").rows]
            check.missing = _ranges(offsets, check.low, check.high)
            # a partition the worker group has no committed offset for, while it has some:
            # nothing processed there yet (its first messages are in the worker's batch); a
            # group with none at all tells nothing (no worker has run: all processed)
            done = processed.get((check.topic, check.partition), check.low) if processed \
                else check.high
            at_worker = sum(b - max(a, done) + 1 for a, b in check.missing if b >= done)
            at_sink = min(check.missing_count - at_worker, behind.get(check.topic, 0))
            behind[check.topic] = behind.get(check.topic, 0) - at_sink
            check.in_flight = at_worker + at_sink
    return list(checks.values())


def reconcile_outputs(backend: Backend, watermarks: dict[tuple[str, int], tuple[int, int]],
                      committed: dict[tuple[str, int], int]) -> list[OutputCheck]:
    """``watermarks``: (full output topic, partition) -> (low, high); ``committed``: the sink
    group's committed offsets."""
    checks = {key: OutputCheck(key[0], key[1], low, high, committed.get(key, low))
              for key, (low, high) in sorted(watermarks.items())}
    parts = [c for c in checks.values() if c.committed > c.low]
    if not parts:
        return list(checks.values())
    where = " OR ".join(
        f"(clean_topic = {_q(c.topic)} AND clean_partition = {c.partition} AND "
        f"clean_offset >= {c.low} AND clean_offset < {c.committed})" for c in parts)
    for topic, partition, stored in backend.query(f"""
SELECT clean_topic, clean_partition, uniqExact(clean_offset) FROM consumed
WHERE {where} GROUP BY clean_topic, clean_partition""").rows:
        checks[(str(topic), int(partition))].stored = int(stored)
    return list(checks.values())


def report_lines(checks: list[PartitionCheck]) -> list[str]:
    head = (f"{'topic':<28} {'part':>4} {'published':>9} {'enriched':>8} {'deadltr':>7} "
            f"{'dup':>5} {'rd.drop':>7} {'rd.rej':>6} {'readings':>9} {'expected':>9}  status")
    lines = [head, "-" * len(head)]
    for c in checks:
        status = c.status + (f" ({c.in_flight})" if c.in_flight else "")
        lines.append(f"{c.topic:<28} {c.partition:>4} {c.published:>9} {c.enriched:>8} "
                     f"{c.dead_letters:>7} {c.duplicates:>5} {c.readings_dropped:>7} "
                     f"{c.readings_rejected:>6} {c.readings_found:>9} "
                     f"{c.readings_expected:>9}  {status}")
        if c.missing and not c.ok:
            shown = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in c.missing[:10])
            more = f" (+{len(c.missing) - 10} more ranges)" if len(c.missing) > 10 else ""
            lines.append(f"    missing offsets ({c.missing_count}): {shown}{more}")
        if c.accounted > c.published:
            lines.append(f"    {c.accounted - c.published} more ledger entries than offsets")
        if c.readings_found != c.readings_expected and not c.ok:
            lines.append(f"    readings table holds {c.readings_found}, ledger expects "
                         f"{c.readings_expected}")
    return lines


def output_lines(checks: list[OutputCheck]) -> list[str]:
    head = (f"{'topic':<28} {'part':>4} {'published':>9} {'committed':>9} {'stored':>8}  "
            "status")
    lines = [head, "-" * len(head)]
    for c in checks:
        status = c.status + (f" ({c.in_flight})" if c.in_flight else "")
        lines.append(f"{c.topic:<28} {c.partition:>4} {c.high - c.low:>9} "
                     f"{max(0, c.committed - c.low):>9} {c.stored:>8}  {status}")
    return lines
