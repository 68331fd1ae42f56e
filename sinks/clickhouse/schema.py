"""ClickHouse tables generated from the catalog's table declarations and the Avro schemas.

Each Avro field becomes a column (nested records are flattened with a ``parent_`` prefix; in a
columnar record every top-level array is a per-row column, one row per array entry, and the
other fields repeat on each row; a top-level array of records with an ``index`` field is a
sparse overlay: each of its other fields is a per-row column holding the field's default on
rows without an entry). Types follow the server's
:class:`Features`: ``DateTime64(3, 'UTC')`` and ``LowCardinality(String)`` where the server has
them, otherwise ``DateTime('UTC')`` plus a ``<name>_ms`` column (milliseconds within the second)
and plain ``String``. Every table also carries the sink's bookkeeping columns: the clean-topic
coordinates, ``_version`` (ReplacingMergeTree version) and ``inserted_at``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from schemas.catalog import default_catalog
from schemas.catalog.model import Catalog, SchemaStore, Table
from schemas.classification import INTERNAL_RULE, Rule, rule_of
from sinks.clickhouse.backend import Features
from sinks.clickhouse.cluster import Layout

# Avro primitive -> ClickHouse type
_PRIMITIVE = {"string": "String", "bytes": "String", "int": "Int32", "long": "Int64",
              "float": "Float32", "double": "Float64", "boolean": "UInt8"}
# String columns with few distinct values (LowCardinality where the server has it).
_LOW_CARDINALITY = frozenset({
    "region_code", "enterprise_id", "gateway_id", "source_topic", "clean_topic", "category",
    "alert_type", "subject_type", "error_code", "stage", "industry", "reporting_unit", "tag",
})


@dataclass(frozen=True)
class Field:
    """One stored value: a column (two on servers without DateTime64, for timestamps)."""

    name: str
    kind: str                 # string, bytes, int, long, float, double, boolean, enum,
    #                           timestamp, array_string
    path: tuple[str, ...]     # keys into the (envelope or item) record
    nullable: bool = False
    default: Any = None       # Avro default, when has_default
    has_default: bool = False
    item: bool = False        # one value per row: an entry of the record's parallel arrays
    sparse: str = ""          # per-row value from this overlay array's entries (by index)
    # the field's classification (schemas/classification.py); None: the schema gives none
    rule: Rule | None = field(default=None, compare=False)

    def columns(self, features: Features) -> list[tuple[str, str]]:
        """(column name, ClickHouse type) pairs for this field."""
        if self.kind == "timestamp":
            if features.datetime64:
                return [(self.name, self._null("DateTime64(3, 'UTC')"))]
            return [(self.name, self._null("DateTime('UTC')")),
                    (f"{self.name}_ms", self._null("UInt16"))]
        if self.kind == "array_string":
            return [(self.name, "Array(String)")]
        if self.kind in ("enum", "string") and features.low_cardinality and (
                self.kind == "enum" or self.name in _LOW_CARDINALITY):
            return [(self.name, f"LowCardinality({self._null('String')})")]
        base = "String" if self.kind == "enum" else _PRIMITIVE[self.kind]
        return [(self.name, self._null(base))]

    def _null(self, ch_type: str) -> str:
        return f"Nullable({ch_type})" if self.nullable else ch_type

    def default_sql(self) -> str:
        """DEFAULT expression for ALTER TABLE ADD COLUMN (rows written before the field)."""
        if self.nullable or not self.has_default:
            return "NULL" if self.nullable else _zero(self.kind)
        value = self.default
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, list):
            return "[]"
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _zero(kind: str) -> str:
    return {"string": "''", "bytes": "''", "enum": "''", "array_string": "[]"}.get(kind, "0")


@dataclass(frozen=True)
class TableSpec:
    """A catalog table (:class:`schemas.catalog.model.Table`) with the Avro record it is
    written from: its columns and its DDL."""

    table: Table
    record: str                          # Avro record name
    schemas: SchemaStore = field(compare=False, repr=False)
    bookkeeping: tuple[tuple[str, str], ...] = (
        ("clean_topic", "string"), ("clean_partition", "int"), ("clean_offset", "long"))

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def order_by(self) -> tuple[str, ...]:
        return self.table.order_by

    @property
    def columnar(self) -> bool:
        return self.table.columnar

    def fields(self) -> list[Field]:
        schema = self.schemas.parsed(self.record)
        out: list[Field] = []
        for avro_field in schema["fields"]:
            name = avro_field["name"]
            if name in self.table.skip:
                continue
            if self.columnar and _is_overlay(avro_field["type"]):
                out.extend(_overlay_fields(avro_field))
            elif self.columnar and _is_array(avro_field["type"]):
                out.append(_row_field(avro_field))
            else:
                out.extend(_fields(avro_field, (), item=False))
        out.extend(Field(n, k, (n,), rule=INTERNAL_RULE) for n, k in self.bookkeeping)
        return out

    @cached_property
    def row_field(self) -> str:
        """A columnar record's first per-row array (its length is the record's row count)."""
        return next(f.path[0] for f in self.fields() if f.item and not f.sparse)

    def columns(self, features: Features) -> list[tuple[str, str]]:
        cols = [c for f in self.fields() for c in f.columns(features)]
        cols.append(("_version", "UInt64"))
        cols.append(("inserted_at", "DateTime('UTC')"))
        return cols

    def create_sql(self, database: str, features: Features) -> str:
        body = ",\n    ".join(f"{name} {ch_type}" for name, ch_type in self.columns(features))
        partition = f"\nPARTITION BY {self.table.partition_by}" if self.table.partition_by else ""
        return (f"CREATE TABLE IF NOT EXISTS {database}.{self.name} (\n    {body}\n)\n"
                f"ENGINE = ReplacingMergeTree(_version){partition}\n"
                f"ORDER BY ({', '.join(self.order_by)})")

    def create_statements(self, database: str, features: Features,
                          layout: Layout | None = None) -> tuple[str, ...]:
        """The table's DDL: :meth:`create_sql` on one server; on a cluster the replicated
        local table and the Distributed one (:mod:`sinks.clickhouse.cluster`)."""
        layout = layout or Layout()
        return layout.tables(self.create_sql(database, features), database, self.name,
                             layout.shard_key(self.order_by, self.table.shard_by))


def table_specs(catalog: Catalog | None = None) -> dict[str, TableSpec]:
    """Every table the sink writes, by name, in write order (dead letters last)."""
    catalog = catalog or default_catalog()
    return {table.name: TableSpec(table, topic.record, catalog.schemas)
            for topic, table in catalog.routes().values()}


def _fields(avro_field: dict[str, Any], prefix: tuple[str, ...], item: bool) -> list[Field]:
    name = avro_field["name"]
    path = (*prefix, name)
    col = "_".join(path)
    kind, nullable = _kind(avro_field["type"])
    if kind == "record":
        record = _non_null(avro_field["type"])
        return [f for sub in record["fields"] for f in _fields(sub, path, item)]
    return [Field(col, kind, path, nullable=nullable, default=avro_field.get("default"),
                  has_default="default" in avro_field, item=item, rule=rule_of(avro_field))]


def _is_array(avro_type: Any) -> bool:
    return isinstance(avro_type, dict) and avro_type.get("type") == "array"


def _is_overlay(avro_type: Any) -> bool:
    items = avro_type.get("items") if _is_array(avro_type) else None
    return isinstance(items, dict) and items.get("type") == "record" and any(
        f["name"] == "index" for f in items["fields"])


def _overlay_fields(avro_field: dict[str, Any]) -> list[Field]:
    """The per-row columns of a sparse overlay array (all but its ``index``)."""
    out = []
    for sub in avro_field["type"]["items"]["fields"]:
        if sub["name"] == "index":
            continue
        kind, nullable = _kind(sub["type"])
        if "default" not in sub and not nullable:
            raise ValueError(f"overlay field {avro_field['name']}.{sub['name']} needs a "
                             "default (the value of rows without an entry)")
        out.append(Field(sub["name"], kind, (sub["name"],), nullable=nullable,
                         default=sub.get("default"), has_default="default" in sub, item=True,
                         sparse=avro_field["name"], rule=rule_of(sub)))
    return out


def _row_field(avro_field: dict[str, Any]) -> Field:
    """The per-row column of a parallel array (its entries' type)."""
    name = avro_field["name"]
    kind, nullable = _kind(avro_field["type"]["items"])
    return Field(name, kind, (name,), nullable=nullable, item=True, rule=rule_of(avro_field))


def _non_null(avro_type: Any) -> Any:
    if isinstance(avro_type, list):
        rest = [t for t in avro_type if t != "null"]
        if len(rest) != 1:
            raise ValueError(f"unsupported union {avro_type!r}: only [null, T] maps to a column")
        return rest[0]
    return avro_type


def _kind(avro_type: Any) -> tuple[str, bool]:
    nullable = isinstance(avro_type, list) and "null" in avro_type
    t = _non_null(avro_type)
    if isinstance(t, str):
        if t in _PRIMITIVE:
            return t, nullable
        return "enum", nullable  # a named type reference: only enums are reused here
    if t.get("logicalType") in ("timestamp-millis", "timestamp-micros"):
        return "timestamp", nullable
    kind = t["type"]
    if kind in ("enum", "record"):
        return kind, nullable
    if kind == "array" and (t["items"] == "string" or _non_null(t["items"]) == "string"):
        return "array_string", False
    if kind in _PRIMITIVE:
        return kind, nullable
    raise ValueError(f"unsupported Avro type {t!r}")


# The ledger: one row per input message (the basis of `ebi reconcile`).
LEDGER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("source_topic", "String"), ("source_partition", "Int32"), ("source_offset", "Int64"),
    ("source_schema_id", "Nullable(Int32)"), ("outcome", "String"), ("record_type", "String"),
    ("record_id", "String"), ("readings_in", "Int32"), ("accepted", "Int32"),
    ("duplicates", "Int32"), ("rejected", "Int32"), ("sink_rejected", "Int32"),
    ("duplicate", "UInt8"), ("clean_topic", "String"), ("clean_partition", "Int32"),
    ("clean_offset", "Int64"), ("received_at_ms", "Int64"), ("_version", "UInt64"),
    ("inserted_at", "DateTime('UTC')"),
)


# One row per message the sink stored, of any topic it reads (the basis of the output checks
# of `ebi reconcile`: every offset before the sink's committed offset is here).
CONSUMED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("clean_topic", "String"), ("clean_partition", "Int32"), ("clean_offset", "Int64"),
    ("stored_in", "String"), ("inserted_at", "DateTime('UTC')"),
)


def consumed_sql(database: str) -> str:
    body = ",\n    ".join(f"{n} {t}" for n, t in CONSUMED_COLUMNS)
    return (f"CREATE TABLE IF NOT EXISTS {database}.consumed (\n    {body}\n)\n"
            "ENGINE = ReplacingMergeTree(inserted_at)\n"
            "ORDER BY (clean_topic, clean_partition, clean_offset)")


def ledger_sql(database: str) -> str:
    body = ",\n    ".join(f"{n} {t}" for n, t in LEDGER_COLUMNS)
    return (f"CREATE TABLE IF NOT EXISTS {database}.ledger (\n    {body}\n)\n"
            "ENGINE = ReplacingMergeTree(_version)\n"
            "ORDER BY (source_topic, source_partition, source_offset)")


# On a cluster: rows that replace each other (the same input or clean coordinates) share
# a shard.
LEDGER_SHARD_BY = ("source_topic", "source_partition", "source_offset")
CONSUMED_SHARD_BY = ("clean_topic", "clean_partition", "clean_offset")


def ledger_statements(database: str, layout: Layout | None = None) -> tuple[str, ...]:
    return (layout or Layout()).tables(ledger_sql(database), database, "ledger",
                                       LEDGER_SHARD_BY)


def consumed_statements(database: str, layout: Layout | None = None) -> tuple[str, ...]:
    return (layout or Layout()).tables(consumed_sql(database), database, "consumed",
                                       CONSUMED_SHARD_BY)
