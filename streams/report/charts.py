"""The briefing's charts: matplotlib figures as SVG strings to inline in the page.

Text is drawn as paths (``svg.fonttype = path``), so a chart needs no font when the page is
opened; Chinese labels need a CJK font when it is drawn (Debian: ``fonts-noto-cjk``). Without
one, the labels fall back to English and :func:`cjk_family` logs a warning. The
figures are built with ``matplotlib.figure.Figure`` (no pyplot, no global figure state) inside
an ``rc_context``; ids inside each SVG get the chart's own prefix so several can share a page.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from streams.report.labels import (
    CST,
    DEAD_LETTER_STAGES,
    KINDS,
    LEVEL_COLOURS,
    LEVELS,
    SEVERITIES,
    SEVERITY_COLOURS,
)
from streams.report.sections import Scope, SectionData, parse_utc

log = logging.getLogger(__name__)

# Tried in this order: Debian's fonts-noto-cjk, then the WenQuanYi fonts.
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei",
                "WenQuanYi Micro Hei", "Source Han Sans SC", "Droid Sans Fallback")
_CJK_FILES = re.compile(r"cjk|wqy|wenquanyi|sourcehan|droidsansfallback", re.I)
TOP = 15            # bars in a ranking chart
ACCENT = "#37474f"


def cjk_family() -> str | None:
    """The CJK font family matplotlib will use, or None (labels then fall back to English).
    Fonts installed after matplotlib built its font cache are added from fontconfig's list."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    found = _first_cjk({f.name for f in manager.ttflist})
    if found is None:
        known = {f.fname for f in manager.ttflist}
        for path in font_manager.findSystemFonts():
            if _CJK_FILES.search(path) and path not in known:
                try:
                    manager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        found = _first_cjk({f.name for f in manager.ttflist})
    if found is None:
        log.warning("no CJK font for the report's charts (tried %s): chart labels are in "
                    "English only; install one, e.g. Debian's fonts-noto-cjk",
                    ", ".join(CJK_FAMILIES))
    return found


def _first_cjk(names: set[str]) -> str | None:
    return next((f for f in CJK_FAMILIES if f in names), None)


def text(value: Any) -> str:
    """A database value as plain chart text (``$`` would start matplotlib's mathtext)."""
    return str(value).replace("\\", "\\\\").replace("$", r"\$")


class _Names:
    """Chinese names of codes when a CJK font is there, the codes otherwise."""

    def __init__(self, chinese: bool) -> None:
        self.chinese = chinese

    def __call__(self, table: dict[str, str], code: Any) -> str:
        if self.chinese and str(code) in table:
            return table[str(code)]
        return text(code)

    def pick(self, zh: str, en: str) -> str:
        return f"{zh} {en}" if self.chinese else en


def _figure(rows: int, width: float = 9.0) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, 1.1 + 0.34 * max(rows, 1)), layout="constrained")
    return fig


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.spines["left"].set_color("#90a4ae")
    ax.spines["bottom"].set_color("#90a4ae")
    ax.tick_params(colors="#37474f", labelsize=9)
    ax.grid(axis="x", color="#eceff1", linewidth=0.8)
    ax.set_axisbelow(True)


def _whole_numbers(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _hbar(labels: Sequence[str], stacks: Sequence[tuple[str, Sequence[float], Any]],
          xlabel: str, fmt: str = "{:g}", counts: bool = True) -> Any:
    """Horizontal bars, first label on top; each stack is (legend name, values, colours)."""
    fig = _figure(len(labels))
    ax = fig.add_subplot()
    ys = list(range(len(labels)))[::-1]
    left = [0.0] * len(labels)
    for name, values, colours in stacks:
        ax.barh(ys, values, left=left, color=colours, label=name or None,
                height=0.62 if len(labels) > 2 else 0.45)
        left = [a + float(b) for a, b in zip(left, values, strict=True)]
    for y, total in zip(ys, left, strict=True):
        ax.text(total, y, " " + fmt.format(total), va="center", fontsize=8.5, color=ACCENT)
    ax.set_yticks(ys, labels=list(labels))
    ax.set_xlabel(xlabel, fontsize=9, color=ACCENT)
    ax.set_xlim(0, max([*left, 1.0]) * 1.15)
    if counts:
        _whole_numbers(ax.xaxis)
    _style(ax)
    if sum(1 for name, _, _ in stacks if name) > 1:
        ax.legend(frameon=False, fontsize=8.5, loc="lower right")
    return fig


def incidents(data: SectionData, scope: Scope, names: _Names) -> Any:
    rows = data.dicts()
    labels = [f"{names(LEVELS, r['declared_level'])} · {names(KINDS, r['kind'])}"
              for r in rows]
    colours = [LEVEL_COLOURS.get(str(r["declared_level"]), "#607d8b") for r in rows]
    return _hbar(labels, [("", [r["incidents"] for r in rows], colours)],
                 names.pick("起数", "incidents"))


def late_reports(data: SectionData, scope: Scope, names: _Names) -> Any:
    rows = data.dicts()[:TOP]
    labels = [f"{text(r['report_id'])} ({text(r['region_code'])})" for r in rows]
    colours = [LEVEL_COLOURS.get(str(r["declared_level"]), "#607d8b") for r in rows]
    return _hbar(labels, [("", [r["minutes_late"] for r in rows], colours)],
                 names.pick("迟报分钟", "minutes late"), fmt="{:.0f}", counts=False)


def _hours(scope: Scope) -> list[dt.datetime]:
    start = scope.since.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    while start < scope.until:
        out.append(start)
        start += dt.timedelta(hours=1)
    return out


def alarms(data: SectionData, scope: Scope, names: _Names) -> Any:
    from matplotlib.figure import Figure

    hours = _hours(scope)
    index = {h: i for i, h in enumerate(hours)}
    counts: dict[str, list[float]] = {}
    for r in data.dicts():
        hour = parse_utc(r["hour"])
        if hour in index:
            counts.setdefault(str(r["severity"]), [0.0] * len(hours))[index[hour]] += r["alarms"]
    order = [s for s in SEVERITY_COLOURS if s in counts] + sorted(
        s for s in counts if s not in SEVERITY_COLOURS)
    fig = Figure(figsize=(9.0, 3.4), layout="constrained")
    ax = fig.add_subplot()
    xs = list(range(len(hours)))
    bottom = [0.0] * len(hours)
    for severity in order:
        ax.bar(xs, counts[severity], bottom=bottom, width=0.8,
               color=SEVERITY_COLOURS.get(severity, "#8d6e63"),
               label=names(SEVERITIES, severity))
        bottom = [a + b for a, b in zip(bottom, counts[severity], strict=True)]
    step = max(1, -(-len(hours) // 12))
    ticks = xs[::step]
    local = [hours[i].astimezone(CST) for i in ticks]
    ax.set_xticks(ticks, labels=[t.strftime("%H:00\n%m-%d") if i == 0 or t.hour < step
                                 else t.strftime("%H:00") for i, t in enumerate(local)])
    ax.set_xlim(-0.6, len(hours) - 0.4)
    _whole_numbers(ax.yaxis)
    ax.set_ylabel(names.pick("报警数", "alarms"), fontsize=9, color=ACCENT)
    ax.set_xlabel(names.pick("小时（北京时间 UTC+8）", "hour (CST, UTC+8)"), fontsize=9,
                  color=ACCENT)
    _style(ax)
    ax.grid(axis="x", visible=False)
    ax.grid(axis="y", color="#eceff1", linewidth=0.8)
    ax.legend(frameon=False, fontsize=8.5, ncols=3, loc="upper left")
    return fig


def blind_spots(data: SectionData, scope: Scope, names: _Names) -> Any:
    rows = data.dicts()[:TOP]
    labels = [f"{text(r['enterprise_id'])} ({text(r['region_code'])})" for r in rows]
    return _hbar(labels, [
        (names.pick("已恢复", "ended"), [r["closed_hours"] for r in rows], "#5c6bc0"),
        (names.pick("仍离线", "still offline"), [r["open_hours"] for r in rows], "#c62828"),
    ], names.pick("监测空白小时", "blind-spot hours"), fmt="{:.1f}", counts=False)


def anomalies(data: SectionData, scope: Scope, names: _Names) -> Any:
    rows = data.dicts()[:TOP]
    return _hbar([text(r["anomaly"]) for r in rows],
                 [("", [r["readings"] for r in rows], "#8e24aa")],
                 names.pick("条数", "readings"))


def dead_letters(data: SectionData, scope: Scope, names: _Names) -> Any:
    rows = data.dicts()[:TOP]
    labels = [f"{names(DEAD_LETTER_STAGES, r['stage'])} / {text(r['error_code'])}"
              for r in rows]
    return _hbar(labels, [("", [r["messages"] for r in rows], "#6d4c41")],
                 names.pick("消息数", "messages"))


CHARTS: dict[str, Callable[[SectionData, Scope, _Names], Any]] = {
    "incidents": incidents, "late_reports": late_reports, "alarms": alarms,
    "blind_spots": blind_spots, "anomalies": anomalies, "dead_letters": dead_letters,
}

_PROLOG = re.compile(r"<\?xml.*?\?>|<!DOCTYPE.*?>|<!--.*?-->|<metadata>.*?</metadata>", re.S)
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^)"]+)')
_ROOT = re.compile(r"<svg\b[^>]*>")
_ROOT_ATTRS = re.compile(r'\s(?:width|height|version|xmlns(?::\w+)?)="[^"]*"')


def svg(fig: Any, prefix: str) -> str:
    """A figure as an SVG element to inline (no prolog, comments, metadata or namespace
    declarations; ids prefixed; width from the page, height from the viewBox)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    body = _PROLOG.sub("", buffer.getvalue()).strip()
    body = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', body)
    body = _REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", body)
    # Inline in HTML the root needs neither namespaces nor a fixed size (the page sets it).
    root = _ROOT.search(body)
    if root is None:
        raise ValueError("matplotlib wrote no <svg> element")
    tag = _ROOT_ATTRS.sub("", root.group(0)).replace("<svg", '<svg class="chart" role="img"', 1)
    return body[:root.start()] + tag + body[root.end():]


def render(data: Sequence[SectionData], scope: Scope) -> dict[str, str]:
    """Section key -> inline SVG, for the sections that have a chart and rows."""
    from matplotlib import rc_context

    wanted = [d for d in data if d.section.key in CHARTS and d.rows]
    if not wanted:
        return {}
    family = cjk_family()
    names = _Names(family is not None)
    fonts = ["DejaVu Sans", *([family] if family else [])]
    out: dict[str, str] = {}
    with rc_context({"font.family": fonts, "svg.fonttype": "path",
                     "svg.hashsalt": "ebi-report", "axes.unicode_minus": False}):
        for d in wanted:
            fig = CHARTS[d.section.key](d, scope, names)
            out[d.section.key] = svg(fig, f"chart-{d.section.key}")
    return out
