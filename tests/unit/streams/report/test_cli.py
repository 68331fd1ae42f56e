from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from streams.access import analysts
from streams.cli import report
from streams.settings import Settings
from tests.unit.streams.report.fixtures import CannedBackend


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    report.add(parser)
    return parser.parse_args(argv)


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> CannedBackend:
    canned = CannedBackend()
    monkeypatch.setattr(analysts, "open_reader",
                        lambda settings, command: analysts.Reader(canned, "", None))
    return canned


RANGE = ("--since", "2026-03-09T16:00", "--until", "2026-03-10T16:00")


def test_text_report(backend: CannedBackend, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.run(args(*RANGE, "--format", "json", "--region", "110000"), Settings()) == 0
    out = capsys.readouterr().out
    assert out.startswith("ebi report 2026-03-09 16:00:00 .. 2026-03-10 16:00:00 UTC "
                          "region 11\n")
    assert "\n== Dead letters by reason (all regions)\n" in out
    incidents = out.split("== Incidents by level and kind\n", 1)[1].splitlines()[0]
    assert json.loads(incidents)[0]["deaths"] == 11          # a number, not "11"
    assert all("LIKE '11%'" in q for q in backend.queries if "dead_letters" not in q)
    assert backend.closed


def test_html_report(backend: CannedBackend, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "briefing.html"
    assert report.run(args(*RANGE, "--html", str(page)), Settings()) == 0
    assert f"written to {page}" in capsys.readouterr().out
    text = page.read_text(encoding="utf-8")
    assert text.count("<svg") == 6 and "ent-0001" in text


def test_html_to_a_missing_directory(backend: CannedBackend, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "no" / "such" / "briefing.html"
    assert report.run(args(*RANGE, "--html", str(target)), Settings()) == 1
    err = capsys.readouterr().err
    assert "cannot write the briefing to" in err and str(target) in err


@pytest.mark.parametrize(("argv", "message"), [
    (("--region", "11x"), "not a GB/T 2260 prefix"),
    (("--since", "yesterday"), "bad time"),
    (("--since", "1h", "--until", "2h"), "range is empty"),
])
def test_bad_flags(backend: CannedBackend, capsys: pytest.CaptureFixture[str],
                   argv: tuple[str, ...], message: str) -> None:
    assert report.run(args(*argv), Settings()) == 2
    assert message in capsys.readouterr().err
    assert backend.queries == []


def test_a_region_analysts_report_covers_their_region_only(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    canned = CannedBackend()
    scope = analysts.ScopeInfo("r32", "32", "region 32, personal, trade_secret masked")
    monkeypatch.setattr(analysts, "open_reader",
                        lambda settings, command: analysts.Reader(canned, "analyst_32", scope))
    assert report.run(args(*RANGE), Settings()) == 0
    out = capsys.readouterr().out
    assert " UTC region 32\n" in out and "Dead letters" not in out
    assert canned.queries and all("LIKE '32%'" in q for q in canned.queries)
    assert report.run(args(*RANGE, "--region", "3201"), Settings()) == 0
    assert report.run(args(*RANGE, "--region", "11"), Settings()) == 2
    assert "region 11 is outside your scope (region 32)" in capsys.readouterr().err
