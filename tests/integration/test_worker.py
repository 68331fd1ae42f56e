"""The worker on real Kafka and the registry, driven by the simulator's ground truth.

One worker process per scenario (own topic prefix and group). Simulated time is placed just
before the wall clock and published as fast as possible; the worker then has to produce one
ledger record per input message and catch every injected fault, and on clean traffic flag
as little as possible (precision and recall are printed; run with -s to see them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from schemas.columns import reading_count
from streams.settings import Settings
from tests.integration.conftest import unique
from tests.integration.test_worker_kit import (
    WorkerProcess,
    ledger_sources,
    past_config,
    reader,
    score,
    simulate,
    wait_for_ledger,
)

pytestmark = pytest.mark.integration


def scenario(settings: Settings, name: str, **config: Any) -> Iterator[dict[str, Any]]:
    st = settings.replace(topic_prefix=f"{unique(name)}.", worker_id=unique(f"ebi-{name}"))
    worker = WorkerProcess(st).start()
    try:
        cfg = past_config(**config)
        sim, events, coords = simulate(st, cfg)
        outputs = reader(st)
        missing = wait_for_ledger(outputs, coords, timeout=120)
        outputs.poll(3.0)          # trailing alerts and statuses
        assert worker.alive(), worker.tail()
        end_ms = cfg.start_ms + int(cfg.duration_s * 1000)
        yield {"settings": st, "sim": sim, "events": events, "coords": coords,
               "outputs": outputs, "missing": missing, "worker": worker, "end_ms": end_ms}
        outputs.close()
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def faulty(settings: Settings) -> Iterator[dict[str, Any]]:
    # rates high enough that every kind of fault occurs in one minute of traffic
    yield from scenario(settings, "wfault", seed=11, duration_s=60.0, rate=1000.0,
                        incidents_per_min=30.0, hazards_per_min=10.0, duplicate_rate=0.002,
                        late_rate=0.001, anomalies=10, invalid_rate=0.02,
                        late_report_rate=0.3, concealment_rate=0.3, figure_jump_rate=0.6,
                        silent_gateways=1, silent_for_s=30, heartbeat_interval_s=5)


def _clean_config() -> dict[str, Any]:
    return {"seed": 12, "duration_s": 60.0, "rate": 1000.0, "incidents_per_min": 20.0,
            "hazards_per_min": 10.0, "heartbeat_interval_s": 5, "duplicate_rate": 0.0,
            "duplicate_report_rate": 0.0, "late_rate": 0.0, "late_report_rate": 0.0,
            "anomalies": 0, "invalid_rate": 0.0, "concealment_rate": 0.0,
            "figure_jump_rate": 0.0, "silent_gateways": 0}


def test_every_input_message_has_exactly_one_ledger_output(faulty: dict[str, Any]) -> None:
    assert not faulty["missing"], f"{len(faulty['missing'])} inputs without output"
    seen = ledger_sources(faulty["outputs"])
    doubled = {c: n for c, n in seen.items() if n > 1}
    assert not doubled, f"inputs with more than one ledger output: {list(doubled)[:5]}"


def test_no_reading_accepted_twice(faulty: dict[str, Any]) -> None:
    accepted = Counter(rid for env in faulty["outputs"].of("telemetry.clean")
                       for rid in env["reading_id"])
    assert not [rid for rid, n in accepted.items() if n > 1]


def test_injected_faults_are_all_caught(faulty: dict[str, Any]) -> None:
    result = score(faulty["sim"].truth, faulty["outputs"], faulty["end_ms"])
    print("\n[faulty traffic]\n" + "\n".join(result.lines()))
    kinds = set(result.injected)
    assert {"duplicate", "late_report", "late_telemetry", "anomaly", "concealment",
            "figure_jump", "invalid", "silent_gateway"} <= kinds, kinds
    assert not result.missed, "\n".join(result.missed[:10])
    assert result.recall == 1.0


def test_dead_letters_carry_original_bytes_and_coordinates(faulty: dict[str, Any]) -> None:
    dls = faulty["outputs"].of("deadletter")
    assert dls
    by_coords = {c: e for c, e in zip(faulty["coords"], faulty["events"], strict=True)}
    for dl in dls:
        src = dl["source"]
        coords = (src["topic"], src["partition"], src["offset"])
        assert coords in by_coords
        assert dl["value"] and dl["error_message"]
        if dl["stage"] == "decode":
            assert dl["record_id"] is None and dl["record_index"] is None


def test_false_positives_on_clean_traffic(settings: Settings) -> None:
    for run in scenario(settings, "wclean", **_clean_config()):
        assert not run["missing"]
        result = score(run["sim"].truth, run["outputs"], run["end_ms"])
        readings = sum(reading_count(e) for e in run["outputs"].of("telemetry.clean"))
        print(f"\n[clean traffic] {readings} readings, "
              f"{len(run['outputs'].of('incidents.clean'))} reports: "
              f"{len(result.false_positives)} false positives")
        print("\n".join(result.lines()))
        assert len(result.false_positives) <= max(2, readings // 10_000), \
            "\n".join(result.false_positives[:20])
