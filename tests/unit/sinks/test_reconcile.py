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


class FullBackend(LedgerBackend):
    def query(self, sql: str) -> QueryResult:
        if "readings_raw" in sql:
            return QueryResult([], [], [("p.telemetry", 0, 30)])
        return super().query(sql)


def test_offsets_the_worker_has_not_processed_are_in_flight_not_gaps() -> None:
    (check,) = reconcile(FullBackend(), {("p.telemetry", 0): (0, 6)},
                         {"p.telemetry": TELEMETRY}, processed={("p.telemetry", 0): 5},
                         sink_behind={"p.telemetry": 1})
    assert check.missing_count == 2 and check.in_flight == 2   # 5 at the worker, 3 at the sink
    assert check.ok and check.status == "in flight"


def test_missing_offsets_beyond_what_is_in_flight_are_a_gap() -> None:
    (check,) = reconcile(LedgerBackend(), {("p.telemetry", 0): (0, 6)},
                         {"p.telemetry": TELEMETRY}, processed={("p.telemetry", 0): 6},
                         sink_behind={})
    assert check.in_flight == 0 and check.status == "GAP"


class ConsumedBackend(FakeBackend):
    def query(self, sql: str) -> QueryResult:
        assert "FROM consumed" in sql
        return QueryResult([], [], [("p.alerts", 0, 8)])


def test_outputs_up_to_the_sinks_commit_must_be_stored() -> None:
    from sinks.reconcile import OutputCheck, output_lines, reconcile_outputs

    (ok,) = reconcile_outputs(ConsumedBackend(), {("p.alerts", 0): (2, 12)}, {("p.alerts", 0): 10})
    assert ok.ok and ok.in_flight == 2 and ok.status == "in flight"
    (gap,) = reconcile_outputs(ConsumedBackend(), {("p.alerts", 0): (0, 12)},
                               {("p.alerts", 0): 12})
    assert not gap.ok and "GAP" in "\n".join(output_lines([gap]))
    assert OutputCheck("p.x", 0, 0, 0, 0).status == "ok"


def test_a_partition_the_worker_never_committed_is_in_flight() -> None:
    marks = {("p.telemetry", 0): (0, 6), ("p.telemetry", 1): (0, 0)}
    check, _ = reconcile(FullBackend(), marks, {"p.telemetry": TELEMETRY},
                         processed={("p.telemetry", 1): 0}, sink_behind={})
    assert check.in_flight == check.missing_count and check.status == "in flight"
    # a group that committed nothing anywhere tells nothing: missing offsets are gaps
    check, _ = reconcile(FullBackend(), marks, {"p.telemetry": TELEMETRY}, processed={},
                         sink_behind={})
    assert check.in_flight == 0 and check.status == "GAP"
