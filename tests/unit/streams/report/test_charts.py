from __future__ import annotations

import re

import pytest

from streams.report import charts
from tests.unit.streams.report.fixtures import data, scope


def test_every_chart_renders_as_inline_svg() -> None:
    got = charts.render(data(), scope())
    assert set(got) == {"incidents", "late_reports", "alarms", "blind_spots", "anomalies",
                        "dead_letters"}
    for key, svg in got.items():
        assert svg.startswith('<svg class="chart" role="img"'), key
        assert svg.rstrip().endswith("</svg>"), key
        assert "viewBox" in svg and "<path" in svg, key
        # nothing the page would fetch, no prolog or comments (they could carry text)
        assert re.search(r"https?://|<\?xml|<!DOCTYPE|<!--|<script", svg) is None, key


def test_ids_are_unique_across_charts() -> None:
    got = charts.render(data(), scope())
    ids = [i for svg in got.values() for i in re.findall(r'\bid="([^"]+)"', svg)]
    assert len(ids) == len(set(ids)) > 0
    for key, svg in got.items():
        for ref in re.findall(r'(?:url\(#|href="#)([^)"]+)', svg):
            assert ref.startswith(f"chart-{key}-"), (key, ref)
            assert f'id="{ref}"' in svg, (key, ref)


def test_no_rows_no_chart() -> None:
    assert charts.render(data(incidents=[], alarms=[]), scope()).keys().isdisjoint(
        {"incidents", "alarms"})
    assert charts.render(data(**{k: [] for k in charts.CHARTS}), scope()) == {}


def test_database_text_is_not_mathtext() -> None:
    """A '$' pair would start matplotlib's mathtext (and bad mathtext raises)."""
    odd = [("ent-$\\frac{1}{$", "110101", 1, 1, 1.0, 0.0, 1.0),
           ("<b>&amp;</b>", "110101", 1, 1, 1.0, 0.0, 1.0)]
    got = charts.render(data(blind_spots=odd), scope())
    assert "<b>" not in got["blind_spots"]
    assert charts.text("a$b$c") == r"a\$b\$c"


def test_labels_fall_back_to_english_without_a_cjk_font(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = charts._hbar

    def spy(labels, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.extend(labels)
        return real(labels, *args, **kwargs)

    monkeypatch.setattr(charts, "_hbar", spy)
    monkeypatch.setattr(charts, "cjk_family", lambda: None)
    charts.render(data(), scope())
    assert "SERIOUS · PRODUCTION_SAFETY" in seen
    assert not any(re.search(r"[\u4e00-\u9fff]", label) for label in seen)
    seen.clear()
    monkeypatch.setattr(charts, "cjk_family", lambda: "Noto Sans CJK SC")
    charts.render(data(), scope())
    assert "重大 · 生产安全事故" in seen


def test_alarm_hours_cover_the_range() -> None:
    hours = charts._hours(scope())
    assert len(hours) == 24 and hours[0] == scope().since
