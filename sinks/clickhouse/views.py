"""Rollups (materialized views) and the analyst views, as SQL for one database.

Replay safety: each rollup groups by its key, time bucket AND the input message's source
coordinates into a ReplacingMergeTree keyed the same way, so a replayed envelope replaces
its own rollup row instead of adding to it; the analyst view re-aggregates with FINAL.
The SQL sticks to what 18.16 and current ClickHouse both accept (no CTEs, ANY LEFT JOIN).
"""

from __future__ import annotations

from schemas.catalog import default_catalog
from schemas.catalog.model import Catalog
from sinks.clickhouse.backend import Features
from sinks.clickhouse.schema import TableSpec, table_specs

SOURCE = "source_topic, source_partition, source_offset"

# name -> (columns DDL, order by, partition by); each rollup reads one base table (below)
ROLLUP_TABLES: dict[str, tuple[str, str, str]] = {
    "readings_1m": (
        "enterprise_id String, sensor_id String, region_code String, metric String, "
        "unit String, minute DateTime('UTC'), source_topic String, source_partition Int32, "
        "source_offset Int64, value_min Float64, value_max Float64, value_sum Float64, "
        "n_readings UInt64, row_version UInt64",
        f"enterprise_id, sensor_id, minute, {SOURCE}", "toYYYYMM(minute)"),
    "readings_1d": (
        "enterprise_id String, region_code String, gateway_id String, day Date, "
        "source_topic String, source_partition Int32, source_offset Int64, n_readings UInt64, "
        "n_late UInt64, n_anomalous UInt64, n_alarms UInt64, row_version UInt64",
        f"enterprise_id, day, {SOURCE}", "toYYYYMM(day)"),
    "incidents_1d": (
        "region_code String, kind String, declared_level String, day Date, "
        "incident_id String, source_topic String, source_partition Int32, "
        "source_offset Int64, n_reports UInt64, n_late UInt64, max_deaths Int64, "
        "max_missing Int64, row_version UInt64",
        f"region_code, kind, declared_level, day, {SOURCE}", "toYYYYMM(day)"),
}

MATERIALIZED_VIEWS: dict[str, tuple[str, str]] = {
    "readings_1m_mv": ("readings_1m", f"""
SELECT enterprise_id, sensor_id, any(region_code) AS region_code, any(metric) AS metric,
       any(unit) AS unit, toStartOfMinute(event_time) AS minute, {SOURCE},
       min(value) AS value_min, max(value) AS value_max, sum(value) AS value_sum,
       count() AS n_readings, max(_version) AS row_version
FROM {{db}}.readings_raw
GROUP BY enterprise_id, sensor_id, minute, {SOURCE}"""),
    "readings_1d_mv": ("readings_1d", f"""
SELECT enterprise_id, any(region_code) AS region_code, any(gateway_id) AS gateway_id,
       toDate(event_time) AS day, {SOURCE}, count() AS n_readings, sum(late) AS n_late,
       countIf(notEmpty(anomalies)) AS n_anomalous, countIf(alarm_level > 0) AS n_alarms,
       max(_version) AS row_version
FROM {{db}}.readings_raw
GROUP BY enterprise_id, day, {SOURCE}"""),
    "incidents_1d_mv": ("incidents_1d", f"""
SELECT region_code, kind, declared_level, toDate(occurred_at) AS day,
       any(incident_id) AS incident_id, {SOURCE}, count() AS n_reports,
       sum(late) AS n_late, max(toInt64(deaths)) AS max_deaths,
       max(toInt64(missing)) AS max_missing, max(_version) AS row_version
FROM {{db}}.incident_reports_raw
GROUP BY region_code, kind, declared_level, day, {SOURCE}"""),
}


# rollup -> the base table its materialized view reads; analyst view -> the tables it reads
ROLLUP_SOURCES = {"readings_1m": "readings_raw", "readings_1d": "readings_raw",
                  "incidents_1d": "incident_reports_raw"}
DERIVED_VIEWS: dict[str, tuple[frozenset[str], str]] = {
    "sensor_minutes": (frozenset({"readings_1m"}), """
SELECT enterprise_id, sensor_id, region_code, metric, unit, minute,
       min(value_min) AS min_value, max(value_max) AS max_value,
       sum(value_sum) / sum(n_readings) AS avg_value, sum(n_readings) AS readings
FROM {db}.readings_1m FINAL
GROUP BY enterprise_id, sensor_id, region_code, metric, unit, minute"""),
    "enterprise_days": (frozenset({"readings_1d", "gateway_status_raw"}), """
SELECT enterprise_id, day, region_code, readings, late_readings, anomalous_readings,
       alarm_readings, gateways, offline_seconds,
       greatest(0, 1 - offline_seconds / (gateways * 86400)) AS online_ratio
FROM (
    SELECT enterprise_id, day, any(region_code) AS region_code, sum(n_readings) AS readings,
           sum(n_late) AS late_readings, sum(n_anomalous) AS anomalous_readings,
           sum(n_alarms) AS alarm_readings, uniqExact(gateway_id) AS gateways
    FROM {db}.readings_1d FINAL
    GROUP BY enterprise_id, day
) AS r ANY LEFT JOIN (
    SELECT enterprise_id, toDate(changed_at) AS day, sum(offline_seconds) AS offline_seconds
    FROM {db}.gateway_status_raw FINAL
    WHERE status = 'ONLINE'
    GROUP BY enterprise_id, day
) AS o USING (enterprise_id, day)"""),
    "incident_days": (frozenset({"incidents_1d"}), """
SELECT region_code, kind, declared_level, day, uniqExact(incident_id) AS incidents,
       sum(n_reports) AS reports, sum(n_late) AS late_reports,
       max(max_deaths) AS deaths, max(max_missing) AS missing
FROM {db}.incidents_1d FINAL
GROUP BY region_code, kind, declared_level, day"""),
}


def rollups(catalog: Catalog | None = None) -> list[str]:
    """The rollups whose base table the catalog has."""
    tables = {t.name for t in (catalog or default_catalog()).tables()}
    return [name for name, source in ROLLUP_SOURCES.items() if source in tables]


def _cols(spec: TableSpec, features: Features) -> str:
    return ", ".join(n for n, _ in spec.columns(features) if n != "_version")


def analyst_views(features: Features, catalog: Catalog | None = None) -> dict[str, str]:
    """View name -> SELECT (with ``{db}`` placeholders). Views show deduplicated state: the
    catalog's views of each table (every row, or the latest per key), the views over the
    rollups, and the ledger."""
    v: dict[str, str] = {}
    specs = table_specs(catalog)
    for spec in specs.values():
        for view in spec.table.views:
            select = f"SELECT {_cols(spec, features)} FROM {{db}}.{spec.name} FINAL"
            if view.where:
                select += f" WHERE {view.where}"
            if view.latest_by:
                order = ", ".join((*view.latest_by, *view.order))
                select += f" ORDER BY {order} LIMIT 1 BY {', '.join(view.latest_by)}"
            v[view.name] = select
    present = set(specs) | set(rollups(catalog))
    for name, (needs, select) in DERIVED_VIEWS.items():
        if needs <= present:
            v[name] = select
    v["ledger_v"] = "SELECT * FROM {db}.ledger FINAL"
    return v
