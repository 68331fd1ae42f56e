from __future__ import annotations

from sinks.clickhouse.schema import Field, table_specs
from tests.unit.sinks.fakes import MODERN, OLD

TABLES = table_specs()
READINGS, DEAD_LETTERS = TABLES["readings_raw"], TABLES["dead_letters_raw"]


def test_readings_columns_are_envelope_fields_and_reading_arrays() -> None:
    names = [f.name for f in READINGS.fields()]
    assert names[:4] == ["source_topic", "source_partition", "source_offset",
                         "source_schema_id"]
    assert "reading_id" in names and "gateway_id" in names
    assert "readings_in" not in names and "readings" not in names
    assert names[-3:] == ["clean_topic", "clean_partition", "clean_offset"]


def test_sparse_flags_are_per_row_columns_not_a_flags_column() -> None:
    fields = {f.name: f for f in READINGS.fields()}
    assert "flags" not in fields and "index" not in fields
    assert [fields[n].sparse for n in ("late", "alarm_level", "anomalies")] == ["flags"] * 3
    assert fields["anomalies"].default == [] and fields["late"].default is False


def test_an_overlay_field_without_a_default_is_refused() -> None:
    import pytest

    from sinks.clickhouse.schema import _overlay_fields

    field = {"name": "flags", "type": {"type": "array", "items": {
        "type": "record", "name": "F", "fields": [{"name": "index", "type": "int"},
                                                 {"name": "late", "type": "boolean"}]}}}
    with pytest.raises(ValueError, match=r"flags\.late needs a default"):
        _overlay_fields(field)


def test_types_follow_the_server() -> None:
    modern = dict(READINGS.columns(MODERN))
    old = dict(READINGS.columns(OLD))
    assert modern["event_time"] == "DateTime64(3, 'UTC')"
    assert "event_time_ms" not in modern
    assert old["event_time"] == "DateTime('UTC')" and old["event_time_ms"] == "UInt16"
    assert modern["metric"] == "LowCardinality(String)" and old["metric"] == "String"
    assert modern["tag"] == "LowCardinality(Nullable(String))"
    assert old["tag"] == "Nullable(String)"
    assert modern["anomalies"] == "Array(String)"
    assert modern["late"] == "UInt8" and modern["value"] == "Float64"


def test_create_sql_is_replacing_merge_tree_keyed_by_the_record() -> None:
    sql = READINGS.create_sql("ebi", OLD)
    assert sql.startswith("CREATE TABLE IF NOT EXISTS ebi.readings_raw")
    assert "ReplacingMergeTree(_version)" in sql
    assert "PARTITION BY toYYYYMM(event_time)" in sql
    assert "ORDER BY (enterprise_id, sensor_id, event_time, reading_id)" in sql
    assert "ifNull(record_index, -1)" in DEAD_LETTERS.create_sql("ebi", MODERN)


def test_every_table_has_bookkeeping_columns() -> None:
    for spec in TABLES.values():
        cols = dict(spec.columns(MODERN))
        assert {"clean_topic", "clean_offset", "_version", "inserted_at"} <= set(cols)


def test_default_sql_for_new_optional_fields() -> None:
    assert Field("x", "string", ("x",), nullable=True).default_sql() == "NULL"
    assert Field("x", "long", ("x",), default=0, has_default=True).default_sql() == "0"
    assert Field("x", "boolean", ("x",), default=True, has_default=True).default_sql() == "1"
    assert Field("x", "string", ("x",), default="it's", has_default=True
                 ).default_sql() == "'it\\'s'"
    assert Field("x", "array_string", ("x",), default=[], has_default=True
                 ).default_sql() == "[]"
