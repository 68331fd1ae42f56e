"""Tables on a ClickHouse cluster: replicated local tables under Distributed ones, generated
from the same single-server DDL; the single-server DDL itself unchanged; migrations ON
CLUSTER with per-server column steps for the Distributed layer; retries as identical blocks."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from schemas.catalog import default_catalog
from sinks.base import BackpressureError
from sinks.clickhouse import QueryResult, TransientError
from sinks.clickhouse.cluster import Layout
from sinks.clickhouse.config import cluster_url, parse_url
from sinks.clickhouse.migrations import (
    _migrations_table,
    column_steps,
    migrate,
    versioned_steps,
    view_steps,
)
from sinks.clickhouse.schema import ledger_sql, ledger_statements, table_specs
from streams.settings import Settings
from tests.unit.sinks import factories as f
from tests.unit.sinks.clickhouse.test_sink import Harness
from tests.unit.sinks.fakes import MODERN, OLD, FakeBackend

CLUSTER = Layout("ebi")


def _all(features: Any, layout: Layout) -> list[str]:
    steps = versioned_steps("ebi", features, None, layout) + view_steps("ebi", features, None,
                                                                         layout)
    return [_migrations_table("ebi", layout)] + [s for st in steps for s in st.statements]


def test_without_a_cluster_every_statement_is_the_single_server_one() -> None:
    for spec in table_specs().values():
        assert spec.create_statements("ebi", OLD) == (spec.create_sql("ebi", OLD),)
    assert ledger_statements("ebi") == (ledger_sql("ebi"),)
    assert not any("Replicated" in s or "ON CLUSTER" in s or "_local" in s
                   for s in _all(OLD, Layout()))


def test_each_table_is_replicated_locally_and_distributed_by_its_shard_key() -> None:
    spec = table_specs()["readings_raw"]
    local, dist = spec.create_statements("ebi", OLD, CLUSTER)
    single = spec.create_sql("ebi", OLD)
    assert local.startswith("CREATE TABLE IF NOT EXISTS ebi.readings_raw_local ON CLUSTER ebi (")
    assert "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/ebi/readings_raw'"\
        ", '{replica}', _version)" in local
    # the same columns, partitions and keys as on one server
    assert local.split("(", 1)[1].split("ENGINE")[0] == single.split("(", 1)[1].split("ENGINE")[0]
    assert local.split("_version)", 1)[1] == single.split("_version)", 1)[1]
    assert dist == ("CREATE TABLE IF NOT EXISTS ebi.readings_raw ON CLUSTER ebi AS "
                    "ebi.readings_raw_local ENGINE = Distributed('ebi', 'ebi', "
                    "'readings_raw_local', cityHash64(enterprise_id))")
    dead = table_specs()["dead_letters_raw"].create_statements("ebi", OLD, CLUSTER)[1]
    assert dead.endswith("cityHash64(source_topic, source_partition, source_offset))")
    ledger = ledger_statements("ebi", CLUSTER)
    assert "ReplicatedReplacingMergeTree" in ledger[0] and "Distributed" in ledger[1]


def test_rollups_aggregate_the_local_tables_and_views_read_the_distributed_ones() -> None:
    sql = _all(OLD, CLUSTER)
    mv = next(s for s in sql if "readings_1m_mv" in s)
    assert mv.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS ebi.readings_1m_mv ON CLUSTER "
                         "ebi TO ebi.readings_1m_local AS")
    assert "FROM ebi.readings_raw_local" in mv
    assert any(s.startswith("CREATE TABLE IF NOT EXISTS ebi.readings_1m_local ON CLUSTER ebi")
               for s in sql)
    view = next(s for s in sql if s.startswith("CREATE VIEW ebi.readings "))
    assert view.startswith("CREATE VIEW ebi.readings ON CLUSTER ebi AS") and \
        "FROM ebi.readings_raw FINAL" in view
    assert "DROP TABLE IF EXISTS ebi.readings ON CLUSTER ebi" in sql
    migrations = _migrations_table("ebi", CLUSTER)
    assert "'/clickhouse/tables/all/ebi/schema_migrations', '{replica}', applied_at" in migrations
    assert "Distributed" not in migrations
    creates = [s for s in sql if s.startswith("CREATE")]
    assert all("IF NOT EXISTS" in s or s.startswith("CREATE VIEW") for s in creates)
    # DDL on every server; the one-off backfill of a rollup (INSERT ... SELECT) goes through
    # the Distributed tables, once
    assert all("ON CLUSTER ebi" in s for s in sql if not s.startswith("INSERT INTO"))
    assert [s for s in sql if s.startswith("INSERT INTO")] == [
        s for s in sql if s.startswith("INSERT INTO ebi.reading_minutes SELECT")]


@pytest.mark.parametrize("features", [OLD, MODERN], ids=["18.16", "current"])
def test_the_cluster_ddl_parses_on_a_current_clickhouse(features: Any) -> None:
    """chdb is current ClickHouse: formatQuery parses every statement without running it
    (18.16 runs them in tests/integration/test_cluster_faults.py)."""
    import chdb

    for statement in _all(features, CLUSTER):
        quoted = statement.replace("\\", "\\\\").replace("'", "\\'")
        chdb.query(f"SELECT formatQuery('{quoted}')", "CSV")


class ClusterBackend(FakeBackend):
    """A fake server of cluster ``ebi`` that knows two servers."""

    def __init__(self, name: str = "ch1") -> None:
        super().__init__(OLD)
        self.config = dataclasses.replace(self.config, kind="server", cluster="ebi", host=name)
        self.name = name
        self.made = False

    def query(self, sql: str) -> QueryResult:
        if "system.clusters" in sql:
            return QueryResult(["host_name", "port"], [], [("ch1", 9000), ("ch2", 9000)])
        if "system.tables" in sql:
            return QueryResult(["count()"], [], [(1 if self.made else 0,)])
        return super().query(sql)

    def command(self, sql: str) -> None:
        super().command(sql)
        self.made = self.made or "schema_migrations" in sql


def test_a_second_migrate_on_a_cluster_issues_no_ddl() -> None:
    """ON CLUSTER waits for every server: a sink starting with a replica down must not."""
    backend = ClusterBackend()
    migrate(backend, connect_host=lambda host, port: ClusterBackend(host))
    backend.columns = {f"{t.name}_local": {n for n, _ in t.columns(OLD)}
                       for t in table_specs().values()}
    backend.commands.clear()
    report = migrate(backend, connect_host=lambda host, port: ClusterBackend(host))
    assert report.applied == [] and backend.commands == []


def test_migrate_on_a_cluster_adds_a_column_on_cluster_then_on_every_server() -> None:
    backend = ClusterBackend()
    others = {"ch1": ClusterBackend("ch1"), "ch2": ClusterBackend("ch2")}
    report = migrate(backend, connect_host=lambda host, port: others[host])
    assert report.applied and all("ON CLUSTER ebi" in c for c in backend.commands
                                  if not c.startswith("INSERT INTO"))
    full = {t.name: {n for n, _ in t.columns(OLD)} for t in table_specs().values()}
    backend.columns = {f"{name}_local": set(cols) for name, cols in full.items()}
    backend.columns["alerts_raw_local"].discard("tag")
    for other in others.values():
        other.columns = {name: set(cols) for name, cols in full.items()}
    others["ch2"].columns["alerts_raw"].discard("tag")
    backend.commands.clear()
    report = migrate(backend, connect_host=lambda host, port: others[host])
    assert [s.version for s in report.applied] == ["column:alerts_raw_local.tag",
                                                   "column:alerts_raw.tag@ch2:9000"]
    assert backend.commands[-1] == ("ALTER TABLE ebi.alerts_raw_local ON CLUSTER ebi ADD "
                                    "COLUMN tag Nullable(String) DEFAULT NULL")
    assert others["ch2"].commands == [
        "ALTER TABLE ebi.alerts_raw ADD COLUMN tag Nullable(String) DEFAULT NULL"]
    assert others["ch1"].commands == []


def test_column_steps_without_a_cluster_are_those_of_one_server() -> None:
    backend = FakeBackend(MODERN)
    backend.columns = {t.name: {n for n, _ in t.columns(MODERN)} for t in table_specs().values()}
    backend.columns["alerts_raw"].discard("tag")
    (step,) = column_steps(backend, "ebi")
    assert step.version == "column:alerts_raw.tag" and step.host is None


def test_the_url_names_the_cluster_and_the_other_replicas() -> None:
    config = parse_url("clickhouse://u:p@a:9000/ebi?alt_hosts=b:9000,c:9001&cluster=ebi")
    assert config.alt_hosts == (("b", 9000), ("c", 9001)) and config.cluster == "ebi"
    assert "p@" not in config.display and "alt_hosts=b:9000,c:9001" in config.display
    assert parse_url("clickhouse://a:9000/ebi").display == "clickhouse://a:9000/ebi"
    with pytest.raises(ValueError, match="alt_hosts entry"):
        parse_url("clickhouse://a:9000/ebi?alt_hosts=b")


def test_the_local_stack_replicas_are_added_to_the_url() -> None:
    s = Settings(clickhouse_url="clickhouse://127.0.0.1:19000/ebi", clickhouse_replicas=2)
    assert cluster_url(s) == ("clickhouse://127.0.0.1:19000/ebi?cluster=ebi&"
                              "alt_hosts=127.0.0.1:19010")
    single = Settings(clickhouse_url="clickhouse://127.0.0.1:19000/ebi")
    assert cluster_url(single) == single.clickhouse
    external = Settings(clickhouse_url="clickhouse://ch:9000/ebi", clickhouse_cluster="prod")
    assert cluster_url(external) == "clickhouse://ch:9000/ebi?cluster=prod"


def test_a_retried_batch_sends_identical_blocks() -> None:
    """Replicated tables skip a block whose hash they know: the retry of a batch that failed
    half-way must carry the same rows, versions and insert times."""
    h = Harness()
    h.send("p.telemetry.clean", f.telemetry(0, readings=3))
    h.send("p.alerts", f.alert(1))
    h.backend.failures = [TransientError("replica gone")] * 5   # past the alerts insert
    calls = {"n": 0}
    original = h.backend.insert

    def insert(table: str, columns: Any, types: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:   # readings in, alerts in, the ledger fails
            h.backend.failures = [TransientError("replica gone")] * 2
        original(table, columns, types)

    h.backend.failures = []
    h.backend.insert = insert  # type: ignore[method-assign]
    with pytest.raises(BackpressureError):
        h.sink.flush()
    first = list(h.backend.inserts)
    time.sleep(0.01)
    h.send("p.alerts", f.alert(2))           # arrives while paused: not part of the retry
    h.backend.inserts.clear()
    h.backend.query = lambda sql: QueryResult([], [], [])  # type: ignore[method-assign]
    assert h.sink.flush() == {("p.telemetry.clean", 0): 1, ("p.alerts", 0): 1}
    retried = dict(h.backend.inserts)
    for table, cols in first:
        assert retried[table] == cols, table
    assert h.sink.flush() == {("p.alerts", 0): 2}


def test_catalog_refuses_co_partitioned_inputs_with_different_counts() -> None:
    catalog = default_catalog()
    beat = catalog.type("heartbeat")
    odd = dataclasses.replace(beat, input=dataclasses.replace(beat.input, partitions=6))
    from schemas.catalog.model import catalog_from

    with pytest.raises(ValueError, match="co-partitioned"):
        catalog_from([odd if t is beat else t for t in catalog.types], catalog.outputs,
                     catalog.schemas.dirs)


def test_column_comments_on_a_cluster_go_to_the_replicated_tables_where_the_server_can() -> None:
    from sinks.clickhouse.backend import Features
    from sinks.clickhouse.cluster import Layout
    from sinks.clickhouse.migrations import comment_steps

    layout = Layout("ebi")
    assert comment_steps("ebi", Features.for_version((18, 16, 1)), None, layout) == []
    steps = comment_steps("ebi", Features.for_version((24, 8)), None, layout)
    readings = next(s for s in steps if s.version == "comments:readings_raw")
    assert readings.statements[0].startswith(
        "ALTER TABLE ebi.readings_raw_local ON CLUSTER ebi COMMENT COLUMN ")
    single = comment_steps("ebi", Features.for_version((18, 16, 1)))
    assert next(s for s in single if s.version == "comments:readings_raw").statements[
        0].startswith("ALTER TABLE ebi.readings_raw COMMENT COLUMN ")
