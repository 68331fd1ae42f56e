"""Versioned, idempotent migrations, recorded in ``schema_migrations``.

Three kinds of step, all generated from the Avro schemas and the server's features:

* versioned (``0001`` ..., ``table:<name>`` for tables added since): tables, rollup tables and
  materialized views; applied once;
* column steps (``column:<table>.<column>``): a field added to an Avro schema (optional,
  with a default) becomes ``ALTER TABLE ... ADD COLUMN ... DEFAULT``; found by comparing
  ``system.columns`` with the generated columns, so they are applied exactly when needed;
* repeatable (``view:<name>``): the analyst views, re-created when their SQL changes;
  ``comments:<table>``: each column's classification as its comment
  (:mod:`.classification`), rewritten when a classification or a column changes.

Every statement is itself idempotent (IF NOT EXISTS, column checks), so a run interrupted
before it recorded a step just repeats it. Running twice changes nothing the second time.

On a cluster (the backend's URL names one: ``clickhouse_cluster``) the same steps make the
replicated and distributed layout of :mod:`sinks.clickhouse.cluster`, ON CLUSTER; a column
step alters the replicated table ON CLUSTER and then the Distributed table on each server of
the cluster (one step per server, ``column:<table>.<column>@<host>:<port>``). Without one,
every statement is the single-server one, as before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from schemas.catalog.model import Catalog
from sinks.clickhouse.backend import Backend, Features
from sinks.clickhouse.classification import comment_statements
from sinks.clickhouse.cluster import Layout, hosts_sql
from sinks.clickhouse.schema import consumed_statements, ledger_statements, table_specs
from sinks.clickhouse.views import (
    FIRST_MATERIALIZED_VIEWS,
    FIRST_ROLLUP_TABLES,
    MATERIALIZED_VIEWS,
    RETIRED,
    ROLLUP_SOURCES,
    ROLLUP_TABLES,
    analyst_views,
    rollups,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    version: str
    description: str
    statements: tuple[str, ...]
    repeatable: bool = False
    host: tuple[str, int] | None = None    # run on this server of the cluster, not the
    #                                        connected one

    @property
    def checksum(self) -> str:
        return hashlib.sha1("\n;\n".join(self.statements).encode()).hexdigest()[:16]


@dataclass
class MigrationReport:
    applied: list[Step] = field(default_factory=list)
    skipped: int = 0

    def summary(self) -> str:
        if not self.applied:
            return f"schema up to date ({self.skipped} steps already applied)"
        lines = [f"applied {len(self.applied)} step(s), {self.skipped} already applied:"]
        lines += [f"  {s.version}: {s.description}" for s in self.applied]
        return "\n".join(lines)


# The tables step 0001 created (history: a migration step never changes once released).
FIRST_RELEASE = frozenset({"readings_raw", "incident_reports_raw", "hazards_raw", "alerts_raw",
                           "gateway_status_raw", "dead_letters_raw"})
_MIGRATION_TYPES = {"version": "String", "description": "String", "checksum": "String",
                    "server_version": "String", "applied_at": "DateTime('UTC')"}


def _migrations_table(db: str, layout: Layout | None = None) -> str:
    create = (f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version String, "
              "description String, checksum String, server_version String, "
              "applied_at DateTime('UTC')) ENGINE = ReplacingMergeTree(applied_at) "
              "ORDER BY version")
    # on a cluster: one table replicated over every server, read where it is asked
    return (layout or Layout()).tables(create, db, "schema_migrations", (), distributed=False,
                                       path=f"/clickhouse/tables/all/{db}/schema_migrations")[0]


def versioned_steps(db: str, features: Features, catalog: Catalog | None = None,
                    layout: Layout | None = None) -> list[Step]:
    """0001 creates the tables of the first release; a table added to the catalog since gets
    a step of its own (``table:<name>``), so existing databases keep their history."""
    layout = layout or Layout()
    specs = list(table_specs(catalog).values())
    first = tuple(sql for s in specs if s.name in FIRST_RELEASE
                  for sql in s.create_statements(db, features, layout))
    base = [Step("0001", "base tables (from the Avro schemas)", first)] if first else []
    base.append(Step("0002", "ledger: one row per input message", ledger_statements(db, layout)))
    present = set(rollups(catalog))
    statements: list[str] = []
    for name, (columns, order_by, partition_by) in FIRST_ROLLUP_TABLES.items():
        if name in present:
            statements += layout.tables(
                f"CREATE TABLE IF NOT EXISTS {db}.{name} ({columns}) "
                f"ENGINE = ReplacingMergeTree(row_version) PARTITION BY {partition_by} "
                f"ORDER BY ({order_by})", db, name, layout.shard_key(order_by.split(", ")))
    for name, (target, select) in FIRST_MATERIALIZED_VIEWS.items():
        if target in present:
            statements.append(layout.materialized_view(
                db, name, target, ROLLUP_SOURCES[target], select.format(db=db).strip()))
    if statements:
        base.append(Step("0003", "rollups: per sensor-minute, enterprise-day, incident-day",
                         tuple(statements)))
    base.append(Step("0004", "consumed: one row per message the sink stored",
                      consumed_statements(db, layout)))
    sets = _set_rollups(db, present, layout)
    if sets:
        base.append(Step("0005", "reading rollup as sets: each reading counted once, canary "
                                 "left out (built from readings_raw; readings_1m/1d retired)",
                         sets))
    base += [Step(f"table:{s.name}", f"table {s.name} (from the Avro schemas)",
                  s.create_statements(db, features, layout))
             for s in specs if s.name not in FIRST_RELEASE]
    return base


def _set_rollups(db: str, present: set[str], layout: Layout) -> tuple[str, ...]:
    """Step 0005: the rollups of sets, filled from their base table once (a reading counted
    by both the backfill and the materialized view is still one element of its set), then
    the first release's reading rollups dropped (on a cluster: each server's)."""
    statements: list[str] = []
    for name, (columns, engine, order_by, partition_by) in ROLLUP_TABLES.items():
        if name in present:
            engine = engine if "(" in engine else f"{engine}()"
            statements += layout.tables(
                f"CREATE TABLE IF NOT EXISTS {db}.{name} ({columns}) "
                f"ENGINE = {engine} PARTITION BY {partition_by} ORDER BY ({order_by})",
                db, name, layout.shard_key(order_by.split(", ")))
    fills = []
    for name, (target, select) in MATERIALIZED_VIEWS.items():
        if target in present:
            sql = select.format(db=db).strip()
            statements.append(layout.materialized_view(db, name, target,
                                                       ROLLUP_SOURCES[target], sql))
            fills.append(f"INSERT INTO {db}.{target} {sql}")
    if not statements:
        return ()
    retired = [n for name in RETIRED
               for n in ((name,) if name.endswith("_mv") or not layout.replicated
                         else (name, layout.local(name)))]
    return (*statements, *fills,
            *(f"DROP TABLE IF EXISTS {db}.{name}{layout.on_cluster}" for name in retired))


def view_steps(db: str, features: Features, catalog: Catalog | None = None,
               layout: Layout | None = None) -> list[Step]:
    on = (layout or Layout()).on_cluster
    return [Step(f"view:{name}", f"analyst view {name}",
                 (f"DROP TABLE IF EXISTS {db}.{name}{on}",
                  f"CREATE VIEW {db}.{name}{on} AS {select.format(db=db).strip()}"),
                 repeatable=True)
            for name, select in analyst_views(features, catalog).items()]


def comment_steps(db: str, features: Features, catalog: Catalog | None = None,
                  layout: Layout | None = None) -> list[Step]:
    """Each column's classification as its comment; on a cluster on the replicated tables
    that store the rows (``<t>_local``), ON CLUSTER, where the server can (not 18.16: there
    the classification stays in the schemas and the scopes ``ebi access`` builds)."""
    layout = layout or Layout()
    if layout.replicated and not features.replicated_comments:
        return []
    steps = []
    for table, statements in comment_statements(db, features, catalog).items():
        if layout.replicated:
            head = f"ALTER TABLE {db}.{table} "
            statements = tuple(f"ALTER TABLE {db}.{layout.local(table)}{layout.on_cluster} "
                               + sql[len(head):] for sql in statements)
        steps.append(Step(f"comments:{table}", f"classification of the columns of {table}",
                          statements, repeatable=True))
    return steps


def _columns(backend: Backend, db: str) -> dict[str, set[str]]:
    existing: dict[str, set[str]] = {}
    for table, column in backend.query(
            f"SELECT table, name FROM system.columns WHERE database = '{db}'").rows:
        existing.setdefault(str(table), set()).add(str(column))
    return existing


def column_steps(backend: Backend, db: str, catalog: Catalog | None = None,
                 layout: Layout | None = None,
                 hosts: dict[tuple[str, int], Backend] | None = None) -> list[Step]:
    """ADD COLUMN steps for generated columns a table does not have yet (on a cluster:
    the replicated table ON CLUSTER, then the Distributed table on each of ``hosts``)."""
    layout = layout or Layout()
    targets: list[tuple[str, dict[str, set[str]], tuple[str, int] | None, str]] = [
        ("", _columns(backend, db), None, layout.on_cluster)]
    if layout.replicated:
        targets += [(f"@{host}:{port}", _columns(other, db), (host, port), "")
                    for (host, port), other in (hosts or {}).items()]
    steps = []
    for where, existing, host, on in targets:
        for spec in table_specs(catalog).values():
            table = layout.local(spec.name) if host is None else spec.name
            have = existing.get(table)
            if not have:
                continue  # created by its table step with every column
            for f in spec.fields():
                for name, ch_type in f.columns(backend.features):
                    if name in have:
                        continue
                    default = f.default_sql() if name == f.name else (
                        "NULL" if f.nullable else "0")
                    steps.append(Step(
                        f"column:{table}.{name}{where}",
                        f"add column {name} {ch_type} to {table}{where}",
                        (f"ALTER TABLE {db}.{table}{on} ADD COLUMN {name} {ch_type} "
                         f"DEFAULT {default}",), host=host))
    return steps


def cluster_hosts(backend: Backend, connect: Callable[[str, int], Backend] | None = None
                  ) -> dict[tuple[str, int], Backend]:
    """A backend on every server of the backend's cluster (same login)."""
    cluster = backend.config.cluster
    if not cluster:
        return {}
    if connect is None:
        from sinks.clickhouse.server import ServerBackend

        def connect(host: str, port: int) -> Backend:
            return ServerBackend(dataclasses.replace(backend.config, host=host, port=port,
                                                     alt_hosts=()))
    return {(str(h), int(p)): connect(str(h), int(p))
            for h, p in backend.query(hosts_sql(cluster)).rows}


def applied_versions(backend: Backend, db: str) -> dict[str, str]:
    rows = backend.query(f"SELECT version, argMax(checksum, applied_at) "
                         f"FROM {db}.schema_migrations GROUP BY version").rows
    return {str(v): str(c) for v, c in rows}


def migrate(backend: Backend, progress: Callable[[str], None] | None = None,
            catalog: Catalog | None = None,
            connect_host: Callable[[str, int], Backend] | None = None) -> MigrationReport:
    """Bring the database up to date; safe to run any number of times. On a cluster
    (``backend.config.cluster``) ``connect_host(host, port)`` opens the other servers
    (default: the same login on each server of the cluster)."""
    db = backend.config.database
    layout = Layout(backend.config.cluster)
    # ON CLUSTER waits for every server: a sink starting while a replica is down must not
    if not layout.replicated or not backend.query(
            "SELECT count() FROM system.tables WHERE database = "
            f"'{db}' AND name = 'schema_migrations'").scalar():
        backend.command(_migrations_table(db, layout))
    report = MigrationReport()
    done = applied_versions(backend, db)
    steps = versioned_steps(db, backend.features, catalog, layout)
    _run(backend, db, steps, done, report, progress)
    hosts = cluster_hosts(backend, connect_host) if layout.replicated else {}
    try:
        _run(backend, db, column_steps(backend, db, catalog, layout, hosts), done, report,
             progress, hosts)
    finally:
        for other in hosts.values():
            other.close()
    _run(backend, db, view_steps(db, backend.features, catalog, layout), done, report,
         progress)
    _run(backend, db, comment_steps(db, backend.features, catalog, layout), done, report,
         progress)
    return report


def _run(backend: Backend, db: str, steps: list[Step], done: dict[str, str],
         report: MigrationReport, progress: Callable[[str], None] | None,
         hosts: dict[tuple[str, int], Backend] | None = None) -> None:
    for step in steps:
        recorded = done.get(step.version)
        if recorded is not None and (not step.repeatable or recorded == step.checksum):
            report.skipped += 1
            continue
        if progress:
            progress(f"{step.version}: {step.description}")
        where = backend if step.host is None else (hosts or {})[step.host]
        for statement in step.statements:
            where.command(statement)
        backend.insert(f"{db}.schema_migrations", {
            "version": [step.version], "description": [step.description],
            "checksum": [step.checksum], "server_version": [backend.features.version_text],
            "applied_at": [int(time.time())]}, _MIGRATION_TYPES)
        done[step.version] = step.checksum
        report.applied.append(step)
        log.info("migration %s applied: %s", step.version, step.description)
