"""An in-memory stand-in for a ClickHouse backend (records statements and inserts)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sinks.clickhouse import PermanentError, QueryResult
from sinks.clickhouse.backend import Features
from sinks.clickhouse.config import ClickHouseConfig

MODERN = Features.for_version((26, 9, 2))
OLD = Features.for_version((18, 16, 1))


class FakeBackend:
    def __init__(self, features: Features = MODERN) -> None:
        self.config = ClickHouseConfig("chdb", "ebi")
        self.features = features
        self.commands: list[str] = []
        self.inserts: list[tuple[str, dict[str, list[Any]]]] = []
        self.failures: list[Exception] = []        # raised by the next calls, in order
        self.reject: Callable[[str, dict[str, Any]], bool] | None = None
        self.columns: dict[str, set[str]] = {}     # what system.columns answers
        self.migrations: dict[str, str] = {}

    def _maybe_fail(self) -> None:
        if self.failures:
            raise self.failures.pop(0)

    def query(self, sql: str) -> QueryResult:
        self._maybe_fail()
        if "FROM ledger" in sql:
            rows = [(t, p, o) for table, cols in self.inserts if table == "ledger"
                    for t, p, o in zip(cols["source_topic"], cols["source_partition"],
                                       cols["source_offset"], strict=True)]
            return QueryResult(["t", "p", "o"], [], rows)
        if sql.startswith("SELECT DISTINCT reading_id FROM readings_raw"):
            wanted = set(re.findall(r"'([^']*)'", sql.split(" IN (", 1)[1]))
            return QueryResult(["reading_id"], [], [(r["reading_id"],) for r in
                                                    self.rows("readings_raw")
                                                    if r["reading_id"] in wanted])
        if "system.columns" in sql:
            return QueryResult(["table", "name"], [], [
                (t, c) for t, cols in self.columns.items() for c in cols])
        if "schema_migrations" in sql:
            return QueryResult(["v", "c"], [], list(self.migrations.items()))
        return QueryResult([], [], [])

    def command(self, sql: str) -> None:
        self._maybe_fail()
        self.commands.append(sql)

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]],
               types: Mapping[str, str]) -> None:
        self._maybe_fail()
        cols = {k: list(v) for k, v in columns.items()}
        n = len(next(iter(cols.values())))
        if self.reject is not None:
            for i in range(n):
                if self.reject(table, {k: v[i] for k, v in cols.items()}):
                    raise PermanentError(f"Code: 53. row {i} of {table} rejected", 53)
        if table.endswith("schema_migrations"):
            for v, c in zip(cols["version"], cols["checksum"], strict=True):
                self.migrations[v] = c
        self.inserts.append((table, cols))

    def rows(self, table: str) -> list[dict[str, Any]]:
        out = []
        for name, cols in self.inserts:
            if name == table:
                n = len(next(iter(cols.values())))
                out += [{k: v[i] for k, v in cols.items()} for i in range(n)]
        return out

    def close(self) -> None:
        pass
