"""The classification of every stored column (schemas/classification.py), in the DDL and in
what a role may see.

- A table written from an Avro record: each column has its field's rule (nested fields their
  own, a timestamp's ``_ms`` column its timestamp's); the sink's bookkeeping columns are
  internal.
- A rollup: a column computed from a stored column has that column's rule
  (:data:`DERIVED`: ``value_min`` from ``value``), a column of the same name in the rollup's
  base table that column's, counts and time buckets (:data:`AGGREGATES`) are internal.
- The ledger, ``consumed`` and ``schema_migrations``: internal.

``ebi migrate`` writes each column's rule as its comment (``comments:<table>`` steps:
``ALTER TABLE ... COMMENT COLUMN``, which 18.16 and current ClickHouse both have), so
``SELECT name, comment FROM system.columns`` tells an analyst what a column is.
:func:`mask_sql` gives the SQL of a column as a role sees it: the value, or NULL (``[]`` for an
array) where its class is not cleared for the role; ``ebi access`` builds every masked copy
and view from it.
"""

from __future__ import annotations

from collections.abc import Collection

from schemas.catalog import default_catalog
from schemas.catalog.model import Catalog
from schemas.classification import INTERNAL_RULE, Rule
from sinks.clickhouse.backend import Features
from sinks.clickhouse.schema import CONSUMED_COLUMNS, LEDGER_COLUMNS, TableSpec, table_specs
from sinks.clickhouse.views import CURRENT_ROLLUP_TABLES, ROLLUP_SOURCES, current_rollups

# rollup column -> the stored column it is computed from (min, max, sum of ``value``, ...)
DERIVED = {"value_min": "value", "value_max": "value", "value_sum": "value", "pairs": "value",
           "max_deaths": "deaths", "max_missing": "missing"}
# rollup columns that count rows or name a time bucket: internal
AGGREGATES = frozenset({"minute", "day", "n_readings", "n_late", "n_anomalous", "n_alarms",
                        "n_reports", "row_version", "late", "anomalous", "alarms"})
MASKED_NOTE = "masked for roles without clearance"


def table_rules(spec: TableSpec, features: Features) -> dict[str, Rule | None]:
    """Column -> rule of a table the sink writes (None: its field has no classification)."""
    rules: dict[str, Rule | None] = {}
    for f in spec.fields():
        for name, _ in f.columns(features):
            rules[name] = f.rule
    rules["_version"] = INTERNAL_RULE
    rules["inserted_at"] = INTERNAL_RULE
    return rules


def rollup_columns(name: str) -> list[tuple[str, str]]:
    """(column, type) of a rollup table, from its DDL in :mod:`.views`."""
    parts, depth, start, ddl = [], 0, 0, CURRENT_ROLLUP_TABLES[name][0]
    for i, ch in enumerate(ddl):     # split at the commas outside parentheses
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(ddl[start:i])
            start = i + 1
    parts.append(ddl[start:])
    return [(part.strip().split(" ", 1)[0], part.strip().split(" ", 1)[1].strip())
            for part in parts]


def rollup_rules(name: str, features: Features,
                 catalog: Catalog | None = None) -> dict[str, Rule | None]:
    source = table_rules(table_specs(catalog)[ROLLUP_SOURCES[name]], features)
    rules: dict[str, Rule | None] = {}
    for column, _ in rollup_columns(name):
        if column in DERIVED:
            rules[column] = source.get(DERIVED[column])
        elif column in source:
            rules[column] = source[column]
        elif column in AGGREGATES:
            rules[column] = INTERNAL_RULE
        else:
            rules[column] = None
    return rules


def bookkeeping_rules(table: str) -> dict[str, Rule | None]:
    columns = {"ledger": LEDGER_COLUMNS, "consumed": CONSUMED_COLUMNS}[table]
    return {name: INTERNAL_RULE for name, _ in columns}


def all_rules(features: Features, catalog: Catalog | None = None
              ) -> dict[str, dict[str, Rule | None]]:
    """Table -> column -> rule, for every table ``ebi migrate`` creates (views aside)."""
    catalog = catalog or default_catalog()
    out = {name: table_rules(spec, features) for name, spec in table_specs(catalog).items()}
    out.update({name: rollup_rules(name, features, catalog) for name in current_rollups(catalog)})
    out.update({name: bookkeeping_rules(name) for name in ("ledger", "consumed")})
    return out


def comment(rule: Rule | None) -> str:
    if rule is None:
        return "classification: none given (treated as visible to no role)"
    return f"classification: {rule.text()}"


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def comment_statements(db: str, features: Features, catalog: Catalog | None = None
                       ) -> dict[str, tuple[str, ...]]:
    """Table -> the ALTER TABLE that writes each column's classification as its comment."""
    out: dict[str, tuple[str, ...]] = {}
    for table, rules in all_rules(features, catalog).items():
        clauses = ", ".join(f"COMMENT COLUMN {column} {_quote(comment(rule))}"
                            for column, rule in rules.items())
        out[table] = (f"ALTER TABLE {db}.{table} {clauses}",)
    return out


def hidden_sql(ch_type: str) -> str:
    """The masked value of a column of ``ch_type``: NULL of its type, ``[]`` for arrays."""
    t = ch_type
    for wrapper in ("LowCardinality(", "Nullable("):
        if t.startswith(wrapper):
            t = t[len(wrapper):-1]
    if t.startswith("Array("):
        return f"CAST([] AS {t})"
    return f"CAST(NULL AS Nullable({t}))"


def mask_sql(column: str, ch_type: str, rule: Rule | None, allowed: Collection[str],
             columns: Collection[str]) -> str:
    """The column as a role cleared for the classes ``allowed`` sees it: ``column`` itself,
    its masked value (:func:`hidden_sql`), or a ``multiIf`` over the rule's conditions
    when that depends on the row. ``columns`` are those of the same row: a condition on a
    column that is not there cannot be checked, so then every class of the rule must be
    allowed. A column without a rule is hidden."""
    hidden = hidden_sql(ch_type)
    if rule is None:
        return hidden
    allowed = frozenset(allowed)
    if any(c.field not in columns for c in rule.when):
        return column if rule.classes <= allowed else hidden
    visible = rule.visible(allowed)
    if visible is not None:
        return column if visible else hidden
    parts = []
    for c in rule.when:
        parts += [f"{c.field} IN ({', '.join(_quote(v) for v in c.values)})",
                  column if c.classification in allowed else hidden]
    parts.append(column if rule.base in allowed else hidden)
    return f"multiIf({', '.join(parts)})"


def masked(rule: Rule | None, allowed: Collection[str]) -> bool:
    """Whether any row of a column of ``rule`` is masked for ``allowed``."""
    return rule is None or not rule.classes <= frozenset(allowed)
