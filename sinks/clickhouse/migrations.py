"""Versioned, idempotent migrations, recorded in ``schema_migrations``.

Three kinds of step, all generated from the Avro schemas and the server's features:

* versioned (``0001`` ...): tables, rollup tables and materialized views; applied once;
* column steps (``column:<table>.<column>``): a field added to an Avro schema (optional,
  with a default) becomes ``ALTER TABLE ... ADD COLUMN ... DEFAULT``; found by comparing
  ``system.columns`` with the generated columns, so they are applied exactly when needed;
* repeatable (``view:<name>``): the analyst views, re-created when their SQL changes.

Every statement is itself idempotent (IF NOT EXISTS, column checks), so a run interrupted
before it recorded a step just repeats it. Running twice changes nothing the second time.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sinks.clickhouse.client import Backend
from sinks.clickhouse.schema import TABLES, Features, ledger_sql
from sinks.clickhouse.views import MATERIALIZED_VIEWS, ROLLUP_TABLES, analyst_views

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


_MIGRATION_TYPES = {"version": "String", "description": "String", "checksum": "String",
                    "server_version": "String", "applied_at": "DateTime('UTC')"}


def _migrations_table(db: str) -> str:
    return (f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version String, "
            "description String, checksum String, server_version String, "
            "applied_at DateTime('UTC')) ENGINE = ReplacingMergeTree(applied_at) "
            "ORDER BY version")


def versioned_steps(db: str, features: Features) -> list[Step]:
    base = [Step("0001", "base tables (from the Avro schemas)",
                 tuple(t.create_sql(db, features) for t in TABLES.values())),
            Step("0002", "ledger: one row per input message", (ledger_sql(db),))]
    rollups = []
    for name, (columns, order_by, partition_by) in ROLLUP_TABLES.items():
        rollups.append(
            f"CREATE TABLE IF NOT EXISTS {db}.{name} ({columns}) "
            f"ENGINE = ReplacingMergeTree(row_version) PARTITION BY {partition_by} "
            f"ORDER BY ({order_by})")
    for name, (target, select) in MATERIALIZED_VIEWS.items():
        rollups.append(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{name} TO {db}.{target} "
                       f"AS {select.format(db=db).strip()}")
    base.append(Step("0003", "rollups: per sensor-minute, enterprise-day, incident-day",
                     tuple(rollups)))
    return base


def view_steps(db: str, features: Features) -> list[Step]:
    return [Step(f"view:{name}", f"analyst view {name}",
                 (f"DROP TABLE IF EXISTS {db}.{name}",
                  f"CREATE VIEW {db}.{name} AS {select.format(db=db).strip()}"),
                 repeatable=True)
            for name, select in analyst_views(features).items()]


def column_steps(backend: Backend, db: str) -> list[Step]:
    """ADD COLUMN steps for generated columns a table does not have yet."""
    existing: dict[str, set[str]] = {}
    for table, column in backend.query(
            f"SELECT table, name FROM system.columns WHERE database = '{db}'").rows:
        existing.setdefault(str(table), set()).add(str(column))
    steps = []
    for spec in TABLES.values():
        have = existing.get(spec.name)
        if not have:
            continue  # created by 0001 with every column
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


def migrate(backend: Backend, progress: Callable[[str], None] | None = None) -> MigrationReport:
    """Bring the database up to date; safe to run any number of times."""
    db = backend.config.database
    backend.command(_migrations_table(db))
    report = MigrationReport()
    done = applied_versions(backend, db)
    steps = versioned_steps(db, backend.features)
    _run(backend, db, steps, done, report, progress)
    _run(backend, db, column_steps(backend, db), done, report, progress)
    _run(backend, db, view_steps(db, backend.features), done, report, progress)
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
