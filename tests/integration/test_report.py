"""``ebi report`` (text and ``--html``) on both backends, over rows in every table it reads,
and the briefing in a real headless Chromium.

The rows go in through a thin helper owned here: it reads the table's columns from
``system.columns`` and inserts through the backend's columnar ``insert`` (times as the column
wants them: milliseconds for ``DateTime64``, seconds plus ``<name>_ms`` on 18.16), so it does
not depend on the sink's encoder. The rows are what the worker writes: two Beijing counties
(110101, 110102) and one Hebei county (130102), inside a fixed 24-hour range, plus rows just
before it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sinks.clickhouse import Backend, connect
from sinks.clickhouse.migrations import migrate
from tests.integration.conftest import RUN_ID

pytestmark = pytest.mark.integration

UNTIL = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
SINCE = UNTIL - dt.timedelta(hours=24)
CST = dt.timezone(dt.timedelta(hours=8))
CHROMIUM = "/usr/bin/chromium"


def at(hours_before_until: float) -> dt.datetime:
    return UNTIL - dt.timedelta(hours=hours_before_until)


# -- putting rows in ---------------------------------------------------------------------

def insert(backend: Backend, table: str, rows: list[dict[str, Any]]) -> None:
    """Insert rows (column -> value; datetimes for time columns) into ``table``."""
    types = dict(backend.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
        f"AND table = '{table}'").rows)
    assert types, f"no table {table}"
    columns: dict[str, list[Any]] = {}
    for row in rows:
        assert set(row) == set(rows[0]), f"{table}: rows with different columns"
        for name, value in row.items():
            ch_type = re.sub(r"^(LowCardinality\()?(Nullable\()?", "", types[name])
            if ch_type.startswith("DateTime64"):
                value = None if value is None else int(value.timestamp() * 1000)
            elif ch_type.startswith("DateTime"):
                millis = None if value is None else int(value.timestamp() * 1000)
                value = None if millis is None else millis // 1000
                if f"{name}_ms" in types:
                    columns.setdefault(f"{name}_ms", []).append(
                        None if millis is None else millis % 1000)
            elif isinstance(value, bool):
                value = int(value)
            columns.setdefault(name, []).append(value)
    columns["_version"] = [1] * len(rows)
    backend.insert(table, columns, {n: types[n] for n in columns})


def report(incident_id: str, n: int, region: str, kind: str, level: str, reported: float,
           deaths: int, late_minutes: float = 0, stage: str = "INITIAL",
           missing: int = 0) -> dict[str, Any]:
    reported_at = at(reported)
    received_at = reported_at + dt.timedelta(minutes=2)
    deadline = received_at - dt.timedelta(minutes=late_minutes) if late_minutes else (
        reported_at + dt.timedelta(hours=1))
    return {
        "source_topic": "ebi.incidents", "source_partition": 0, "source_offset": n,
        "incident_id": incident_id, "report_id": f"{incident_id}-r{n}", "stage": stage,
        "kind": kind, "industry": "hazardous chemicals" if kind == "PRODUCTION_SAFETY" else None,
        "disaster_category": "FLOOD_DROUGHT" if kind == "NATURAL_DISASTER" else None,
        "occurred_at": reported_at - dt.timedelta(minutes=50), "reported_at": reported_at,
        "reporting_unit": f"应急管理局 {region}", "reporting_level": "COUNTY",
        "region_code": region, "declared_level": level, "deaths": deaths, "missing": missing,
        "serious_injuries": 1, "received_at": received_at, "implied_level": level,
        "deadline_at": deadline, "late": bool(late_minutes),
        "late_by_ms": int(late_minutes * 60_000), "flags": ["LATE"] if late_minutes else [],
    }


def alert(n: int, region: str, enterprise: str, hours: float, alert_type: str,
          severity: str) -> dict[str, Any]:
    return {
        "alert_id": f"al-{n}", "alert_type": alert_type, "severity": severity,
        "subject_type": "sensor", "subject_id": f"s-{enterprise}-00",
        "enterprise_id": enterprise, "region_code": region, "raised_at": at(hours),
        "event_time": at(hours), "value": 1.6, "threshold": 1.0,
        "message": "甲烷浓度超过一级报警值",
    }


def gateway(gw: str, enterprise: str, region: str, status: str, hours: float,
            offline_seconds: int = 0) -> dict[str, Any]:
    return {"gateway_id": gw, "enterprise_id": enterprise, "region_code": region,
            "status": status, "changed_at": at(hours),
            "last_seen_at": at(hours) - dt.timedelta(seconds=offline_seconds or 90),
            "offline_seconds": offline_seconds}


def reading(n: int, enterprise: str, region: str, hours: float, late: bool,
            anomalies: list[str]) -> dict[str, Any]:
    return {
        "source_topic": "ebi.telemetry", "source_partition": 0, "source_offset": 100 + n,
        "gateway_id": f"gw-{enterprise[-4:]}", "enterprise_id": enterprise,
        "region_code": region, "sent_at": at(hours), "received_at": at(hours),
        "sequence": n, "reading_id": f"rd-{n}", "sensor_id": f"s-{enterprise}-{n % 2:02d}",
        "metric": "METHANE", "value": 1.2 if anomalies else 0.4, "unit": "PERCENT_VOL",
        "quality": "GOOD", "event_time": at(hours), "arrival_lag_ms": 95_000 if late else 300,
        "late": late, "alarm_level": 1 if anomalies else 0, "anomalies": anomalies,
    }


def dead_letter(n: int, stage: str, code: str, hours: float) -> dict[str, Any]:
    return {"source_topic": "ebi.telemetry", "source_partition": 1, "source_offset": n,
            "value": "\x00\x00", "error_code": code, "error_message": f"{code}: bad input",
            "stage": stage, "failed_at": at(hours)}


def load_rows(backend: Backend) -> None:
    bj, xc, hb = "110101", "110102", "130102"
    insert(backend, "incident_reports_raw", [
        report("inc-bj-1", 1, bj, "PRODUCTION_SAFETY", "RELATIVELY_SERIOUS", 10, 2,
               late_minutes=25),
        report("inc-bj-1", 2, bj, "PRODUCTION_SAFETY", "RELATIVELY_SERIOUS", 6, 3,
               stage="FOLLOW_UP"),
        report("inc-xc-1", 3, xc, "NATURAL_DISASTER", "ORDINARY", 4, 0, missing=1),
        report("inc-hb-1", 4, hb, "PRODUCTION_SAFETY", "SERIOUS", 8, 11, late_minutes=90),
        report("inc-old", 5, bj, "PRODUCTION_SAFETY", "ORDINARY", 30, 1, late_minutes=15),
    ])
    insert(backend, "alerts_raw", [
        alert(1, bj, "ent-0001", 5, "ALARM_L1", "WARNING"),
        alert(2, bj, "ent-0001", 4.5, "ALARM_L1", "WARNING"),
        alert(3, bj, "ent-0001", 3, "ALARM_L1", "WARNING"),
        alert(4, bj, "ent-0001", 2.5, "ALARM_L2", "CRITICAL"),
        alert(5, xc, "ent-0002", 2, "GATEWAY_ONLINE", "INFO"),
        alert(6, hb, "ent-0007", 1, "ALARM_L2", "CRITICAL"),
        alert(7, hb, "ent-0007", 0.5, "ALARM_L2", "CRITICAL"),
        alert(8, bj, "ent-0001", 26, "ALARM_L1", "WARNING"),
    ])
    insert(backend, "gateway_status_raw", [
        gateway("gw-0001", "ent-0001", bj, "OFFLINE", 9),
        gateway("gw-0001", "ent-0001", bj, "ONLINE", 7, offline_seconds=7200),
        gateway("gw-0002", "ent-0002", xc, "OFFLINE", 12),
        gateway("gw-0002", "ent-0002", xc, "ONLINE", 11.5, offline_seconds=1800),
        gateway("gw-0007", "ent-0007", hb, "OFFLINE", 3),
    ])
    insert(backend, "readings_raw", [
        *(reading(i, "ent-0001", bj, 6 - i * 0.1, late=i < 2,
                  anomalies=["ALARM_L1"] if i == 3 else []) for i in range(6)),
        *(reading(10 + i, "ent-0007", hb, 2 - i * 0.1, late=i == 0,
                  anomalies=["SPIKE"] if i == 1 else []) for i in range(3)),
    ])
    insert(backend, "dead_letters_raw", [
        dead_letter(1, "decode", "TRUNCATED_AVRO", 7),
        dead_letter(2, "decode", "TRUNCATED_AVRO", 6),
        dead_letter(3, "decode", "TRUNCATED_AVRO", 5),
        dead_letter(4, "validate", "BAD_REGION_CODE", 2),
        dead_letter(5, "decode", "UNKNOWN_SCHEMA_ID", 30),
    ])


def _with_database(url: str, database: str) -> str:
    if url.startswith("chdb://"):
        return f"{url.split('?', 1)[0]}?database={database}"
    return f"{url.rsplit('/', 1)[0]}/{database}"


@pytest.fixture(scope="module")
def report_url(clickhouse_url: str) -> Iterator[str]:
    """A fresh, migrated database holding the rows (closed again: chdb is one process)."""
    url = _with_database(clickhouse_url, f"report_{RUN_ID}")
    backend = connect(url, create_database=True)
    try:
        migrate(backend)
        load_rows(backend)
    finally:
        backend.close()
    yield url


# -- running `ebi report` ------------------------------------------------------------------

def ebi_report(url: str, tmp: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBI_")}
    env.update({"EBI_CLICKHOUSE_URL": url, "EBI_DATA_DIR": str(tmp)})
    done = subprocess.run(
        [sys.executable, "-m", "streams", "report", "--since", SINCE.isoformat(),
         "--until", UNTIL.isoformat(), *args],
        env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"ebi report {args} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


def json_sections(out: str) -> dict[str, list[dict[str, Any]]]:
    found = re.findall(r"^== (.+?)\n(.*?)$", out, re.M)
    return {title.removesuffix(" (all regions)"): json.loads(body) for title, body in found}


def test_text_report_all_regions(report_url: str, tmp_path: Path) -> None:
    got = json_sections(ebi_report(report_url, tmp_path, "--format", "json"))
    incidents = {(r["declared_level"], r["kind"]): (r["incidents"], r["deaths"])
                 for r in got["Incidents by level and kind"]}
    assert incidents == {("SERIOUS", "PRODUCTION_SAFETY"): (1, 11),
                         ("RELATIVELY_SERIOUS", "PRODUCTION_SAFETY"): (1, 3),
                         ("ORDINARY", "NATURAL_DISASTER"): (1, 0)}
    late = got["Late incident reports (worst 50)"]
    assert [(r["report_id"], r["minutes_late"]) for r in late] == [
        ("inc-hb-1-r4", 90.0), ("inc-bj-1-r1", 25.0)]
    alarms = got["Alarms by hour and severity"]
    assert sum(r["alarms"] for r in alarms) == 7
    assert sum(r["alarms"] for r in alarms if r["severity"] == "CRITICAL") == 3
    blind = {r["enterprise_id"]: (r["closed_hours"], r["open_hours"])
             for r in got["Blind-spot hours by enterprise (top 20)"]}
    assert blind == {"ent-0001": (2.0, 0.0), "ent-0002": (0.5, 0.0), "ent-0007": (0.0, 3.0)}
    assert [r["gateway_id"] for r in got["Gateways offline now"]] == ["gw-0007"]
    dead = {(r["stage"], r["error_code"]): r["messages"] for r in got["Dead letters by reason"]}
    assert dead == {("decode", "TRUNCATED_AVRO"): 3, ("validate", "BAD_REGION_CODE"): 1}
    assert {r["anomaly"] for r in got["Anomalies by type"]} == {"ALARM_L1", "SPIKE"}
    assert sum(r["late_readings"]
               for r in got["Late telemetry readings by enterprise (top 20)"]) == 3


def test_text_report_region_filter(report_url: str, tmp_path: Path) -> None:
    got = json_sections(ebi_report(report_url, tmp_path, "--format", "json",
                                   "--region", "110000"))
    assert {r["declared_level"] for r in got["Incidents by level and kind"]} == {
        "RELATIVELY_SERIOUS", "ORDINARY"}
    assert [r["report_id"] for r in got["Late incident reports (worst 50)"]] == ["inc-bj-1-r1"]
    assert sum(r["alarms"] for r in got["Alarms by hour and severity"]) == 5
    assert {r["enterprise_id"] for r in got["Blind-spot hours by enterprise (top 20)"]} == {
        "ent-0001", "ent-0002"}
    assert got["Gateways offline now"] == []
    assert {r["anomaly"] for r in got["Anomalies by type"]} == {"ALARM_L1"}
    # dead letters carry no region: the section says so and still counts them
    assert sum(r["messages"] for r in got["Dead letters by reason"]) == 4
    county = json_sections(ebi_report(report_url, tmp_path, "--format", "json",
                                      "--region", "110102"))
    assert [r["kind"] for r in county["Incidents by level and kind"]] == ["NATURAL_DISASTER"]
    assert county["Late incident reports (worst 50)"] == []


def test_table_format_header(report_url: str, tmp_path: Path) -> None:
    out = ebi_report(report_url, tmp_path, "--region", "13")
    assert out.startswith(f"ebi report {SINCE:%Y-%m-%d %H:%M:%S} .. "
                          f"{UNTIL:%Y-%m-%d %H:%M:%S} UTC region 13\n")
    assert "\n== Dead letters by reason (all regions)\n" in out
    assert "inc-hb-1-r4" in out and "inc-bj-1" not in out


def test_html_briefing(report_url: str, tmp_path: Path) -> None:
    page = tmp_path / "briefing.html"
    out = ebi_report(report_url, tmp_path, "--html", str(page), "--region", "11")
    assert str(page) in out
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "inc-bj-1-r1" in text and "inc-hb-1" not in text and "ent-0007" not in text
    # times in CST with the zone shown: the late report was filed 10 hours before UNTIL
    filed = (at(10)).astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")
    assert filed in text and "UTC+8" in text
    assert text.count("<svg") >= 5
    offline = re.search(r'<section id="offline_now">.*?</section>', text, re.S)
    assert offline is not None and "No data for this period" in offline.group(0)
    assert_self_contained(text)


def assert_self_contained(text: str) -> None:
    """No script, and nothing the browser would fetch: no http(s) URL, no src, no link."""
    assert re.search(r"https?://", text) is None, re.findall(r".{40}https?://.{40}", text)[:3]
    for pattern in (r"<script", r"<link\b", r"\bsrc=", r"@import", r"<iframe", r"<img\b"):
        assert re.search(pattern, text, re.I) is None, pattern


# -- the page in a real browser ------------------------------------------------------------

def wait_for_chromium(timeout: float = 600.0) -> str:
    """Chromium may still be being installed by apt when the tests start."""
    deadline = time.monotonic() + timeout
    while not (os.access(CHROMIUM, os.X_OK) and shutil.which("chromium")):
        if time.monotonic() > deadline:
            pytest.fail(f"{CHROMIUM} missing: install Debian's chromium "
                        "(deploy/system-deps.sh)", pytrace=False)
        time.sleep(5)
    return CHROMIUM


def screenshot(html: Path, png: Path, profile: Path, height: int = 2000) -> list[str]:
    """Render ``html`` to ``png``; returns the URLs the page itself asked for (from
    Chromium's net log: requests the page starts have the file's opaque origin "null" as
    initiator, Chromium's own background requests have "not an origin"). No host resolves,
    so nothing leaves the machine either way."""
    netlog = profile.parent / f"{png.stem}-netlog.json"
    proc = subprocess.Popen(
        [wait_for_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND",
         f"--user-data-dir={profile}", f"--log-net-log={netlog}",
         f"--screenshot={png}", f"--window-size=1280,{height}", html.as_uri()],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"chromium did not finish in 120 s:\n{out[-2000:]}")
    finally:
        with contextlib.suppress(ProcessLookupError):   # its helpers, if any are left
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0 and png.exists(), f"chromium exited {proc.returncode}:\n{out}"
    return page_requests(netlog)


def page_requests(netlog: Path) -> list[str]:
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    jobs = [e["params"] for e in log["events"]
            if e["type"] == start and "url" in e.get("params", {})]
    return [str(p["url"]) for p in jobs if p.get("initiator") != "not an origin"
            and not str(p["url"]).startswith("file:")]


def _near(rgb: tuple[int, int, int], hex_colour: str, tolerance: int = 18) -> bool:
    want = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return all(abs(a - b) <= tolerance for a, b in zip(rgb, want, strict=True))


def test_briefing_in_chromium(report_url: str, tmp_path: Path) -> None:
    from PIL import Image  # matplotlib's own dependency

    page = tmp_path / "briefing.html"
    ebi_report(report_url, tmp_path, "--html", str(page))
    assert_self_contained(page.read_text(encoding="utf-8"))
    png = tmp_path / "briefing.png"
    requested = screenshot(page, png, tmp_path / "chromium-profile")
    assert requested == [], f"the page asked the network for {requested}"
    keep = os.environ.get("EBI_REPORT_SCREENSHOT")
    if keep:
        shutil.copy(png, keep)
    image = Image.open(png).convert("RGB")
    assert image.size == (1280, 2000)
    colours = image.getcolors(maxcolors=1280 * 2000) or []   # [(pixels, (r, g, b))]
    assert len(colours) > 200, f"only {len(colours)} colours: a blank or broken page"
    top_share = max(n for n, _ in colours) / (1280 * 2000)
    assert top_share < 0.8, f"one colour covers {top_share:.0%} of the page"
    # the header band, the charts' level and severity colours
    for name, colour, least in (("header", "#263238", 20_000),
                                ("red bars (serious, critical)", "#c62828", 400),
                                ("orange bars (warning)", "#ef6c00", 400),
                                ("yellow bars (relatively serious)", "#f9a825", 400),
                                ("blue bars (ordinary)", "#1565c0", 400)):
        found = sum(n for n, rgb in colours if _near(rgb, colour))
        assert found >= least, f"{name}: {found} pixels of {colour} (want {least}+)"
