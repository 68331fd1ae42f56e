"""Rollups (materialized views) and the analyst views, as SQL for one database.

Counting each thing once: the reading rollup (``reading_minutes``) is an
AggregatingMergeTree keyed by enterprise, sensor and minute whose states are sets: the
readings of the minute as ``(sipHash64(reading_id), value)`` pairs, and the ids of its late,
anomalous and alarm readings. A reading stored twice (a replay, or a duplicate the worker's
ring no longer remembered) adds the same element to the same set, so the views count it once;
min and max are idempotent anyway. Views merge the states with GROUP BY (no FINAL). Canary
traffic (``tag`` set) never enters a rollup, and the statistics views leave it out.

The first release's rollups (``readings_1m``, ``readings_1d``, keyed by the input message's
source coordinates: a replayed envelope replaced its own row, a duplicate reading in another
envelope was counted twice) are retired by migration step 0005, which builds
``reading_minutes`` from ``readings_raw``. The SQL sticks to what 18.16 and current ClickHouse
both accept (no CTEs, no SimpleAggregateFunction, ANY LEFT JOIN).
"""

from __future__ import annotations

from schemas.catalog import default_catalog
from schemas.catalog.model import Catalog
from sinks.clickhouse.alarm_views import ALARM_VIEWS
from sinks.clickhouse.backend import Features
from sinks.clickhouse.schema import TableSpec, table_specs

SOURCE = "source_topic, source_partition, source_offset"

# Step 0003 (released; a migration step never changes): rollups per input message.
# name -> (columns DDL, order by, partition by); each rollup reads one base table (below)
FIRST_ROLLUP_TABLES: dict[str, tuple[str, str, str]] = {
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

FIRST_MATERIALIZED_VIEWS: dict[str, tuple[str, str]] = {
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

# Step 0005: the reading rollup as sets (see the module docstring).
# name -> (columns DDL, engine, order by, partition by)
_ID = "sipHash64(reading_id)"
ROLLUP_TABLES: dict[str, tuple[str, str, str, str]] = {
    "reading_minutes": (
        "enterprise_id String, sensor_id String, minute DateTime('UTC'), region_code String, "
        "gateway_id String, metric String, unit String, "
        "value_min AggregateFunction(min, Float64), value_max AggregateFunction(max, Float64), "
        "pairs AggregateFunction(groupUniqArray, Tuple(UInt64, Float64)), "
        "late AggregateFunction(uniqExactIf, UInt64, UInt8), "
        "anomalous AggregateFunction(uniqExactIf, UInt64, UInt8), "
        "alarms AggregateFunction(uniqExactIf, UInt64, UInt8)",
        "AggregatingMergeTree",
        "enterprise_id, sensor_id, minute, region_code, gateway_id, metric, unit",
        "toYYYYMM(minute)"),
}
# name -> (target, SELECT); the same SELECT fills the rollup from its base table once
MATERIALIZED_VIEWS: dict[str, tuple[str, str]] = {
    "reading_minutes_mv": ("reading_minutes", f"""
SELECT enterprise_id, sensor_id, toStartOfMinute(event_time) AS minute, region_code,
       gateway_id, metric, unit, minState(value) AS value_min, maxState(value) AS value_max,
       groupUniqArrayState(({_ID}, value)) AS pairs,
       uniqExactIfState({_ID}, late = 1) AS late,
       uniqExactIfState({_ID}, notEmpty(anomalies)) AS anomalous,
       uniqExactIfState({_ID}, alarm_level > 0) AS alarms
FROM {{db}}.readings_raw
WHERE isNull(tag)
GROUP BY enterprise_id, sensor_id, minute, region_code, gateway_id, metric, unit"""),
}
# what step 0005 drops (the first release's reading rollups and their materialized views)
RETIRED = ("readings_1m_mv", "readings_1d_mv", "readings_1m", "readings_1d")

# rollup -> the base table its materialized view reads; analyst view -> the tables it reads
ROLLUP_SOURCES = {"readings_1m": "readings_raw", "readings_1d": "readings_raw",
                  "incidents_1d": "incident_reports_raw", "reading_minutes": "readings_raw"}

# One row per gateway outage and UTC day it overlaps: closed ones (an ONLINE change carries
# the length of the silence before it) and those still open (the gateway's latest state is
# OFFLINE: counted up to now). Canary gateways are left out.
_OUTAGE_DAYS = """
SELECT enterprise_id, region_code, gateway_id, is_open,
       toDate(toDateTime(toUInt32((intDiv(start_s, 86400) + n) * 86400), 'UTC')) AS day,
       least(end_s, (intDiv(start_s, 86400) + n + 1) * 86400)
           - greatest(start_s, (intDiv(start_s, 86400) + n) * 86400) AS overlap
FROM (
    SELECT enterprise_id, region_code, gateway_id,
           toInt64(toUnixTimestamp(changed_at)) - toInt64(offline_seconds) AS start_s,
           toInt64(toUnixTimestamp(changed_at)) AS end_s, toUInt8(0) AS is_open
    FROM {db}.gateway_status_raw FINAL
    WHERE status = 'ONLINE' AND offline_seconds > 0 AND isNull(tag)
    UNION ALL
    SELECT enterprise_id, region_code, gateway_id,
           toInt64(toUnixTimestamp(changed_at)) AS start_s,
           toInt64(toUnixTimestamp(now())) AS end_s, toUInt8(1) AS is_open
    FROM {db}.gateway_state
    WHERE status = 'OFFLINE' AND isNull(tag)
      AND toUnixTimestamp(changed_at) < toUnixTimestamp(now())
) AS o
ARRAY JOIN range(toUInt32(intDiv(end_s, 86400) - intDiv(start_s, 86400)) + 1) AS n"""

DERIVED_VIEWS: dict[str, tuple[frozenset[str], str]] = {
    "sensor_minutes": (frozenset({"reading_minutes"}), """
SELECT enterprise_id, sensor_id, region_code, metric, unit, minute,
       arrayReduce('min', v) AS min_value, arrayReduce('max', v) AS max_value,
       arrayReduce('avg', v) AS avg_value, length(p) AS readings
FROM (
    -- from the set of (reading, value): a scope without clearance has NULL values there,
    -- and NULL comes out (18.16's min/max states would merge to 0)
    SELECT enterprise_id, sensor_id, any(region_code) AS region_code, any(metric) AS metric,
           any(unit) AS unit, minute, groupUniqArrayMerge(pairs) AS p,
           arrayMap(x -> tupleElement(x, 2), p) AS v
    FROM {db}.reading_minutes
    GROUP BY enterprise_id, sensor_id, minute
)"""),
    "enterprise_days": (frozenset({"reading_minutes", "gateway_status_raw"}), """
SELECT enterprise_id, day, region_code, readings, late_readings, anomalous_readings,
       alarm_readings, gateways, offline_seconds, open_outages,
       greatest(0, 1 - offline_seconds / (gateways * day_seconds)) AS online_ratio
FROM (
    SELECT enterprise_id, day, any(region_code) AS region_code, sum(n) AS readings,
           sum(n_late) AS late_readings, sum(n_anomalous) AS anomalous_readings,
           sum(n_alarms) AS alarm_readings, uniqExact(gateway_id) AS gateways,
           least(sum(offline), uniqExact(gateway_id) * 86400) AS offline_seconds,
           sum(is_open) AS open_outages,
           if(day = today(), greatest(1, toInt64(toUnixTimestamp(now()))
              - toInt64(toUnixTimestamp(toDateTime(day, 'UTC')))), 86400) AS day_seconds
    FROM (
        SELECT enterprise_id, toDate(minute) AS day, any(region_code) AS region_code,
               any(gateway_id) AS gateway_id, toUInt64(length(groupUniqArrayMerge(pairs))) AS n,
               toUInt64(uniqExactIfMerge(late)) AS n_late,
               toUInt64(uniqExactIfMerge(anomalous)) AS n_anomalous,
               toUInt64(uniqExactIfMerge(alarms)) AS n_alarms, toInt64(0) AS offline,
               toUInt8(0) AS is_open
        FROM {db}.reading_minutes
        GROUP BY enterprise_id, sensor_id, minute
        UNION ALL
        SELECT enterprise_id, day, region_code, gateway_id, toUInt64(0) AS n,
               toUInt64(0) AS n_late, toUInt64(0) AS n_anomalous, toUInt64(0) AS n_alarms,
               toInt64(overlap) AS offline, is_open
        FROM (""" + _OUTAGE_DAYS + """
        )
    )
    GROUP BY enterprise_id, day
)"""),
    # 网上巡查: per enterprise, the registered sensors (latest registration, not removed)
    # and how many of them have a reading from the last hour
    "spot_checks": (frozenset({"sensor_registrations_raw", "reading_minutes"}), """
SELECT enterprise_id, any(region_code) AS region_code, count() AS registered_sensors,
       sum(reported) AS reporting_sensors, count() - sum(reported) AS silent_sensors,
       round(sum(reported) / count(), 4) AS reporting_share, now() AS checked_at
FROM (
    SELECT sensor_id, enterprise_id, region_code
    FROM (
        SELECT sensor_id, argMax(enterprise_id, updated_at) AS enterprise_id,
               argMax(region_code, updated_at) AS region_code,
               argMax(registered, updated_at) AS registered
        FROM {db}.sensor_registrations_raw
        WHERE isNull(tag)
        GROUP BY sensor_id
    )
    WHERE registered = 1
) AS s ANY LEFT JOIN (
    SELECT sensor_id, toUInt8(1) AS reported
    FROM {db}.reading_minutes
    WHERE minute >= now() - 3600
    GROUP BY sensor_id
) AS r USING (sensor_id)
GROUP BY enterprise_id"""),
    "incident_days": (frozenset({"incidents_1d"}), """
SELECT region_code, kind, declared_level, day, uniqExact(incident_id) AS incidents,
       sum(n_reports) AS reports, sum(n_late) AS late_reports,
       max(max_deaths) AS deaths, max(max_missing) AS missing
FROM {db}.incidents_1d FINAL
WHERE NOT startsWith(incident_id, 'canary-')
GROUP BY region_code, kind, declared_level, day"""),
}


# Computed columns a catalog view may add (``View.columns``), by name. ``days_overdue``:
# whole days a hidden danger is past its rectification deadline, up to now while it is open
# and up to its closing version when closed (NULL: no deadline; 0: not past it).
COMPUTED_COLUMNS = {
    "days_overdue": "if(isNull(rectification_deadline), NULL, intDiv(greatest(toInt64(0), "
                    "toInt64(if(status = 'CLOSED', toUnixTimestamp(updated_at), "
                    "toUnixTimestamp(now()))) - toInt64(toUnixTimestamp(assumeNotNull("
                    "rectification_deadline)))), 86400))",
}


def rollups(catalog: Catalog | None = None) -> list[str]:
    """The rollups whose base table the catalog has (every release's: the migration steps
    create them in order; :func:`current_rollups` for those that exist after the last)."""
    tables = {t.name for t in (catalog or default_catalog()).tables()}
    return [name for name, source in ROLLUP_SOURCES.items() if source in tables]


# The rollups after every step: name -> (columns DDL, engine, order by, partition by), and
# the materialized views that fill them (the first release's that were not retired, and
# step 0005's)
CURRENT_ROLLUP_TABLES: dict[str, tuple[str, str, str, str]] = {
    **{name: (columns, "ReplacingMergeTree(row_version)", order_by, partition_by)
       for name, (columns, order_by, partition_by) in FIRST_ROLLUP_TABLES.items()
       if name not in RETIRED},
    **ROLLUP_TABLES}
CURRENT_MATERIALIZED_VIEWS: dict[str, tuple[str, str]] = {
    **{name: view for name, view in FIRST_MATERIALIZED_VIEWS.items() if name not in RETIRED},
    **MATERIALIZED_VIEWS}


def current_rollups(catalog: Catalog | None = None) -> list[str]:
    """The rollups that exist after the last migration step, of the catalog's tables."""
    return [name for name in rollups(catalog) if name in CURRENT_ROLLUP_TABLES]


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
            extra = "".join(f", {COMPUTED_COLUMNS[c]} AS {c}" for c in view.columns)
            select = f"SELECT {_cols(spec, features)}{extra} FROM {{db}}.{spec.name} FINAL"
            if view.where:
                select += f" WHERE {view.where}"
            if view.latest_by:
                order = ", ".join((*view.latest_by, *view.order))
                select += f" ORDER BY {order} LIMIT 1 BY {', '.join(view.latest_by)}"
            v[view.name] = select
    present = set(specs) | set(rollups(catalog))
    for name, (needs, select) in {**DERIVED_VIEWS, **ALARM_VIEWS}.items():
        if needs <= present:
            v[name] = select
    v["ledger_v"] = "SELECT * FROM {db}.ledger FINAL"
    return v
