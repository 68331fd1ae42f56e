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
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from schemas.catalog.model import Catalog
from sinks.clickhouse.backend import Backend, Features
from sinks.clickhouse.classification import comment_statements
from sinks.clickhouse.schema import consumed_sql, ledger_sql, table_specs
from sinks.clickhouse.views import (
    FIRST_MATERIALIZED_VIEWS,
    FIRST_ROLLUP_TABLES,
    MATERIALIZED_VIEWS,
    RETIRED,
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


def _migrations_table(db: str) -> str:
    return (f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version String, "
            "description String, checksum String, server_version String, "
            "applied_at DateTime('UTC')) ENGINE = ReplacingMergeTree(applied_at) "
            "ORDER BY version")


def versioned_steps(db: str, features: Features, catalog: Catalog | None = None) -> list[Step]:
    """0001 creates the tables of the first release; a table added to the catalog since gets
    a step of its own (``table:<name>``), so existing databases keep their history."""
    specs = list(table_specs(catalog).values())
    first = tuple(s.create_sql(db, features) for s in specs if s.name in FIRST_RELEASE)
    base = [Step("0001", "base tables (from the Avro schemas)", first)] if first else []
    base.append(Step("0002", "ledger: one row per input message", (ledger_sql(db),)))
    present = set(rollups(catalog))
    statements = []
    for name, (columns, order_by, partition_by) in FIRST_ROLLUP_TABLES.items():
        if name in present:
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {db}.{name} ({columns}) "
                f"ENGINE = ReplacingMergeTree(row_version) PARTITION BY {partition_by} "
                f"ORDER BY ({order_by})")
    for name, (target, select) in FIRST_MATERIALIZED_VIEWS.items():
        if target in present:
            statements.append(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{name} TO "
                              f"{db}.{target} AS {select.format(db=db).strip()}")
    if statements:
        base.append(Step("0003", "rollups: per sensor-minute, enterprise-day, incident-day",
                         tuple(statements)))
    base.append(Step("0004", "consumed: one row per message the sink stored",
                      (consumed_sql(db),)))
    sets = _set_rollups(db, present)
    if sets:
        base.append(Step("0005", "reading rollup as sets: each reading counted once, canary "
                                 "left out (built from readings_raw; readings_1m/1d retired)",
                         sets))
    base += [Step(f"table:{s.name}", f"table {s.name} (from the Avro schemas)",
                  (s.create_sql(db, features),)) for s in specs if s.name not in FIRST_RELEASE]
    return base


def _set_rollups(db: str, present: set[str]) -> tuple[str, ...]:
    """Step 0005: the rollups of sets, filled from their base table once (a reading counted
    by both the backfill and the materialized view is still one element of its set), then
    the first release's reading rollups dropped."""
    statements = []
    for name, (columns, engine, order_by, partition_by) in ROLLUP_TABLES.items():
        if name in present:
            statements.append(f"CREATE TABLE IF NOT EXISTS {db}.{name} ({columns}) "
                              f"ENGINE = {engine} PARTITION BY {partition_by} "
                              f"ORDER BY ({order_by})")
    fills = []
    for name, (target, select) in MATERIALIZED_VIEWS.items():
        if target in present:
            sql = select.format(db=db).strip()
            statements.append(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{name} TO "
                              f"{db}.{target} AS {sql}")
            fills.append(f"INSERT INTO {db}.{target} {sql}")
    if not statements:
        return ()
    return (*statements, *fills, *(f"DROP TABLE IF EXISTS {db}.{name}" for name in RETIRED))


def view_steps(db: str, features: Features, catalog: Catalog | None = None) -> list[Step]:
    return [Step(f"view:{name}", f"analyst view {name}",
                 (f"DROP TABLE IF EXISTS {db}.{name}",
                  f"CREATE VIEW {db}.{name} AS {select.format(db=db).strip()}"),
                 repeatable=True)
            for name, select in analyst_views(features, catalog).items()]


def comment_steps(db: str, features: Features, catalog: Catalog | None = None) -> list[Step]:
    return [Step(f"comments:{table}", f"classification of the columns of {table}", statements,
                 repeatable=True)
            for table, statements in comment_statements(db, features, catalog).items()]


def column_steps(backend: Backend, db: str, catalog: Catalog | None = None) -> list[Step]:
    """ADD COLUMN steps for generated columns a table does not have yet."""
    existing: dict[str, set[str]] = {}
    for table, column in backend.query(
            f"SELECT table, name FROM system.columns WHERE database = '{db}'").rows:
        existing.setdefault(str(table), set()).add(str(column))
    steps = []
    for spec in table_specs(catalog).values():
        have = existing.get(spec.name)
        if not have:
            continue  # created by its table step with every column
        for f in spec.fields():
            for name, ch_type in f.columns(backend.features):
                if name in have:
                    continue
                default = f.default_sql() if name == f.name else (
                    "NULL" if f.nullable else "0")
                steps.append(Step(
                    f"column:{spec.name}.{name}", f"add column {name} {ch_type} to {spec.name}",
                    (f"ALTER TABLE {db}.{spec.name} ADD COLUMN {name} {ch_type} "
                     f"DEFAULT {default}",)))
    return steps


def applied_versions(backend: Backend, db: str) -> dict[str, str]:
    rows = backend.query(f"SELECT version, argMax(checksum, applied_at) "
                         f"FROM {db}.schema_migrations GROUP BY version").rows
    return {str(v): str(c) for v, c in rows}


def migrate(backend: Backend, progress: Callable[[str], None] | None = None,
            catalog: Catalog | None = None) -> MigrationReport:
    """Bring the database up to date; safe to run any number of times."""
    db = backend.config.database
    backend.command(_migrations_table(db))
    report = MigrationReport()
    done = applied_versions(backend, db)
    steps = versioned_steps(db, backend.features, catalog)
    _run(backend, db, steps, done, report, progress)
    _run(backend, db, column_steps(backend, db, catalog), done, report, progress)
    _run(backend, db, view_steps(db, backend.features, catalog), done, report, progress)
    _run(backend, db, comment_steps(db, backend.features, catalog), done, report, progress)
    return report


def _run(backend: Backend, db: str, steps: list[Step], done: dict[str, str],
         report: MigrationReport, progress: Callable[[str], None] | None) -> None:
    for step in steps:
        recorded = done.get(step.version)
        if recorded is not None and (not step.repeatable or recorded == step.checksum):
            report.skipped += 1
            continue
        if progress:
            progress(f"{step.version}: {step.description}")
        for statement in step.statements:
            backend.command(statement)
        backend.insert(f"{db}.schema_migrations", {
            "version": [step.version], "description": [step.description],
            "checksum": [step.checksum], "server_version": [backend.features.version_text],
            "applied_at": [int(time.time())]}, _MIGRATION_TYPES)
        done[step.version] = step.checksum
        report.applied.append(step)
        log.info("migration %s applied: %s", step.version, step.description)
