from __future__ import annotations

from schemas.catalog.declarations import TELEMETRY
from sinks.clickhouse import QueryResult
from sinks.reconcile import PartitionCheck, _ranges, reconcile, report_lines
from tests.unit.sinks.fakes import FakeBackend


def test_ranges_of_missing_offsets() -> None:
    assert _ranges([0, 1, 2, 5, 9], 0, 10) == [(3, 4), (6, 8)]
    assert _ranges([], 4, 6) == [(4, 5)]
    assert _ranges([3, 4, 5], 3, 6) == []
    assert _ranges([1, 2], 2, 3) == []  # offsets below the low watermark do not count


class LedgerBackend(FakeBackend):
    def query(self, sql: str) -> QueryResult:
        if "GROUP BY" in sql and "FROM ledger" in sql:
            return QueryResult([], [], [("p.telemetry", 0, 3, 1, 0, 2, 1, 30)])
        if "readings_raw" in sql:
            return QueryResult([], [], [("p.telemetry", 0, 29)])
        if "DISTINCT source_offset" in sql:
            return QueryResult([], [], [(0,), (1,), (2,), (4,)])
        return QueryResult([], [], [])


def test_reconcile_finds_gaps_and_missing_readings() -> None:
    (check,) = reconcile(LedgerBackend(), {("p.telemetry", 0): (0, 6)}, {"p.telemetry": TELEMETRY})
    assert (check.published, check.enriched, check.dead_letters) == (6, 3, 1)
    assert check.missing == [(3, 3), (5, 5)]
    assert (check.readings_found, check.readings_expected) == (29, 30)
    assert not check.ok
    text = "\n".join(report_lines([check]))
    assert "missing offsets (2): 3, 5" in text and "GAP" in text
    assert "readings table holds 29, ledger expects 30" in text


def test_a_clean_partition_is_ok() -> None:
    check = PartitionCheck("p.incidents", 1, 10, 12, enriched=2)
    assert check.ok and check.published == 2
