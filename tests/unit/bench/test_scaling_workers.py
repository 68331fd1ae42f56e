"""The 1-2-3 worker figures of the bench result (no services, no timing)."""

from __future__ import annotations

from typing import Any

from bench.__main__ import parse
from bench.scenarios import default_scenarios, headline, scaling_workers


def _scenario(k: int, rate: float) -> dict[str, Any]:
    usage = {f"workers{k}-worker{i}": {"cpu_s_per_m": 8.0 / k} for i in range(k)}
    usage[f"workers{k}-sink"] = {"cpu_s_per_m": 4.0}
    return {"full": {"readings_per_s": rate, "usage": usage},
            "servers": {"clickhouse": {"cpu_s_per_m": 2.5}}}


def test_one_two_three_workers_and_the_per_core_figures() -> None:
    result = {"scenarios": {f"workers{k}": _scenario(k, r)
                            for k, r in ((1, 40_000.0), (2, 50_000.0), (3, 44_000.0))}}
    out = scaling_workers(result)
    assert (out["workers_1"], out["workers_2"], out["workers_3"]) == (40_000.0, 50_000.0,
                                                                       44_000.0)
    assert out["x_1_to_2_workers"] == 1.25 and out["x_1_to_3_workers"] == 1.1
    assert out["per_core"]["worker_readings_per_core_s_3"] == 125_000
    assert out["per_core"]["sink_readings_per_core_s_1"] == 250_000
    assert out["per_core"]["clickhouse_rows_per_core_s_2"] == 400_000
    assert "cores" in out["note"]
    assert headline(result)["scaling_workers"] == out


def test_the_new_scenarios_are_there_and_selectable(monkeypatch: Any) -> None:
    names = [s.name for s in default_scenarios()]
    assert [n for n in names if not n.startswith(("sink-", "sig", "nosig", "workers"))] == [
        "warmup", "b100", "b10", "b1", "stream10", "stream1", "p1", "w2", "profile"]
    assert names[-3:] == ["workers1", "workers2", "workers3"]
    assert {s.partitions for s in default_scenarios() if s.name.startswith("workers")} == {12}
    monkeypatch.setenv("EBI_BENCH_ONLY", "workers1,workers3")
    assert parse([]).only == ["workers1", "workers3"]
    monkeypatch.delenv("EBI_BENCH_ONLY")
    assert parse([]).only is None


def test_the_stream_scenarios_run_faust_s_path_beside_the_fetch_tap() -> None:
    from bench.scenarios import headline

    by_name = {s.name: s for s in default_scenarios()}
    assert by_name["stream10"].worker_input == "stream" and by_name["b10"].worker_input == \
        "fetches"
    assert (by_name["stream10"].batch, by_name["stream1"].batch) == (10, 1)
    result = {"scenarios": {name: {"full": {"readings_per_s": rate}} for name, rate in (
        ("b10", 120.0), ("stream10", 100.0), ("b1", 30.0), ("stream1", 20.0))}}
    assert headline(result)["worker_input"] == {"ratio_fetches_to_stream_batch10": 1.2,
                                                "ratio_fetches_to_stream_batch1": 1.5}
