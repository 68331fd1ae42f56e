"""The ``alarms`` view: one row per alarm, from the transitions in ``alarm_events_raw``.

Every AlarmEvent the worker's alarm book writes (RAISED, UPDATED, ACKNOWLEDGED, CLEARED) is a
row of ``alarm_events_raw`` (the catalog's view ``alarm_events`` shows them deduplicated);
this view folds them per ``alarm_id``: when it was raised, acknowledged (first
acknowledgement: by whom, with which note) and cleared, its worst value and how often its
condition occurred, and how long it lasted (``duration_s``: until cleared, or until now while
it stands). SQL that ClickHouse 18.16 and current servers both accept: aggregates in a
subquery (no alias shadowing a column inside an aggregate), ``toUnixTimestamp`` for seconds.
"""

from __future__ import annotations

ALARMS = """
SELECT alarm_id, alarm_type, severity, subject_type, subject_id, enterprise_id, gateway_id,
       region_code, first_raised AS raised_at,
       if(acks = 0, NULL, first_ack) AS acknowledged_at,
       ack_by AS acknowledged_by, ack_note AS note, last_cleared AS cleared_at,
       last_cleared IS NULL AS standing, peak_value AS peak, occurrences AS count, events,
       last_changed AS changed_at, tag,
       if(acks = 0, NULL,
          toInt64(toUnixTimestamp(first_ack)) - toInt64(toUnixTimestamp(first_raised)))
           AS seconds_to_ack,
       toInt64(toUnixTimestamp(ifNull(last_cleared, now())))
           - toInt64(toUnixTimestamp(first_raised)) AS duration_s
FROM (
    SELECT alarm_id, any(alarm_type) AS alarm_type, argMax(severity, changed_at) AS severity,
           any(subject_type) AS subject_type, any(subject_id) AS subject_id,
           any(enterprise_id) AS enterprise_id, any(gateway_id) AS gateway_id,
           any(region_code) AS region_code, min(raised_at) AS first_raised,
           countIf(transition = 'ACKNOWLEDGED') AS acks,
           minIf(changed_at, transition = 'ACKNOWLEDGED') AS first_ack,
           argMinIf(ifNull(acknowledged_by, ''), changed_at, transition = 'ACKNOWLEDGED')
               AS ack_by,
           argMinIf(ifNull(note, ''), changed_at, transition = 'ACKNOWLEDGED') AS ack_note,
           max(cleared_at) AS last_cleared, max(peak) AS peak_value,
           max(count) AS occurrences, count() AS events, max(changed_at) AS last_changed,
           any(tag) AS tag
    FROM {db}.alarm_events_raw FINAL
    GROUP BY alarm_id
)"""

# view -> (the tables it reads, its SELECT); merged into the derived views of views.py
ALARM_VIEWS: dict[str, tuple[frozenset[str], str]] = {
    "alarms": (frozenset({"alarm_events_raw"}), ALARMS),
}
