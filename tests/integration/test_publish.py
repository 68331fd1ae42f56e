"""``ebi publish`` against real Kafka and the real registry."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pytest

from schemas.catalog import default_catalog
from schemas.codec import AvroDeserializer, DecodeError, SerializationContext
from streams import clients
from streams.cli import publish
from streams.settings import Settings
from tests.integration.conftest import security_env, unique

CATALOG = default_catalog()
SCHEMAS = CATALOG.schemas

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    publish.add(parser)
    return publish.run(parser.parse_args(list(argv)), settings)


def consume(settings: Settings, topic: str, expected: int,
            errors: list[str] | None = None) -> list[tuple[bytes | None, Any]]:
    full = settings.topic(topic)
    consumer = clients.consumer(settings, unique("pub"), **{"auto.offset.reset": "earliest"})
    consumer.subscribe([full])
    decode = AvroDeserializer(clients.registry(settings))
    ctx = SerializationContext(full, CATALOG.topic(topic).record)
    out: list[tuple[bytes | None, Any]] = []
    deadline = time.monotonic() + 30
    quiet = 0
    while time.monotonic() < deadline and quiet < 2:
        batch = consumer.consume(100, timeout=1.0)
        for m in batch:
            assert m.error() is None
            try:
                out.append((m.key(), decode(m.value(), ctx)[0]))
            except DecodeError as exc:
                if errors is None:
                    raise
                errors.append(exc.code)
        quiet = quiet + 1 if not batch and len(out) >= expected else 0
    consumer.close()
    return out


def test_publish_valid_files(settings: Settings) -> None:
    mine = settings.replace(topic_prefix=unique("pub") + ".")
    assert run(mine, "--type", "incident", str(EXAMPLES / "incidents.jsonl")) == 0
    got = consume(mine, "incidents", 3)
    assert [r["report_id"] for _, r in got if r["incident_id"].startswith("inc-320505")] == [
        "rep-001", "rep-002"]                         # one key, one partition: in order
    assert {k for k, _ in got} == {b"inc-320505-20260101-001", b"inc-510104-20260102-001"}
    assert run(mine, "--type", "telemetry", "--batch-size", "2",
               str(EXAMPLES / "telemetry.csv")) == 0
    envelopes = consume(mine, "telemetry", 3)
    assert sorted(len(r["readings"]) for _, r in envelopes) == [2, 2, 2]
    assert {k for k, _ in envelopes} == {b"gw-0001-01", b"gw-0002-01"}


def test_invalid_file_sends_nothing_or_only_valid(settings: Settings, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    mine = settings.replace(topic_prefix=unique("pubbad") + ".")
    good = [json.loads(line) for line in (EXAMPLES / "incidents.jsonl").read_text().splitlines()]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([json.dumps(good[0]),
                               json.dumps({**good[1], "region_code": "320005"}),
                               json.dumps({**good[2], "declared_level": "MINOR"})]) + "\n")
    assert run(mine, "--type", "incident", str(path)) == 1
    captured = capsys.readouterr()
    assert f"{path}:2: region_code: BAD_REGION_CODE" in captured.err
    assert f"{path}:3: declared_level: UNKNOWN_SYMBOL" in captured.err
    assert "nothing sent" in captured.out
    rejects = tmp_path / "rejects.jsonl"
    assert run(mine, "--type", "incident", "--skip-invalid", "--rejects", str(rejects),
               str(path)) == 1
    assert "1 delivered, 0 failed" in capsys.readouterr().out
    assert [json.loads(line)["line"] for line in rejects.read_text().splitlines()] == [2, 3]
    got = consume(mine, "incidents", 1)
    assert [r["report_id"] for _, r in got] == ["rep-001"]   # the first run sent nothing


def test_simulate_command(settings: Settings, tmp_path: Path) -> None:
    from streams.cli import simulate

    mine = settings.replace(topic_prefix=unique("sim") + ".")
    parser = argparse.ArgumentParser()
    simulate.add(parser)
    truth = tmp_path / "truth.jsonl"
    args = parser.parse_args(["--seed", "5", "--rate", "300", "--duration", "6",
                              "--enterprises", "2", "--anomalies", "0", "--invalid-rate",
                              "0.2", "--truth", str(truth)])
    assert simulate.run(args, mine) == 0
    lines = [json.loads(line) for line in truth.read_text().splitlines()]
    summary = lines[-1]["summary"]
    assert summary["messages.sensors"] == 2 * 2 * 8
    sensors = consume(mine, "sensors", summary["messages.sensors"])
    assert len(sensors) == summary["messages.sensors"]
    errors: list[str] = []
    envelopes = consume(mine, "telemetry", summary["messages.telemetry"] - summary.get("raw", 0),
                        errors)
    assert sum(len(r["readings"]) for _, r in envelopes) == summary["readings"]
    raw = sorted(t["error_code"] for t in lines[:-1]
                 if t.get("fault") == "invalid" and t["record_id"] is None)
    assert sorted(errors) == raw


def test_regional_incident_example(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    mine = settings.replace(topic_prefix=unique("ex") + ".")
    monkeypatch.setenv("EBI_KAFKA_BOOTSTRAP", mine.bootstrap)
    monkeypatch.setenv("EBI_SCHEMA_REGISTRY_URL", mine.registry_url)
    monkeypatch.setenv("EBI_TOPIC_PREFIX", mine.topic_prefix)
    monkeypatch.setenv("EBI_DATA_DIR", str(mine.data_dir))
    for key, value in security_env(mine).items():   # its login, as a deployment gives it
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location(
        "regional_incident_report", EXAMPLES / "regional_incident_report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main() == 0
    got = consume(mine, "incidents", 2)
    assert [r["stage"] for _, r in got] == ["INITIAL", "FOLLOW_UP"]
