"""Column classifications: every stored column has one, the DDL carries it, masks follow it."""

from __future__ import annotations

from schemas.classification import OPEN, TRADE_SECRET, Rule
from sinks.clickhouse.classification import (
    all_rules,
    comment_statements,
    hidden_sql,
    mask_sql,
    rollup_rules,
)
from sinks.clickhouse.migrations import migrate
from tests.unit.sinks.fakes import MODERN, OLD, FakeBackend


def test_every_column_of_every_table_and_rollup_is_classified() -> None:
    for features in (OLD, MODERN):
        for table, rules in all_rules(features).items():
            unclassified = [c for c, r in rules.items() if r is None]
            assert not unclassified, f"{table}: {unclassified} (add them to DERIVED or " \
                                     "AGGREGATES in sinks/clickhouse/classification.py)"


def test_rollups_inherit_the_rule_of_what_they_are_computed_from() -> None:
    rules = rollup_rules("reading_minutes", OLD)
    assert rules["value_max"] == all_rules(OLD)["readings_raw"]["value"]
    assert rules["pairs"] == all_rules(OLD)["readings_raw"]["value"]
    assert rules["late"] == Rule("internal")
    assert rules["region_code"] == Rule("public")
    assert rollup_rules("incidents_1d", OLD)["n_reports"] == Rule("internal")


def test_migrate_writes_the_classification_as_column_comments() -> None:
    backend = FakeBackend(OLD)
    migrate(backend)
    alters = [c for c in backend.commands if c.startswith("ALTER TABLE ebi.readings_raw COMMENT")]
    assert len(alters) == 1
    assert "COMMENT COLUMN value 'classification: trade_secret; internal where metric in " \
           "METHANE|" in alters[0]
    assert "COMMENT COLUMN event_time_ms 'classification: internal'" in alters[0]
    assert set(comment_statements("ebi", OLD)) >= {"reading_minutes", "incidents_1d", "ledger",
                                                     "dead_letters_raw"}
    again = len(backend.commands)
    assert migrate(backend).applied == [] and len(backend.commands) == again + 1  # the
    # schema_migrations table's CREATE ... IF NOT EXISTS only


def test_masks_hide_by_class_and_by_row() -> None:
    value = all_rules(OLD)["readings_raw"]["value"]
    cols = ["metric", "value"]
    assert mask_sql("value", "Float64", value, OPEN | {TRADE_SECRET}, cols) == "value"
    sql = mask_sql("value", "Float64", value, OPEN, cols)
    assert sql.startswith("multiIf(metric IN ('METHANE', ")
    assert sql.endswith(", value, CAST(NULL AS Nullable(Float64)))")
    # the condition's column is not there: every class of the rule must be allowed
    assert mask_sql("value", "Float64", value, OPEN, ["value"]) == hidden_sql("Float64")
    assert mask_sql("d", "LowCardinality(String)", Rule("personal"), OPEN, []) == \
        "CAST(NULL AS Nullable(String))"
    assert mask_sql("x", "Array(String)", None, OPEN, []) == "CAST([] AS Array(String))"
    assert mask_sql("x", "String", Rule("internal"), OPEN, []) == "x"
