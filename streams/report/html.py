"""The HTML briefing: one self-contained page (inline CSS and SVG charts; no script, no
external resource), times in China Standard Time. Every value from the database is escaped
here; the charts come in as SVG made by :mod:`streams.report.charts`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from streams.report.labels import COLUMNS, cst, value_name
from streams.report.sections import Scope, SectionData, parse_utc, region_level

# The page loads nothing: no script, no request; only its own inline styles.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_LEVEL_ZH = {"all regions": "全部区域", "province": "省级", "city": "市级", "county": "县级"}


@dataclass(frozen=True)
class Briefing:
    scope: Scope
    data: Sequence[SectionData]
    generated_at: dt.datetime

    def section(self, key: str) -> SectionData | None:
        return next((d for d in self.data if d.section.key == key), None)


def when(value: dt.datetime, seconds: bool = False) -> str:
    """A time in CST, e.g. ``2026-03-10 16:05``."""
    return cst(value).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _number(value: int | float) -> str:
    if isinstance(value, float):
        if value.is_integer():
            return f"{int(value):,}"
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:,}"


def cell(data: SectionData, column: str, value: Any) -> str:
    """A table cell's HTML (escaped)."""
    if value is None:
        return '<td class="null">—</td>'
    if column in data.section.times:
        try:
            moment = parse_utc(str(value))
        except ValueError:
            return f"<td>{escape(str(value))}</td>"
        shown = cst(moment).strftime("%Y-%m-%d %H:00" if column == "hour"
                                     else "%Y-%m-%d %H:%M:%S")
        return f'<td class="time">{escape(shown)}</td>'
    if isinstance(value, bool):
        return f"<td>{'是 yes' if value else '否 no'}</td>"
    if isinstance(value, int | float):
        return f'<td class="num">{escape(_number(value))}</td>'
    if isinstance(value, list):
        return f"<td>{escape(', '.join(str(v) for v in value))}</td>"
    zh = value_name(data.section.key, column, value)
    code = escape(str(value))
    if zh:
        return f'<td>{escape(zh)} <span class="code">{code}</span></td>'
    return f"<td>{code}</td>"


def heading(column: str, data: SectionData) -> str:
    label = COLUMNS.get(column, column)
    if column in data.section.times:
        label += " (CST)"
    return f"<th>{escape(label)}</th>"


def table(data: SectionData) -> str:
    head = "".join(heading(c, data) for c in data.columns)
    body = "\n".join(
        "<tr>" + "".join(cell(data, c, v) for c, v in zip(data.columns, row, strict=True))
        + "</tr>" for row in data.rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _region_text(scope: Scope) -> str:
    level = region_level(scope.region)
    if not scope.region:
        return f"{_LEVEL_ZH[level]} · all regions"
    return f"{scope.region} · {_LEVEL_ZH[level]} {level}"


def section_html(briefing: Briefing, data: SectionData, chart: str) -> str:
    s = data.section
    parts = [f'<section id="{escape(s.key)}">',
             f"<h2>{escape(s.title_zh)} <span class=\"en\">{escape(s.title)}</span></h2>"]
    if s.about:
        parts.append(f'<p class="about">{escape(s.about)}</p>')
    if briefing.scope.region and not s.regional:
        parts.append('<p class="note">本节不分区域，显示全部区域 · This section is not '
                     'filtered by region: it covers every region.</p>')
    if not data.rows:
        parts.append('<p class="empty">本时段无数据 · No data for this period and region.</p>')
    else:
        if chart:
            parts.append(f'<figure aria-label="{escape(s.title)}">{chart}</figure>')
        parts.append(table(data))
    parts.append("</section>")
    return "\n".join(parts)


def _total(data: SectionData | None, column: str, **where: str) -> float | None:
    if data is None:
        return None
    rows = [r for r in data.dicts() if all(str(r.get(k)) == v for k, v in where.items())]
    return float(sum(r[column] or 0 for r in rows))


def _tile(label: str, value: float | None, unit: str = "", detail: str = "",
          alert: bool = False) -> str:
    shown = "—" if value is None else _number(round(value, 1))
    cls = "tile alert" if alert and value else "tile"
    return (f'<div class="{cls}"><div class="label">{escape(label)}</div>'
            f'<div class="value">{escape(shown)}<span class="unit">{escape(unit)}</span></div>'
            f'<div class="detail">{escape(detail)}</div></div>')


def tiles(briefing: Briefing) -> str:
    incidents = briefing.section("incidents")
    late = briefing.section("late_by_province")
    alarms = briefing.section("alarms")
    blind = briefing.section("blind_spots")
    offline = briefing.section("offline_now")
    dead = briefing.section("dead_letters")
    deaths = _total(incidents, "deaths")
    critical = _total(alarms, "alarms", severity="CRITICAL")
    worst = max((r["worst_minutes_late"] or 0 for r in late.dicts()), default=0) if late else 0
    return '<div class="tiles">' + "".join([
        _tile("事故灾害 incidents", _total(incidents, "incidents"),
              detail=f"死亡 deaths {_number(deaths or 0)}", alert=bool(deaths)),
        _tile("迟报 late reports", _total(late, "late_reports"),
              detail=f"最长 worst {_number(worst)} min", alert=True),
        _tile("报警 alarms", _total(alarms, "alarms"),
              detail=f"严重 critical {_number(critical or 0)}", alert=bool(critical)),
        _tile("监测空白 blind spots", _total(blind, "blind_spot_hours"), unit=" h",
              detail=f"当前离线网关 offline now {len(offline.rows) if offline else 0}"),
        _tile("死信 dead letters", _total(dead, "messages"), detail="全部区域 all regions"
              if briefing.scope.region else ""),
    ]) + "</div>"


STYLE = """
:root { color-scheme: light; }
body { margin: 0; background: #f4f6f8; color: #263238;
  font: 14px/1.5 "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
  "PingFang SC", "Microsoft YaHei", "DejaVu Sans", sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 40px; }
header { background: #263238; color: #fff; padding: 22px 28px; }
header .inner { max-width: 1120px; margin: 0 auto; }
h1 { margin: 0 0 6px; font-size: 24px; font-weight: 700; }
h1 .en, h2 .en { font-weight: 400; opacity: .75; font-size: .72em; margin-left: .4em; }
.meta { margin: 0; font-size: 13.5px; opacity: .9; }
.meta b { font-weight: 600; }
.tiles { display: grid; grid-template-columns: repeat(5, 1fr); gap: 12px; margin: 0 0 22px; }
.tile { background: #fff; border-radius: 6px; padding: 12px 14px; border-top: 4px solid #78909c;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.tile.alert { border-top-color: #c62828; }
.tile .label { font-size: 12.5px; color: #546e7a; }
.tile .value { font-size: 26px; font-weight: 700; }
.tile .unit { font-size: 14px; font-weight: 400; }
.tile .detail { font-size: 12px; color: #607d8b; }
section { background: #fff; border-radius: 6px; padding: 16px 20px 18px; margin: 0 0 18px;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
h2 { margin: 0 0 4px; font-size: 17px; border-left: 4px solid #1565c0; padding-left: 8px; }
.about, .note { margin: 2px 0 8px; color: #607d8b; font-size: 12.5px; }
.note { color: #8d6e63; }
.empty { margin: 10px 0 2px; padding: 14px; background: #f5f7f8; border: 1px dashed #b0bec5;
  border-radius: 4px; color: #607d8b; text-align: center; }
figure { margin: 6px 0 10px; }
svg.chart { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th { text-align: left; background: #eceff1; color: #37474f; font-weight: 600; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e0e6ea; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.time { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.null { color: #b0bec5; }
.code { color: #78909c; font-size: 11px; }
footer { color: #78909c; font-size: 12px; margin-top: 8px; }
@media print { body { background: #fff; } section, .tile { box-shadow: none; } }
"""


def page(briefing: Briefing, charts: Mapping[str, str]) -> str:
    """The whole page. ``charts``: section key -> inline SVG (sections without one get a
    table only)."""
    scope = briefing.scope
    period = (f"{when(scope.since)} 至 {when(scope.until)} 北京时间 "
              f"(CST, UTC+8)")
    body = "\n".join(section_html(briefing, d, charts.get(d.section.key, ""))
                     for d in briefing.data)
    title = f"应急基础信息日报 · {_region_text(scope)} · {when(scope.until)} CST"
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>{escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<header><div class="inner">
<h1>应急基础信息日报<span class="en">Emergency basic information · daily briefing</span></h1>
<p class="meta"><b>区域 Region</b> {escape(_region_text(scope))} &nbsp;·&nbsp;
<b>时段 Period</b> {escape(period)}</p>
<p class="meta">所有时间均为北京时间 · All times are China Standard Time (CST, UTC+8).
生成 Generated {escape(when(briefing.generated_at))} CST</p>
</div></header>
<main>
{tiles(briefing)}
{body}
<footer>ebi report --html · 数据来自 ClickHouse 分析视图（已去重）· from the deduplicated
ClickHouse analyst views (docs/analysts.md).</footer>
</main>
</body>
</html>
"""
