"""Reading files and validating them as ``ebi publish`` does (streams.cli.publish.prepare)."""

import json
from pathlib import Path

from streams.cli.publish import prepare
from streams.policy import load_policy
from streams.records.reader import read_rows

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"
NOW = 1_767_400_000_000
POLICY = load_policy()


def test_examples_are_valid() -> None:
    incidents = prepare(EXAMPLES / "incidents.jsonl", "incident", POLICY, NOW)
    assert incidents.rejects == [] and len(incidents.messages) == 3
    telemetry = prepare(EXAMPLES / "telemetry.csv", "telemetry", POLICY, NOW, batch_size=3)
    assert telemetry.rejects == []
    sizes = [(env["gateway_id"], len(env["readings"])) for env, _ in telemetry.messages]
    assert sizes == [("gw-0001-01", 3), ("gw-0001-01", 1), ("gw-0002-01", 2)]
    env = telemetry.messages[0][0]
    assert env["sent_at"] == NOW and env["enterprise_id"] == "ent-110101-0001"
    assert env["readings"][0]["event_time"] == 1767225600000


def test_json_array_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_text('[\n {"enterprise_id": "e1", "name": "A", "region_code": "110101",\n'
                    '  "industry": "coal mining", "updated_at": 1767225600000},\n'
                    ' {"enterprise_id": "e2", "name": "B", "region_code": "990101",\n'
                    '  "industry": "coal mining", "updated_at": 1767225600000}\n]\n')
    rows = list(read_rows(path))
    assert [r.line for r in rows] == [2, 4]
    result = prepare(path, "enterprise", POLICY, NOW)
    assert [(r.line, r.errors[0].code) for r in result.rejects] == [(4, "BAD_REGION_CODE")]


def test_bad_input_gets_specific_errors(tmp_path: Path) -> None:
    good = json.loads((EXAMPLES / "incidents.jsonl").read_text().splitlines()[0])
    lines = [
        json.dumps(good),
        json.dumps({**good, "deaths": "three"}),
        json.dumps({k: v for k, v in good.items() if k != "reporting_unit"}),
        json.dumps({**good, "kind": "ACCIDENT"}),
        json.dumps({**good, "occurred_at": "last tuesday"}),
        "{not json",
    ]
    path = tmp_path / "in.jsonl"
    data = ("\n".join(lines) + "\n").encode() + \
        json.dumps({**good, "description": "X"}).encode().replace(b'"X"', b'"\xff\xfe"') + b"\n"
    path.write_bytes(data)
    result = prepare(path, "incident", POLICY, NOW)
    got = [(r.line, [(e.field, e.code) for e in r.errors]) for r in result.rejects]
    assert got == [
        (2, [("deaths", "WRONG_TYPE")]),
        (3, [("reporting_unit", "MISSING_FIELD")]),
        (4, [("kind", "UNKNOWN_SYMBOL")]),
        (5, [("occurred_at", "BAD_TIMESTAMP")]),
        (6, [("", "WRONG_TYPE")]),
        (7, [("description", "INVALID_UTF8")]),
    ]
    assert len(result.messages) == 1


def test_oversize_and_rules(tmp_path: Path) -> None:
    good = json.loads((EXAMPLES / "incidents.jsonl").read_text().splitlines()[0])
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({**good, "description": "x" * 5000}) + "\n" +
                    json.dumps({**good, "deaths": -2}) + "\n")
    result = prepare(path, "incident", POLICY, NOW, max_bytes=2000)
    assert [(r.line, r.errors[0].code) for r in result.rejects] == [
        (1, "OVERSIZE"), (2, "NEGATIVE_FIGURE")]
    assert prepare(path, "incident", None, NOW).rejects == []


def test_csv_reading_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    text = (EXAMPLES / "telemetry.csv").read_text().splitlines()
    text[2] = text[2].replace("CARBON_MONOXIDE,4.5", "CARBON_MONOXIDE,abc")
    text[3] = text[3].replace("CELSIUS", "KELVIN")
    text[4] = text[4].replace("0.22", "140")
    text[5] = text[5].replace("2026-01-01T00:00:05Z", "2026-01-01 00:00:05")
    path.write_text("\n".join(text) + "\n")
    result = prepare(path, "telemetry", POLICY, NOW)
    got = [(r.line, r.errors[0].field, r.errors[0].code) for r in result.rejects]
    assert got == [(3, "value", "WRONG_TYPE"), (4, "unit", "UNKNOWN_SYMBOL"),
                   (5, "value", "OUT_OF_RANGE"), (6, "event_time", "BAD_TIMESTAMP")]
    assert sum(len(env["readings"]) for env, _ in result.messages) == 2
