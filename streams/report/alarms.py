"""The report's alarm sections, over the ``alarms`` view (one row per alarm):

- alarm floods: alarms raised per province and window (10 minutes by default). The alarms of
  a province go to one operator, its bureau (deploy/alertmanager/alertmanager.yml), and a
  window with more than the flood limit (10: EEMUA 191's flood) is a flood for that operator;
- the alarms that stood in the period, those still standing first.

The window and the limit are the policy's (``[alarms] flood_window``, ``flood_limit``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.policy.alarms import AlarmPolicy

if TYPE_CHECKING:
    from streams.report.sections import Scope, Section

SOURCE = "alarms"
REAL = " AND isNull(tag)"     # canary alarms are no statistic (as in streams.report.sections)


def alarm_sections(scope: Scope, policy: AlarmPolicy | None = None) -> list[Section]:
    from streams.report.sections import Section

    p = policy or AlarmPolicy()
    window = max(1, p.flood_window_ms // 1000)
    minutes = f"{window / 60:g}"
    return [
        Section("floods", f"Alarm floods: alarms per province and {minutes} minutes",
                f"报警泛滥（按省份、每{minutes}分钟）", f"""
SELECT province, count() AS windows, sum(n) AS alarms, max(n) AS peak_per_window,
       countIf(n > {p.flood_limit}) AS flood_windows, argMax(window_start, n) AS worst_window
FROM (
    SELECT substring(region_code, 1, 2) AS province,
           toDateTime(intDiv(toUInt32(toUnixTimestamp(raised_at)), {window}) * {window},
                      'UTC') AS window_start,
           count() AS n
    FROM {SOURCE}
    WHERE {scope.during('raised_at')}{scope.in_region()}{REAL}
    GROUP BY province, window_start
)
GROUP BY province
ORDER BY flood_windows DESC, peak_per_window DESC, province""", times=("worst_window",),
                about=f"Alarms raised per province (one operator: its bureau) in "
                      f"{minutes}-minute windows; more than {p.flood_limit} in a window is a "
                      "flood (EEMUA 191). A value chattering at its limit is one alarm."),
        Section("standing_alarms", "Alarms active in the period (standing first, top 50)",
                "期间报警（未消除的在前，前50）", f"""
SELECT alarm_id, alarm_type, severity, subject_type, subject_id, enterprise_id, region_code,
       raised_at, cleared_at, standing, round(duration_s / 3600, 2) AS hours,
       acknowledged_by, peak, count
FROM {SOURCE}
WHERE raised_at < toDateTime('{scope.until_text}', 'UTC')
  AND (cleared_at IS NULL OR cleared_at >= toDateTime('{scope.since_text}', 'UTC'))\
{scope.in_region()}{REAL}
ORDER BY standing DESC, severity = 'CRITICAL' DESC, raised_at, alarm_id
LIMIT 50""", times=("raised_at", "cleared_at"),
                about="Alarms raised before the end of the period and not cleared before its "
                      "start; hours: until cleared, or until now while standing."),
    ]
