"""The headline figures of latest.json from a result (no services, no timing)."""

from __future__ import annotations

from typing import Any

from bench.scenarios import default_scenarios, headline, summary


def _run(name: str, rate: float) -> dict[str, Any]:
    return {"name": name, "readings": 1000, "complete": True, "readings_per_s": rate,
            "total_s": 1.0, "usage": {f"{name}-worker0": {"cpu_s_per_m": 10.0,
                                                          "cpu_s_per_m_total": 12.0,
                                                          "peak_rss_mb": 300.0}}}


def test_headline_has_the_issue_fields_and_ratios() -> None:
    result = {"scenarios": {
        "b100": {"full": _run("b100", 60_000.0), "baseline": _run("b100-baseline", 120_000.0)},
        "b1": {"full": _run("b1", 3_000.0), "baseline": _run("b1-baseline", 60_000.0)},
        "p1": {"full": _run("p1", 30_000.0)}, "w2": {"full": _run("w2", 90_000.0)},
        "sink-server": {"full": _run("sink-server", 100_000.0)},
        "sink-embedded": {"full": _run("sink-embedded", 85_000.0)}},
        "latency_loads": {"tenth": 6000.0, "half": 30000.0},
        "latency": {"30000": {"p50_s": 0.2, "p95_s": 0.3, "p99_s": 0.9, "measured": 5}}}
    out = headline(result)
    assert out["readings_per_s_batch100"] == 60_000.0
    assert out["readings_per_s_batch1"] == 3_000.0
    assert out["baseline_readings_per_s"] == 120_000.0
    assert out["ratio_to_baseline"] == 0.5
    assert out["readings_per_s_batch10"] is None and out["ratio_to_baseline_batch10"] is None
    assert out["p99_s_at_half_capacity"] == 0.9 and out["p99_s_at_tenth_capacity"] is None
    assert out["scaling"]["x_1_to_4_partitions"] == 2.0
    assert out["scaling"]["x_1_to_2_workers"] == 1.5
    assert out["cost_per_million_readings"]["worker"]["cpu_s"] == 10.0
    assert out["ratio_embedded_to_server_sink"] == 0.85
    assert out["targets"] == {"batch100_at_least_0.9x": False, "batch10_at_least_0.5x": False,
                              "batch1_at_least_0.25x": False, "embedded_sink_at_least_0.8x": True,
                              "p99_at_tenth_capacity_at_most_1s": False,
                              "p99_at_half_capacity_at_most_1s": True}
    text = summary({**result, **out})
    assert "b100-baseline" in text and "latency at 30,000 readings/s" in text


def test_scaling_the_sizes_and_choosing_scenarios() -> None:
    names = [s.name for s in default_scenarios(0.1, ["b100", "b1"])]
    assert names == ["warmup", "b100", "sink-server", "sink-embedded", "b1"]
    assert all(s.readings >= 2_000 for s in default_scenarios(0.0001))


def test_latency_is_measured_at_a_tenth_and_a_half_of_the_measured_capacity() -> None:
    from bench.scenarios import latency_loads

    assert latency_loads({"scenarios": {"b100": {"full": _run("b100", 61_234.0)}}}) == {
        "tenth": 6100.0, "half": 30600.0}
    assert latency_loads({}) == {"tenth": 1000.0, "half": 10000.0}


def test_signing_pairs_are_selectable_and_reported_side_by_side() -> None:
    names = [s.name for s in default_scenarios(0.1, ["nosig100", "sig100"])]
    assert names == ["warmup", "nosig100", "sig100"]
    chosen = {s.name: s for s in default_scenarios(1.0)}
    assert not chosen["nosig10"].signed and chosen["sig10"].signed and chosen["b100"].signed
    assert chosen["sig10"].batch == 10 and chosen["sig100"].batch == 100
    result = {"scenarios": {"nosig100": {"full": _run("nosig100", 100_000.0)},
                            "sig100": {"full": _run("sig100", 95_000.0)},
                            "nosig10": {"full": _run("nosig10", 30_000.0)},
                            "sig10": {"full": _run("sig10", 24_000.0)}}}
    out = headline(result)
    assert out["signing_ratio_batch100"] == 0.95 and out["signing_ratio_batch10"] == 0.8
    assert out["signing"]["cost_pct_batch100"] == 5.0
    assert out["signing"]["target_batch100_at_most_10pct_lower"] is True
    assert "signing:" in summary({**result, **out})
    assert headline({"scenarios": {}})["signing"]["ratio_signed_to_unsigned_batch10"] is None


def test_bench_only_from_the_environment(monkeypatch: Any) -> None:
    from bench.__main__ import parse

    monkeypatch.setenv("EBI_BENCH_ONLY", "sig100 nosig100")
    assert parse([]).only == ["sig100", "nosig100"]
    assert parse(["--only", "b1"]).only == ["b1"]


def test_the_in_process_signing_cost_runs_without_services() -> None:
    from bench.signing import measure

    out = measure(batches=(10,), readings=400, rounds=1)["batch10"]
    assert out["messages"] > 0 and out["readings"] > 0
    assert out["us_per_message_verified"] > 0 and out["worker_cpu_ratio"] is not None
