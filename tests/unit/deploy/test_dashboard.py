"""Every metric and label the dashboard and the alert rules use exists in streams/metrics.py."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.unit.deploy.promql import (
    BUILTIN_LABELS,
    DEPLOY,
    dashboard,
    dashboard_targets,
    exposed_series,
    label_names,
    metric_names,
    rules,
)

SERIES = exposed_series()


def _check_expr(where: str, expr: str) -> None:
    names = metric_names(expr)
    unknown = sorted(names - set(SERIES))
    assert not unknown, f"{where}: {unknown} not exposed by streams/metrics.py: {expr}"
    known_labels = set().union(*(SERIES[n] for n in names)) | BUILTIN_LABELS
    bad = sorted(label_names(expr) - known_labels)
    assert not bad, f"{where}: labels {bad} are not labels of {sorted(names)}: {expr}"


def test_series_names_follow_prometheus_client_conventions() -> None:
    assert "ebi_records_in_total" in SERIES
    assert "ebi_sink_insert_seconds_bucket" in SERIES
    assert "ebi_build_info" in SERIES
    assert SERIES["ebi_gateways_offline"] == {"province"}


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_rule_metrics_exist(rule: dict[str, object]) -> None:
    _check_expr(f"rule {rule['alert']}", str(rule["expr"]))


def test_dashboard_metrics_and_legends_exist() -> None:
    targets = dashboard_targets()
    assert targets
    for title, target in targets:
        expr = target["expr"]
        _check_expr(f"panel {title!r}", expr)
        legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
        missing = legend - label_names(expr)
        assert not missing, f"panel {title!r}: legend uses {missing} not kept by {expr}"


def test_every_metric_is_on_the_dashboard_or_in_a_rule() -> None:
    used = set().union(*(metric_names(t["expr"]) for _, t in dashboard_targets()))
    used |= set().union(*(metric_names(str(r["expr"])) for r in rules()))
    families = {re.sub(r"_(total|bucket|sum|count|created|info)$", "", s) for s in SERIES}
    used_families = {re.sub(r"_(total|bucket|sum|count|created|info)$", "", s) for s in used}
    unused = sorted(families - used_families - {"ebi_build"})
    assert not unused, f"metrics nobody looks at: {unused}"


def test_dashboard_has_the_three_rows_with_their_metrics() -> None:
    rows: dict[str, set[str]] = {}
    current = None
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            current = panel["title"]
            rows[current] = set()
        else:
            assert current is not None, "panels before the first row"
            for target in panel["targets"]:
                rows[current] |= metric_names(target["expr"])
    assert list(rows) == ["Pipeline health", "Data quality", "Regulatory timeliness"]
    assert {"ebi_records_in_total", "ebi_records_out_total", "ebi_consumer_lag_messages",
            "ebi_processing_lag_seconds", "ebi_sink_insert_seconds_bucket",
            "ebi_sink_last_insert_timestamp_seconds", "ebi_sink_errors_total",
            "ebi_sink_retries_total", "ebi_sink_paused"} <= rows["Pipeline health"]
    assert {"ebi_rejects_total", "ebi_duplicates_dropped_total",
            "ebi_anomalies_total"} <= rows["Data quality"]
    assert {"ebi_late_reports_total", "ebi_reports_overdue", "ebi_open_incidents",
            "ebi_gateways_offline"} <= rows["Regulatory timeliness"]


def test_dashboard_is_ready_to_provision() -> None:
    board = dashboard()
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    assert board["uid"] and board["title"]
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/ebi.yaml").read_text())["datasources"][0]
    variable = board["templating"]["list"][0]
    assert variable["type"] == "datasource"
    assert variable["current"]["value"] == datasource["uid"]
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    provider = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/ebi.yaml").read_text())["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/ebi"
