"""The words of an alarm: its summary in Chinese and in English (``message_zh``,
``message_en`` of an AlarmEvent; Alertmanager's ``summary`` annotations).

One line each, built from the alarm's own fields, so every event of an alarm says what it is
now (value, peak, occurrences), in the terms the bureaus use (GB/T 2260 regions, 一级/二级报警).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# alarm type -> (Chinese, English)
NAMES: dict[str, tuple[str, str]] = {
    "ALARM_L1": ("一级报警", "first-level alarm"),
    "ALARM_L2": ("二级报警", "second-level alarm"),
    "SPIKE": ("数据突变", "sudden change"),
    "FLATLINE": ("数据恒值（传感器疑似失效）", "flatline (stuck sensor?)"),
    "OUTLIER": ("数据异常", "outlier"),
    "LATE_TELEMETRY": ("监测数据迟到", "late telemetry"),
    "GATEWAY_OFFLINE": ("网关离线（监测空白）", "gateway offline (blind spot)"),
    "REPORT_DUE_SOON": ("续报即将到期", "follow-up report due soon"),
    "REPORT_OVERDUE": ("续报超时", "follow-up report overdue"),
    "LATE_REPORT": ("迟报", "late report"),
    "SUSPECTED_CONCEALMENT": ("疑似瞒报", "suspected concealment"),
    "FIGURE_JUMP": ("数据陡增", "sharp rise in figures"),
    "FIGURE_DROP": ("数据骤降", "sharp fall in figures"),
    "CASUALTIES_FELL": ("伤亡人数减少", "casualty figures fell"),
    "HAZARD_OVERDUE": ("隐患逾期未整改", "hidden danger past its rectification deadline"),
}

METRICS: dict[str, str] = {
    "METHANE": "甲烷", "CARBON_MONOXIDE": "一氧化碳", "FLAMMABLE_GAS": "可燃气体",
    "TOXIC_GAS": "有毒气体", "TEMPERATURE": "温度", "PRESSURE": "压力",
    "LIQUID_LEVEL": "液位", "DISPLACEMENT": "位移",
}

SUBJECTS: dict[str, str] = {"sensor": "传感器", "gateway": "网关", "incident": "事故",
                            "hazard": "隐患", "enterprise": "企业"}


def _num(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else ""


def texts(alarm: Mapping[str, Any]) -> tuple[str, str]:
    """(Chinese, English) summary of an alarm: its type, subject and, where they apply, the
    metric, the value against the limit, the peak and the occurrences."""
    kind = str(alarm.get("type", ""))
    zh_name, en_name = NAMES.get(kind, (kind, kind.replace("_", " ").lower()))
    subject_type = str(alarm.get("subject_type", ""))
    subject = str(alarm.get("subject_id", ""))
    metric = str(alarm.get("metric") or "")
    unit = str(alarm.get("unit") or "")
    zh = f"{SUBJECTS.get(subject_type, subject_type)} {subject}"
    en = f"{en_name[:1].upper()}{en_name[1:]}: {subject_type} {subject}"
    if metric:
        zh += f"（{METRICS.get(metric, metric)}）"
        en += f" ({metric.lower().replace('_', ' ')})"
    zh += f" {zh_name}"
    value, peak, limit = (_num(alarm.get(k)) for k in ("value", "peak", "threshold"))
    if value and limit and metric:
        zh += f"：当前 {value} {unit}，限值 {limit}"
        en += f": {value} {unit} against the limit {limit}"
        if peak and peak != value:
            zh += f"，峰值 {peak}"
            en += f", peak {peak}"
    count = alarm.get("count")
    if isinstance(count, int) and count > 1:
        zh += f"，持续期间共 {count} 次"
        en += f", {count} occurrences while active"
    detail = str(alarm.get("detail") or "")
    if detail:
        en += f" — {detail}"
    return zh, en
