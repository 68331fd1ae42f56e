"""The bench scenarios, run in order on one stack, and the headline figures of the result."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import data, latency, pipeline, profile, report
from bench.procs import Child, child_env
from streams.settings import Settings

WORKER_COUNTS = (1, 2, 3)
SERVERS = ("clickhouse", "kafka")   # the stack's processes whose CPU a run also reports


@dataclass(frozen=True)
class Scenario:
    name: str
    batch: int
    readings: int
    partitions: int = 4
    workers: int = 1
    baseline: bool = False
    profile: bool = False
    store: str = "server"    # "embedded": the sink writes chdb, as `make run` does
    sink_of: str = ""        # only a sink, re-reading that scenario's clean topics
    signed: bool = True      # publisher signs, worker verifies (False: both off)
    worker_input: str = "fetches"   # "stream": faust's per-message stream (noack_take)


def default_scenarios(scale: float = 1.0, only: list[str] | None = None) -> list[Scenario]:
    def n(readings: int) -> int:
        return max(2_000, int(readings * scale))

    all_ = [Scenario("warmup", 100, n(200_000)),   # JIT-warms Kafka; not a headline figure
            Scenario("b100", 100, n(1_000_000), baseline=True),
            # the sink alone over b100's clean topics, into the server and into chdb
            Scenario("sink-server", 100, n(1_000_000), sink_of="b100"),
            Scenario("sink-embedded", 100, n(1_000_000), store="embedded", sink_of="b100",
                     profile=True),
            Scenario("b10", 10, n(300_000), baseline=True),
            Scenario("b1", 1, n(50_000), baseline=True, profile=True),
            # the same traffic through faust's per-message stream (worker_input = "stream")
            Scenario("stream10", 10, n(300_000), worker_input="stream"),
            Scenario("stream1", 1, n(50_000), worker_input="stream"),
            Scenario("p1", 100, n(500_000), partitions=1),
            Scenario("w2", 100, n(500_000), workers=2),
            Scenario("profile", 100, n(400_000), profile=True),
            # the cost of record signing: the same traffic with signing and verification
            # off, then on, side by side (signing_* in latest.json)
            *signing_pairs(n),
            # 1, 2 and 3 workers of one group on 12 partitions (docs/scaling.md)
            *(Scenario(f"workers{k}", 100, n(400_000), partitions=12, workers=k)
              for k in WORKER_COUNTS)]
    return [s for s in all_ if only is None or s.name in only or (
        s.name == "warmup" and ("b100" in only or any(o in SIGNING for o in only))) or (
        s.sink_of and s.sink_of in only)]


def signing_pairs(n: Any) -> list[Scenario]:
    return [Scenario("nosig100", 100, n(300_000), signed=False),
            Scenario("sig100", 100, n(300_000)),
            Scenario("nosig10", 10, n(100_000), signed=False),
            Scenario("sig10", 10, n(100_000))]


SIGNING = ("nosig100", "sig100", "nosig10", "sig10")


def _settings(base: Settings, s: Scenario) -> Settings:
    db = f"bench_{s.name.replace('-', '_')}"
    url = (f"chdb://{base.data_dir / ('chdb-' + s.name)}" if s.store == "embedded" else
           f"clickhouse://127.0.0.1:{base.clickhouse_tcp_port}/{db}")
    return base.replace(topic_prefix=f"{s.sink_of or s.name}.", topic_partitions=s.partitions,
                        clickhouse_url=url,
                        worker_id=f"bench-{s.name}", sink_group=f"bench-sink-{s.name}")


def _profiler(results: Path, name: str, spies: list[Any]) -> Any:
    def start(children: list[Child]) -> None:
        for child in children:
            kind = "worker" if "worker" in child.name else "sink"
            out = results / f"profile-{name}-{kind}.raw.txt"
            spies.append((kind, out, profile.start(child.pid, out)))
    return start


def _server_cpu(base: Settings, since: dict[str, float] | None = None) -> dict[str, float]:
    """CPU seconds of the stack's own servers (from their pid files), minus ``since``."""
    from bench.measure import proc_usage

    out = {}
    for name in SERVERS:
        try:
            pid = int((base.run_dir / f"{name}.pid").read_text().strip())
            out[name] = proc_usage(pid).cpu_s - (since or {}).get(name, 0.0)
        except (OSError, ValueError, IndexError):
            continue
    return out


def run_one(base: Settings, s: Scenario, results: Path) -> dict[str, Any]:
    settings = _settings(base, s)
    log_dir = base.log_dir / "bench"
    if s.sink_of:
        return run_sink_only(settings, s, results, log_dir)
    data.prepare_topics(settings, child_env(settings))
    pub = data.publish(settings, s.batch, s.readings, signed=s.signed)
    print(f"bench {s.name}: published {pub.readings:,} readings in {pub.envelopes:,} envelopes "
          f"({pub.messages:,} messages) in {pub.seconds:.1f} s", flush=True)
    out: dict[str, Any] = {"scenario": s.__dict__, "published": pub.__dict__,
                           "loadavg_before": [round(x, 2) for x in os.getloadavg()]}
    if s.baseline:
        time.sleep(2)
        run = pipeline.baseline(settings, s.name, pub.readings, log_dir)
        out["baseline"] = run.as_dict()
        print(f"bench {s.name}: baseline {run.readings_per_s:,.0f} readings/s", flush=True)
    time.sleep(2)
    spies: list[Any] = []
    hook = _profiler(results, s.name, spies) if s.profile else None
    servers = _server_cpu(base)
    run = pipeline.full(settings, s.name, pub.readings, log_dir, workers=s.workers,
                        on_first=hook, verify=s.signed, worker_input=s.worker_input)
    out["full"] = run.as_dict()
    out["servers"] = {name: {"cpu_s": round(cpu, 2),
                             "cpu_s_per_m": round(cpu / max(run.visible, 1) * 1e6, 2)}
                      for name, cpu in _server_cpu(base, servers).items()}
    out["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"bench {s.name}: full pipeline {run.readings_per_s:,.0f} readings/s "
          f"({run.visible:,}/{pub.readings:,} in {run.total_s:.1f} s)", flush=True)
    _profiles(s, spies, out)
    return out


def run_sink_only(settings: Settings, s: Scenario, results: Path,
                  log_dir: Path) -> dict[str, Any]:
    """The sink alone, in its own group, over the clean topics ``s.sink_of`` left."""
    out: dict[str, Any] = {"scenario": s.__dict__,
                           "loadavg_before": [round(x, 2) for x in os.getloadavg()]}
    spies: list[Any] = []
    hook = _profiler(results, s.name, spies) if s.profile else None
    run = pipeline.full(settings, s.name, s.readings, log_dir, workers=0, on_first=hook)
    out["full"] = run.as_dict()
    out["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"bench {s.name}: sink alone ({s.store}) {run.readings_per_s:,.0f} readings/s "
          f"({run.visible:,}/{s.readings:,} in {run.total_s:.1f} s)", flush=True)
    _profiles(s, spies, out)
    return out


def _profiles(s: Scenario, spies: list[Any], out: dict[str, Any]) -> None:
    if spies:
        out["profile"] = {}
        for kind, path, proc in spies:
            try:
                proc.wait(30)
            except Exception:
                proc.kill()
            out["profile"][kind] = profile.summarize(path)
            print(profile.lines_for(f"{s.name} {kind}", out["profile"][kind]), flush=True)


def run_scenarios(base: Settings, scenarios: list[Scenario], latency_s: float,
                  only: list[str] | None) -> dict[str, Any]:
    result: dict[str, Any] = {"scenarios": {}}
    results = report.RESULTS
    for s in scenarios:
        try:
            result["scenarios"][s.name] = run_one(base, s, results)
        except Exception as exc:  # record it and go on with the next scenario
            print(f"bench {s.name}: failed: {type(exc).__name__}: {exc}", flush=True)
            result["scenarios"][s.name] = {"scenario": s.__dict__,
                                           "error": f"{type(exc).__name__}: {exc}"}
    if only is None or "sigcpu" in only:
        from bench.signing import measure

        result["signing_cpu"] = measure()
        print(f"bench: worker CPU with signature verification: {result['signing_cpu']}",
              flush=True)
    if only is None or "kafka" in only:
        from bench.engine import kafka_engine

        result["kafka_engine"] = kafka_engine(base)
        print(f"bench: kafka table engine: {result['kafka_engine']}", flush=True)
    if only is None or "latency" in only:
        lat_settings = base.replace(topic_prefix="lat.", worker_id="bench-lat",
                                    sink_group="bench-sink-lat", clickhouse_url=(
                                        f"clickhouse://127.0.0.1:{base.clickhouse_tcp_port}"
                                        "/bench_lat"))
        try:
            loads = latency_loads(result)
            result["latency_loads"] = loads
            result["latency"] = latency.measure(lat_settings, sorted(loads.values()),
                                                latency_s, base.log_dir / "bench")
        except Exception as exc:  # the throughput figures are still worth writing
            print(f"bench latency: failed: {type(exc).__name__}: {exc}", flush=True)
            result["latency_error"] = f"{type(exc).__name__}: {exc}"
    result.update(headline(result))
    return result


def latency_loads(result: dict[str, Any]) -> dict[str, float]:
    """The loads latency is measured at: a tenth and a half of the capacity this run measured
    (envelopes of 100, full pipeline), rounded to whole envelopes per second; 1k and 10k
    readings/s when b100 did not run."""
    capacity = _rate(result, "b100")
    if not capacity:
        return {"tenth": 1000.0, "half": 10000.0}
    return {name: max(100.0, round(capacity * share / 100) * 100.0)
            for name, share in (("tenth", 0.1), ("half", 0.5))}


def _rate(result: dict[str, Any], name: str, which: str = "full") -> float | None:
    run = result.get("scenarios", {}).get(name, {}).get(which)
    return float(run["readings_per_s"]) if run else None


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The figures ISSUE 7 asks for at the top level of latest.json."""
    out: dict[str, Any] = {}
    for batch in (100, 10, 1):
        full, base = _rate(result, f"b{batch}"), _rate(result, f"b{batch}", "baseline")
        out[f"readings_per_s_batch{batch}"] = full
        out[f"baseline_readings_per_s_batch{batch}"] = base
        out[f"ratio_to_baseline_batch{batch}"] = report.ratio(full or 0.0, base or 0.0)
    out["baseline_readings_per_s"] = out["baseline_readings_per_s_batch100"]
    out["ratio_to_baseline"] = out["ratio_to_baseline_batch100"]
    lat = result.get("latency", {})
    loads = result.get("latency_loads", {"tenth": 1000.0, "half": 10000.0})
    out["latency_loads_readings_per_s"] = loads
    for label, rate in loads.items():
        for q in ("p50", "p95", "p99"):
            out[f"{q}_s_at_{label}_capacity"] = lat.get(str(int(rate)), {}).get(f"{q}_s")
    b100 = result.get("scenarios", {}).get("b100", {}).get("full", {})
    out["cost_per_million_readings"] = {
        ("worker" if "worker" in k else "sink"): {"cpu_s": v.get("cpu_s_per_m"),
                                                  "cpu_s_incl_startup": v.get(
                                                      "cpu_s_per_m_total"),
                                                  "peak_rss_mb": v.get("peak_rss_mb")}
        for k, v in b100.get("usage", {}).items()}
    embedded, server = _rate(result, "sink-embedded"), _rate(result, "sink-server")
    out["sink_readings_per_s"] = {"server": server, "embedded": embedded}
    out["ratio_embedded_to_server_sink"] = report.ratio(embedded or 0.0, server or 0.0)
    out["scaling"] = {
        "partitions_1_workers_1": _rate(result, "p1"),
        "partitions_4_workers_1": _rate(result, "b100"),
        "partitions_4_workers_2": _rate(result, "w2")}
    p1, w2, b = (out["scaling"][k] for k in ("partitions_1_workers_1", "partitions_4_workers_2",
                                             "partitions_4_workers_1"))
    out["scaling"]["x_1_to_4_partitions"] = report.ratio(b or 0.0, p1 or 0.0)
    out["scaling"]["x_1_to_2_workers"] = report.ratio(w2 or 0.0, b or 0.0)
    out["worker_input"] = {
        f"ratio_fetches_to_stream_batch{batch}": report.ratio(
            _rate(result, f"b{batch}") or 0.0, _rate(result, f"stream{batch}") or 0.0)
        for batch in (10, 1)}
    out["signing"] = signing(result)
    out["signing_ratio_batch100"] = out["signing"]["ratio_signed_to_unsigned_batch100"]
    out["signing_ratio_batch10"] = out["signing"]["ratio_signed_to_unsigned_batch10"]
    # goals as ratios measured in this run (absolute figures do not survive a change of machine)
    out["scaling_workers"] = scaling_workers(result)
    out["targets"] = {
        "batch100_at_least_0.9x": (out["ratio_to_baseline_batch100"] or 0) >= 0.9,
        "batch10_at_least_0.5x": (out["ratio_to_baseline_batch10"] or 0) >= 0.5,
        "batch1_at_least_0.25x": (out["ratio_to_baseline_batch1"] or 0) >= 0.25,
        "embedded_sink_at_least_0.8x": (out["ratio_embedded_to_server_sink"] or 0) >= 0.8,
        **{f"p99_at_{label}_capacity_at_most_1s": (
            out[f"p99_s_at_{label}_capacity"] is not None
            and out[f"p99_s_at_{label}_capacity"] <= 1) for label in ("tenth", "half")}}
    return out


def signing(result: dict[str, Any]) -> dict[str, Any]:
    """Throughput with record signing and verification on against off (ISSUE 13: at most
    10 % lower at envelopes of 100)."""
    out: dict[str, Any] = {}
    for batch in (100, 10):
        on, off = _rate(result, f"sig{batch}"), _rate(result, f"nosig{batch}")
        ratio = report.ratio(on or 0.0, off or 0.0)
        out[f"readings_per_s_signed_batch{batch}"] = on
        out[f"readings_per_s_unsigned_batch{batch}"] = off
        out[f"ratio_signed_to_unsigned_batch{batch}"] = ratio
        out[f"cost_pct_batch{batch}"] = None if ratio is None else round((1 - ratio) * 100, 1)
    ratio = out["ratio_signed_to_unsigned_batch100"]
    out["target_batch100_at_most_10pct_lower"] = None if ratio is None else ratio >= 0.9
    return out


def scaling_workers(result: dict[str, Any]) -> dict[str, Any]:
    """Readings/s of 1, 2 and 3 workers on 12 partitions, and what one core of each process
    does (from its CPU seconds per million readings)."""
    out: dict[str, Any] = {"partitions": 12, "cores": os.cpu_count()}
    one = _rate(result, "workers1")
    for k in WORKER_COUNTS:
        rate = _rate(result, f"workers{k}")
        out[f"workers_{k}"] = rate
        if k > 1:
            out[f"x_1_to_{k}_workers"] = report.ratio(rate or 0.0, one or 0.0)
    per_core: dict[str, float | None] = {}
    for k in WORKER_COUNTS:
        sc = result.get("scenarios", {}).get(f"workers{k}", {})
        usage = sc.get("full", {}).get("usage", {})
        workers = [u["cpu_s_per_m"] for name, u in usage.items()
                   if "-worker" in name and u.get("cpu_s_per_m")]
        sinks = [u["cpu_s_per_m"] for name, u in usage.items()
                 if name.endswith("-sink") and u.get("cpu_s_per_m")]
        if workers:   # the group's CPU per million readings, over its workers
            per_core[f"worker_readings_per_core_s_{k}"] = round(1e6 / sum(workers), 0)
        if sinks:
            per_core[f"sink_readings_per_core_s_{k}"] = round(1e6 / sum(sinks), 0)
        ch = sc.get("servers", {}).get("clickhouse", {}).get("cpu_s_per_m")
        if ch:
            per_core[f"clickhouse_rows_per_core_s_{k}"] = round(1e6 / ch, 0)
    out["per_core"] = per_core
    cores = os.cpu_count() or 1
    out["note"] = (f"{cores} cores shared by Kafka, ClickHouse, the registry, the sink and "
                   "the workers: past the cores there is nothing to scale onto; the per-core "
                   "figures (CPU seconds per million readings) are what carries over")
    return out


def summary(result: dict[str, Any]) -> str:
    rows = []
    for sc in result.get("scenarios", {}).values():
        base = sc.get("baseline")
        # no baseline of its own: that of the same envelope size (b100 for p1, w2, ...)
        batch = sc.get("scenario", {}).get("batch", 100)
        base_rate = float(base["readings_per_s"]) if base else _rate(result, f"b{batch}",
                                                                     "baseline")
        if base:
            rows.append(report.run_row(base, base_rate))
        if "full" in sc:
            rows.append(report.run_row(sc["full"], base_rate))
    lines = [report.table(rows)]
    lat = result.get("latency", {})
    for rate, figures in lat.items():
        lines.append(f"latency at {int(float(rate)):,} readings/s: p50 {figures['p50_s']} s, "
                     f"p95 {figures['p95_s']} s, p99 {figures['p99_s']} s "
                     f"({figures['measured']} envelopes)")
        for stage, q in figures.get("stages", {}).items():
            lines.append(f"  {stage}: {q}")
    if "kafka_engine" in result:
        lines.append(f"ClickHouse Kafka engine: {result['kafka_engine']}")
    if result.get("scaling_workers", {}).get("workers_1") is not None:
        lines.append(f"workers on 12 partitions: {result['scaling_workers']}")
    lines.append(f"targets: {result.get('targets')}")
    if result.get("signing"):
        lines.append(f"signing: {result.get('signing')}")
    return "\n".join(lines)
