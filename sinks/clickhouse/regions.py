"""Scoped databases: what one group of users may read, as a database of its own.

A :class:`Scope` is a region (a GB/T 2260 prefix: the rows whose ``region_code`` starts with
it; empty: every row), the classifications its users are cleared for (the rest is masked:
NULL, see :mod:`.classification`), and which of the pipeline's own tables it has (dead
letters whole, with their bytes masked, or not at all; the ledger). Its database,
``<base>_<scope>`` (e.g. ``ebi_r32``), holds the scope's ``*_raw`` tables, rollups and the
analyst views under their usual names, so every query of docs/analysts.md and ``ebi report``
run in it unchanged.

Two ways to fill it, one declaration (``streams/access/clickhouse_roles.py``):

- **copies** (:func:`build`; servers without access control, e.g. Debian's 18.16): a table per
  source in the scope database, filled by a materialized view in the *base* database
  (``<base>.scope_<scope>__<table>``) that copies the scope's rows with the masks applied.
  The sink inserts into the base tables only; its user needs no access to the scope
  databases (a materialized view's target is written with the server's rights). Rollups
  are materialized views over those copying views (18.16 runs a view's views on what the
  view wrote), the analyst views read the copies. Masked values never reach the scope
  database. The select of a copying view is flat (18.16 feeds a materialized view's block
  to its outermost FROM: a filter in a subquery would be skipped); the copies' column types
  are what the server says the select returns, so the view's block always fits.
  :func:`build` (re)creates the whole scope when its definition changes and copies what the
  base tables hold already; replays and the overlap of copy and back-fill are duplicates the
  ReplacingMergeTree merges away (the views read FINAL).
- **views** (:func:`masked_views`; servers with access control, 24.2+ for ``SQL SECURITY
  DEFINER``): the same names as views of the base tables, filtered and masked, run with
  the rights of their definer.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.catalog import default_catalog
from schemas.catalog.model import Catalog
from schemas.classification import CLASSES, OPEN, Rule
from sinks.clickhouse.backend import Backend, ClickHouseError, Features
from sinks.clickhouse.classification import (
    bookkeeping_rules,
    comment,
    mask_sql,
    masked,
    rollup_columns,
    rollup_rules,
    table_rules,
)
from sinks.clickhouse.schema import CONSUMED_COLUMNS, LEDGER_COLUMNS, table_specs
from sinks.clickhouse.views import (
    CURRENT_MATERIALIZED_VIEWS,
    CURRENT_ROLLUP_TABLES,
    ROLLUP_SOURCES,
    analyst_views,
)

LAYOUT = "1"                     # bump when the layout of a scope changes: every scope rebuilds
MV_PREFIX = "scope_"
SCOPE_TABLE = "scope"            # one row in each scope database: what the scope is
REGION_COLUMN = "region_code"
_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_REGION = re.compile(r"^\d{2}(\d{2}){0,2}$")
DEAD_LETTERS = ("none", "masked", "full")


class ScopeError(ValueError):
    """A scope that cannot be built as declared."""


@dataclass(frozen=True)
class Scope:
    """The rows of ``region`` ("" for all), the classes in ``allowed`` unmasked;
    ``dead_letters``: "none" (not in the scope; always so for a region), "masked" (their
    raw bytes NULL) or "full" (operators: bytes and messages, to replay them);
    ``bookkeeping``: the ledger and ``consumed`` (every region only)."""

    name: str
    region: str = ""
    allowed: frozenset[str] = OPEN
    dead_letters: str = "none"
    bookkeeping: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or "__" in self.name or len(self.name) > 40:
            raise ScopeError(f"scope name {self.name!r}: lower-case letters and digits, "
                             "single underscores")
        if self.region and not _REGION.match(self.region):
            raise ScopeError(f"scope {self.name}: region {self.region!r} is not a GB/T 2260 "
                             "prefix of 2, 4 or 6 digits")
        if self.region and (self.dead_letters != "none" or self.bookkeeping):
            raise ScopeError(f"scope {self.name}: dead letters and the ledger have no region; "
                             "a regional scope cannot hold them")
        if self.dead_letters not in DEAD_LETTERS:
            raise ScopeError(f"scope {self.name}: dead_letters must be one of "
                             f"{', '.join(DEAD_LETTERS)}")
        unknown = sorted(self.allowed - set(CLASSES))
        if unknown:
            raise ScopeError(f"scope {self.name}: unknown classification(s) {unknown}")

    def database(self, base: str) -> str:
        return f"{base}_{self.name}"

    def mv(self, table: str) -> str:
        """The copying materialized view of ``table`` (in the base database)."""
        return f"{MV_PREFIX}{self.name}__{table}"

    def where(self) -> str:
        return f" WHERE {REGION_COLUMN} LIKE '{self.region}%'" if self.region else ""

    def describe(self) -> str:
        region = f"region {self.region}" if self.region else "every region"
        hidden = sorted(set(CLASSES) - self.allowed)
        masks = f"{', '.join(hidden)} masked" if hidden else "nothing masked"
        dead = {"none": "", "masked": ", dead letters without their bytes",
                "full": ", dead letters whole"}[self.dead_letters]
        return f"{region}, {masks}{dead}{', ledger' if self.bookkeeping else ''}"


@dataclass(frozen=True)
class Source:
    """A base table a scope takes rows from: its columns and their rules."""

    name: str
    columns: tuple[tuple[str, str], ...]          # (name, type) in the base table
    rules: dict[str, Rule | None] = field(compare=False)
    order_by: str
    partition_by: str
    version: str
    bytes_columns: frozenset[str] = frozenset()   # dead letters' raw input
    dead_letters: bool = False

    def expressions(self, scope: Scope) -> list[tuple[str, str]]:
        """(column, SQL) as the scope's users see it."""
        allowed = frozenset(CLASSES) if self.dead_letters and scope.dead_letters == "full" \
            else scope.allowed
        names = [n for n, _ in self.columns]
        out = []
        for name, ch_type in self.columns:
            if name in self.bytes_columns and scope.dead_letters != "full":
                out.append((name, mask_sql(name, ch_type, None, allowed, names)))
            else:
                out.append((name, mask_sql(name, ch_type, self.rules.get(name), allowed,
                                           names)))
        return out

    def masked_columns(self, scope: Scope) -> list[str]:
        return [n for n, sql in self.expressions(scope) if sql != n]

    def select(self, db: str, scope: Scope, final: bool = False) -> str:
        items = [name if sql == name else f"{sql} AS {name}"
                 for name, sql in self.expressions(scope)]
        return (f"SELECT {', '.join(items)} FROM {db}.{self.name}{' FINAL' if final else ''}"
                f"{scope.where()}")


def sources(scope: Scope, features: Features, catalog: Catalog | None = None) -> list[Source]:
    """The base tables whose rows the scope has (in the sink's write order)."""
    catalog = catalog or default_catalog()
    dead = catalog.dead_letter_table()
    out = []
    for name, spec in table_specs(catalog).items():
        columns = tuple(spec.columns(features))
        regional = any(n == REGION_COLUMN for n, _ in columns)
        if name == dead:
            if scope.dead_letters == "none":
                continue
        elif scope.region and not regional:
            continue
        bytes_columns = frozenset(c for f in spec.fields() if f.kind == "bytes"
                                  for c, _ in f.columns(features)) if name == dead else frozenset()
        out.append(Source(name, columns, table_rules(spec, features), ", ".join(spec.order_by),
                          spec.table.partition_by, "_version", bytes_columns, name == dead))
    if scope.bookkeeping:
        out.append(Source("ledger", LEDGER_COLUMNS, bookkeeping_rules("ledger"),
                          "source_topic, source_partition, source_offset", "", "_version"))
        out.append(Source("consumed", CONSUMED_COLUMNS, bookkeeping_rules("consumed"),
                          "clean_topic, clean_partition, clean_offset", "", "inserted_at"))
    for s in out:
        hidden = set(s.masked_columns(scope)) & {c.strip() for c in s.order_by.split(",")}
        if hidden:
            raise ScopeError(f"scope {scope.name}: {s.name} is ordered by masked column(s) "
                             f"{sorted(hidden)}")
    return out


def scope_rollups(scope: Scope, present: Iterable[str]) -> list[str]:
    """The rollups whose base table the scope has."""
    have = set(present)
    return [name for name, source in ROLLUP_SOURCES.items()
            if source in have and name in CURRENT_ROLLUP_TABLES]


def rollup_select(db: str, rollup: str, source_from: str) -> str:
    """The rollup's materialized-view select with its base table replaced by ``source_from``
    (a table, a view, or a parenthesised subquery)."""
    select = next(sql for to, sql in CURRENT_MATERIALIZED_VIEWS.values() if to == rollup)
    text = select.format(db=db).strip()
    base = f"{db}.{ROLLUP_SOURCES[rollup]}"
    found = re.findall(rf"{re.escape(base)}\b", text)
    if len(found) != 1:
        raise ScopeError(f"rollup {rollup}: expected its select to read {base} once")
    return re.sub(rf"{re.escape(base)}\b", source_from, text)


def scope_views(db: str, scope_db: str, objects: Iterable[str], features: Features,
                catalog: Catalog | None = None, final: bool = True) -> dict[str, str]:
    """The analyst views whose tables the scope has, over the scope's objects (without FINAL
    where those are views that deduplicate already)."""
    have = set(objects)
    views = analyst_views(features, catalog)
    ready: list[str] = []
    while True:   # a view over other views once those are in (in the catalog's order)
        more = [name for name, select in views.items() if name not in ready
                and set(re.findall(r"\{db\}\.(\w+)", select)) <= have | set(ready)]
        if not more:
            break
        ready += more
    out = {}
    for name in ready:            # dependencies first
        sql = views[name].format(db=scope_db).strip()
        if not final:
            sql = re.sub(rf"({re.escape(scope_db)}\.\w+) FINAL\b", r"\1", sql)
        out[name] = sql
    del db
    return out


# -- copies: servers without access control ---------------------------------------------

@dataclass(frozen=True)
class Plan:
    """Everything a scope's copies are made of (its checksum tells when to rebuild)."""

    scope: Scope
    db: str
    sources: tuple[Source, ...]
    rollups: tuple[str, ...]
    views: dict[str, str] = field(compare=False)

    @property
    def database(self) -> str:
        return self.scope.database(self.db)

    def checksum(self) -> str:
        parts = [LAYOUT, repr(self.scope)]
        for s in self.sources:
            parts += [s.select(self.db, self.scope), repr(s.columns), s.order_by,
                      s.partition_by, s.version]
        parts += [rollup_select(self.db, r, self.scope.mv(ROLLUP_SOURCES[r]))
                  for r in self.rollups]
        parts += [f"{k}={v}" for k, v in sorted(self.views.items())]
        return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]


def plan(db: str, scope: Scope, features: Features, catalog: Catalog | None = None) -> Plan:
    found = sources(scope, features, catalog)
    names = [s.name for s in found]
    ups = scope_rollups(scope, names)
    views = scope_views(db, scope.database(db), [*names, *ups], features, catalog)
    return Plan(scope, db, tuple(found), tuple(ups), views)


def _create(database: str, table: str, columns: list[tuple[str, str]],
            comments: dict[str, str], order_by: str, partition_by: str, engine: str) -> str:
    body = ",\n    ".join(f"{n} {t} COMMENT '{comments.get(n, '')}'" for n, t in columns)
    partition = f"\nPARTITION BY {partition_by}" if partition_by else ""
    return (f"CREATE TABLE {database}.{table} (\n    {body}\n)\n"
            f"ENGINE = {engine}{partition}\nORDER BY ({order_by})")


def _comments(rules: dict[str, Rule | None], scope: Scope, hidden: set[str]) -> dict[str, str]:
    out = {}
    for name, rule in rules.items():
        note = comment(rule)
        if name in hidden:
            note += f"; masked here ({scope.describe()})"
        out[name] = note.replace("\\", "\\\\").replace("'", "\\'")
    return out


def built_checksum(backend: Backend, database: str) -> str | None:
    """The checksum recorded by the last build of a scope database (None: none built)."""
    try:
        return str(backend.query(f"SELECT checksum FROM {database}.{SCOPE_TABLE} "
                                 "ORDER BY built_at DESC LIMIT 1").scalar() or "") or None
    except ClickHouseError:
        return None


def existing(backend: Backend, db: str) -> set[str]:
    """Names of the scopes with copying views in ``db``."""
    rows = backend.query(f"SELECT name FROM system.tables WHERE database = '{db}'").rows
    return {str(n)[len(MV_PREFIX):].split("__", 1)[0] for (n,) in rows
            if str(n).startswith(MV_PREFIX) and "__" in str(n)}


def drop(backend: Backend, db: str, name: str) -> None:
    """Remove a scope: its copying views first (the sink's inserts stop feeding it), then
    its database."""
    prefix = f"{MV_PREFIX}{name}__"
    for (table,) in backend.query(
            f"SELECT name FROM system.tables WHERE database = '{db}'").rows:
        if str(table).startswith(prefix):
            backend.command(f"DROP TABLE IF EXISTS {db}.{table}")
    backend.command(f"DROP DATABASE IF EXISTS {db}_{name}")


def _types(backend: Backend, select: str) -> list[tuple[str, str]]:
    result = backend.query(f"{select} LIMIT 0")
    return list(zip(result.columns, result.types, strict=True))


def build(backend: Backend, scope: Scope, catalog: Catalog | None = None,
          force: bool = False) -> bool:
    """Make the scope's database what its plan says; False when it was up to date already.
    Runs as the admin, after ``ebi migrate``."""
    db = backend.config.database
    p = plan(db, scope, backend.features, catalog)
    checksum = p.checksum()
    if not force and built_checksum(backend, p.database) == checksum:
        return False
    sdb = p.database
    # the copies' columns, asked before anything is dropped (a base table without a column
    # of the catalog fails here: run `ebi migrate` first)
    typed = {s.name: _types(backend, s.select(db, scope)) for s in p.sources}
    drop(backend, db, scope.name)
    backend.command(f"CREATE DATABASE IF NOT EXISTS {sdb}")
    backend.command(f"CREATE TABLE {sdb}.{SCOPE_TABLE} (name String, region String, "
                    "allowed String, dead_letters String, description String, "
                    "checksum String, built_at DateTime) ENGINE = MergeTree ORDER BY name")
    columns_of: dict[str, list[str]] = {}
    for s in p.sources:
        select = s.select(db, scope)
        columns = typed[s.name]
        columns_of[s.name] = [n for n, _ in columns]
        hidden = set(s.masked_columns(scope))
        backend.command(_create(sdb, s.name, columns, _comments(s.rules, scope, hidden),
                                s.order_by, s.partition_by,
                                f"ReplacingMergeTree({s.version})"))
        backend.command(f"CREATE MATERIALIZED VIEW {db}.{scope.mv(s.name)} TO {sdb}.{s.name} "
                        f"AS {select}")
    for r in p.rollups:
        select = rollup_select(db, r, f"{db}.{scope.mv(ROLLUP_SOURCES[r])}")
        columns = _types(backend, select)
        columns_of[r] = [n for n, _ in columns]
        _, engine, order_by, partition_by = CURRENT_ROLLUP_TABLES[r]
        rules = rollup_rules(r, backend.features, catalog)
        hidden = {n for n, rule in rules.items() if masked(rule, scope.allowed)}
        backend.command(_create(sdb, r, columns, _comments(rules, scope, hidden), order_by,
                                partition_by, engine))
        backend.command(f"CREATE MATERIALIZED VIEW {db}.{scope.mv(r)} TO {sdb}.{r} "
                        f"AS {select}")
    # what the base tables hold already (after the views exist: nothing falls in between)
    for s in p.sources:
        backend.command(f"INSERT INTO {sdb}.{s.name} ({', '.join(columns_of[s.name])}) "
                        f"{s.select(db, scope)}")
    for r in p.rollups:
        source = ROLLUP_SOURCES[r]
        backend.command(f"INSERT INTO {sdb}.{r} ({', '.join(columns_of[r])}) " + rollup_select(
            db, r, f"(SELECT * FROM {sdb}.{source} FINAL)"))
    for name, select in p.views.items():
        backend.command(f"CREATE VIEW {sdb}.{name} AS {select}")
    backend.insert(f"{sdb}.{SCOPE_TABLE}", {
        "name": [scope.name], "region": [scope.region],
        "allowed": [",".join(sorted(scope.allowed))], "dead_letters": [scope.dead_letters],
        "description": [scope.describe()], "checksum": [checksum],
        "built_at": [int(time.time())]},
        {"name": "String", "region": "String", "allowed": "String", "dead_letters": "String",
         "description": "String", "checksum": "String", "built_at": "DateTime"})
    return True


# -- views: servers with access control --------------------------------------------------

def masked_views(db: str, scope: Scope, features: Features, catalog: Catalog | None = None,
                 definer: bool = True) -> list[str]:
    """``CREATE OR REPLACE VIEW`` statements of the scope's database on a server with access
    control: each source and rollup as a filtered, masked view of the base table (FINAL),
    then the analyst views over those. ``definer``: run them with the definer's rights
    (``SQL SECURITY DEFINER``, 24.2+): the scope's users then need no grant on the base
    tables."""
    sdb = scope.database(db)
    security = " DEFINER = CURRENT_USER SQL SECURITY DEFINER" if definer else ""
    found = sources(scope, features, catalog)
    out = [f"CREATE DATABASE IF NOT EXISTS {sdb}"]
    for s in found:
        out.append(f"CREATE OR REPLACE VIEW {sdb}.{s.name}{security} AS "
                   f"{s.select(db, scope, final=True)}")
    ups = scope_rollups(scope, [s.name for s in found])
    for r in ups:
        if CURRENT_ROLLUP_TABLES[r][1] == "AggregatingMergeTree":
            # states cannot be masked one by one: the rollup of the scope's masked rows
            out.append(f"CREATE OR REPLACE VIEW {sdb}.{r}{security} AS "
                       f"{rollup_select(db, r, f'{sdb}.{ROLLUP_SOURCES[r]}')}")
            continue
        rules = rollup_rules(r, features, catalog)
        cols = rollup_columns(r)
        names = [n for n, _ in cols]
        items = []
        for name, ch_type in cols:
            sql = mask_sql(name, ch_type, rules.get(name), scope.allowed, names)
            items.append(name if sql == name else f"{sql} AS {name}")
        out.append(f"CREATE OR REPLACE VIEW {sdb}.{r}{security} AS SELECT {', '.join(items)} "
                   f"FROM {db}.{r} FINAL{scope.where()}")
    for name, select in scope_views(db, sdb, [*(s.name for s in found), *ups], features,
                                    catalog, final=False).items():
        out.append(f"CREATE OR REPLACE VIEW {sdb}.{name} AS {select}")
    return out


def visible_columns(source: Source, scope: Scope) -> list[str]:
    """The columns of a base table the scope's users may read directly (every row)."""
    return [n for n, sql in source.expressions(scope) if sql == n]


def rollup_visible(rollup: str, scope: Scope, features: Features,
                   catalog: Catalog | None = None) -> list[str]:
    rules = rollup_rules(rollup, features, catalog)
    return [n for n, _ in rollup_columns(rollup) if not masked(rules.get(n), scope.allowed)]
