from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from streams.report.html import Briefing, page
from tests.unit.streams.report.fixtures import NOW, data, scope

EVIL = '<script>alert("x")</script> & "quoted" \'single\''
FAKE_CHART = '<svg class="chart" role="img"><path d="M0 0"/></svg>'


def build(region: str = "", charts: dict[str, str] | None = None,
          **rows: list[tuple[Any, ...]]) -> str:
    return page(Briefing(scope(region), data(region, **rows), NOW), charts or {})


def sections_of(text: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([a-z_]+)">(.*?)</section>', text, re.S))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def parsed(text: str) -> _Tags:
    tags = _Tags()
    tags.feed(text)
    return tags


def test_values_from_the_database_are_escaped() -> None:
    text = build(blind_spots=[(EVIL, "110101", 1, 1, 1.0, 0.0, 1.0)],
                 dead_letters=[("decode", "</td></tr></table><img src=x>", 2)])
    assert "<script" not in text and "<img" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quoted&quot; " \
           "&#x27;single&#x27;" in text
    tags = parsed(text)
    assert "script" not in tags.tags and "img" not in tags.tags
    assert any(EVIL in t for t in tags.texts)        # shown to the reader as text


def test_empty_sections_say_so() -> None:
    got = sections_of(build(incidents=[], alarms=[]))
    for key in ("incidents", "alarms", "offline_now"):
        assert "No data for this period" in got[key] and "<table" not in got[key], key
    assert "<table" in got["late_reports"] and "No data" not in got["late_reports"]


def test_a_page_with_no_rows_at_all() -> None:
    empty = {key: [] for key in sections_of(build())}
    text = build(**empty)
    assert text.count("No data for this period") == len(empty) == 12
    assert "<svg" not in text


def test_times_are_cst_with_the_zone_shown() -> None:
    text = build()
    late = sections_of(text)["late_reports"]
    # reported 01:30 UTC -> 09:30 CST; received 01:32:00.250 UTC -> 09:32:00 CST
    assert "2026-03-10 09:30:00" in late and "2026-03-10 09:32:00" in late
    assert "01:30:00" not in late
    assert "填报时间 reported (CST)" in late
    assert '<td class="null">—</td>' in late              # no deadline
    alarms = sections_of(text)["alarms"]
    assert "2026-03-10 09:00" in alarms and "2026-03-10 17:00" in alarms
    # the period: 2026-03-09 16:00 UTC .. 2026-03-10 16:00 UTC
    assert "2026-03-10 00:00 至 2026-03-11 00:00 北京时间 (CST, UTC+8)" in text
    assert "Generated 2026-03-11 00:05 CST" in text


def test_codes_get_their_chinese_names() -> None:
    got = sections_of(build())
    assert '重大 <span class="code">SERIOUS</span>' in got["incidents"]
    assert '自然灾害 <span class="code">NATURAL_DISASTER</span>' in got["incidents"]
    assert '初报 <span class="code">INITIAL</span>' in got["late_reports"]
    assert '解码 <span class="code">decode</span>' in got["dead_letters"]
    assert '严重 <span class="code">CRITICAL</span>' in got["alarms"]


def test_numbers() -> None:
    got = sections_of(build())
    assert '<td class="num">42.5</td>' in got["late_reports"]
    assert '<td class="num">95,000</td>' in got["late_readings"]
    assert '<td class="num">2.5</td>' in got["blind_spots"]


def test_region_and_sections_without_one() -> None:
    text = build("11")
    assert "11 · 省级 province" in text
    got = sections_of(text)
    assert "not filtered by region" in got["dead_letters"]
    assert "not filtered by region" not in got["incidents"]
    assert "全部区域 · all regions" in build()
    assert "not filtered by region" not in build()


def test_tiles_sum_the_sections() -> None:
    tiles = build().split('<div class="tiles">', 1)[1].split("</div></div>")
    text = " ".join(tiles)
    assert '事故灾害 incidents</div><div class="value">3' in text
    assert "死亡 deaths 11" in text
    assert '报警 alarms</div><div class="value">6' in text and "严重 critical 1" in text
    assert '监测空白 blind spots</div><div class="value">5.5<span class="unit"> h' in text
    assert "当前离线网关 offline now 0" in text


def test_charts_go_where_their_section_has_rows() -> None:
    charts = {"incidents": FAKE_CHART, "alarms": FAKE_CHART}
    got = sections_of(build(charts=charts, alarms=[]))
    assert FAKE_CHART in got["incidents"] and "<figure" in got["incidents"]
    assert "<svg" not in got["alarms"]            # no rows: the no-data state, no chart


def test_self_contained() -> None:
    text = build()
    assert text.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in text
    assert "default-src 'none'" in text
    assert re.search(r"https?://|<script|<link|\bsrc=|@import", text) is None
