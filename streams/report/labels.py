"""Chinese names of the codes the briefing shows, and its column headings."""

from __future__ import annotations

import datetime as dt

# China Standard Time: the reporting clocks (the 09:00 zero-report) run on it.
CST = dt.timezone(dt.timedelta(hours=8), "CST")

# Decree 493 art. 3, most severe first.
LEVELS = {"ESPECIALLY_SERIOUS": "特别重大", "SERIOUS": "重大", "RELATIVELY_SERIOUS": "较大",
          "ORDINARY": "一般"}
# The colours of China's four-level warning scale (red, orange, yellow, blue).
LEVEL_COLOURS = {"ESPECIALLY_SERIOUS": "#c62828", "SERIOUS": "#ef6c00",
                 "RELATIVELY_SERIOUS": "#f9a825", "ORDINARY": "#1565c0"}
KINDS = {"PRODUCTION_SAFETY": "生产安全事故", "NATURAL_DISASTER": "自然灾害"}
STAGES = {"INITIAL": "初报", "FOLLOW_UP": "续报", "SUPPLEMENTARY": "补报", "FINAL": "核报"}
SEVERITIES = {"CRITICAL": "严重", "WARNING": "警告", "INFO": "提示"}
SEVERITY_COLOURS = {"CRITICAL": "#c62828", "WARNING": "#ef6c00", "INFO": "#78909c"}
DEAD_LETTER_STAGES = {"decode": "解码", "validate": "校验", "sink": "入库"}

# column -> its values' Chinese names; (section, column) where a section differs
VALUE_NAMES: dict[str, dict[str, str]] = {
    "declared_level": LEVELS, "kind": KINDS, "stage": STAGES, "severity": SEVERITIES,
}
SECTION_VALUE_NAMES: dict[tuple[str, str], dict[str, str]] = {
    ("dead_letters", "stage"): DEAD_LETTER_STAGES,
}

COLUMNS = {
    "declared_level": "等级 level", "kind": "类型 kind", "incidents": "起数 incidents",
    "deaths": "死亡 deaths", "missing": "失踪 missing",
    "serious_injuries": "重伤 serious injuries", "report_id": "报告 report",
    "incident_id": "事件 incident", "region_code": "区划 region", "stage": "阶段 stage",
    "reported_at": "填报时间 reported", "deadline_at": "时限 deadline",
    "received_at": "接收时间 received", "minutes_late": "迟报分钟 minutes late",
    "province": "省份 province", "late_reports": "迟报份数 late reports",
    "worst_minutes_late": "最长迟报分钟 worst minutes late", "hour": "小时 hour",
    "severity": "级别 severity", "alarms": "报警数 alarms", "alert_type": "报警类型 type",
    "enterprises": "企业数 enterprises", "last_event": "最近 last event",
    "enterprise_id": "企业 enterprise", "gateways": "网关数 gateways",
    "blind_spots": "空白次数 blind spots", "closed_hours": "已恢复小时 ended (h)",
    "open_hours": "未恢复小时 still open (h)",
    "blind_spot_hours": "监测空白小时 blind-spot hours", "gateway_id": "网关 gateway",
    "offline_since": "离线起始 offline since", "late_readings": "迟到条数 late readings",
    "worst_lag_ms": "最大延迟毫秒 worst lag (ms)", "anomaly": "异常 anomaly",
    "readings": "条数 readings", "sensors": "传感器数 sensors",
    "error_code": "原因 reason", "messages": "消息数 messages",
    # alarm sections (streams/report/alarms.py)
    "windows": "有报警的时段 windows", "peak_per_window": "单时段最多 most in a window",
    "flood_windows": "泛滥时段 flood windows", "worst_window": "最多的时段 worst window",
    "alarm_id": "报警编号 alarm", "alarm_type": "报警类型 type", "subject_type": "对象 subject",
    "subject_id": "对象编号 subject id", "raised_at": "报警时间 raised",
    "cleared_at": "消除时间 cleared", "standing": "未消除 standing", "hours": "持续小时 hours",
    "acknowledged_by": "确认人 acknowledged by", "peak": "峰值 peak", "count": "次数 count",
}


def value_name(section: str, column: str, value: object) -> str:
    """The Chinese name of a coded value in a section's column ('' when it has none)."""
    names = SECTION_VALUE_NAMES.get((section, column)) or VALUE_NAMES.get(column, {})
    return names.get(str(value), "")


def cst(value: dt.datetime) -> dt.datetime:
    return value.astimezone(CST)
