"""``python -m bench.capacity``: what one ClickHouse replica takes, measured in a targeted run.

Clean telemetry envelopes (100 readings each, 50,000 readings per batch) are written through
the sink's own write path (:class:`sinks.clickhouse.sink.ClickHouseSink`: ledger check,
encoding, the readings insert that also feeds the rollups, the ledger and ``consumed``), in
this process, into

1. one clickhouse-server (Debian's 18.16), plain ReplacingMergeTree tables;
2. two replicas of it with ZooKeeper: ``ebi migrate``'s ReplicatedReplacingMergeTree tables
   under Distributed ones, inserts into the Distributed tables (synchronous).

Reported per setup: readings/s written (wall time of the writes), the CPU seconds per million
readings of each server (during the run and 2 s after: merges) and of the sink's write path
(this process, the writes only), the bytes a reading takes on disk (compressed, synthetic
values: real ones vary more), and for the replicas how long after the last write the second
one held every row (it fetches the parts the first one wrote). Nothing else runs in the
stack (no Kafka, no worker), so the figures are those of the store alone; docs/scaling.md
turns them into a capacity model. Results: bench/results/capacity-latest.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import proc_usage, self_usage
from bench.report import RESULTS
from schemas.columns import columnar
from sinks.base import Batch, PartitionBatch
from sinks.clickhouse.encoding import Envelope
from streams.settings import PROJECT_ROOT, Settings

READINGS_PER_ENVELOPE = 100
ENVELOPES_PER_BATCH = 500
METRICS = (("METHANE", "PERCENT_VOL", 0.4), ("CARBON_MONOXIDE", "PPM", 6.0),
           ("TEMPERATURE", "CELSIUS", 21.0), ("FLAMMABLE_GAS", "PERCENT_LEL", 8.0))


def envelope(offset: int, topic: str, enterprises: int, t0: int) -> Envelope:
    """An EnrichedTelemetryBatch of ``READINGS_PER_ENVELOPE`` clean readings."""
    enterprise = offset % enterprises
    gateway = f"gw-{enterprise:05d}-{offset % 2}"
    sent = t0 + offset * 10
    items = []
    for i in range(READINGS_PER_ENVELOPE):
        metric, unit, base = METRICS[i % len(METRICS)]
        items.append({"reading_id": f"cap-{offset}-{i}",
                      "sensor_id": f"s-{enterprise:05d}-{i % 50:02d}", "metric": metric,
                      "value": base + (i % 13) * 0.01, "unit": unit, "quality": "GOOD",
                      "event_time": sent - 1000 + i, "arrival_lag_ms": 200})
    cols = columnar(items)
    cols["flags"] = []
    record = {"source": {"topic": "cap.telemetry", "partition": offset % 12, "offset": offset,
                         "schema_id": 1},
              "gateway_id": gateway, "enterprise_id": f"ent-{enterprise:05d}",
              "region_code": "110101", "sent_at": sent, "received_at": sent + 150,
              "sequence": offset, "readings_in": READINGS_PER_ENVELOPE, "duplicates": 0,
              "rejected": 0, **cols, "tag": None, "recheck": False}
    return Envelope(record, topic, offset % 12, offset, "readings_raw", READINGS_PER_ENVELOPE)


def _pid(settings: Settings, name: str) -> int:
    return int((settings.run_dir / f"{name}.pid").read_text().strip())


def _count(url: str, table: str) -> int:
    from sinks.clickhouse import connect

    backend = connect(url)
    try:
        return int(backend.query(f"SELECT count() FROM {table}").scalar())
    finally:
        backend.close()


def measure(settings: Settings, readings: int, label: str) -> dict[str, Any]:
    """Write ``readings`` through the sink's write path; CPU and time of everything."""
    from sinks.clickhouse import connect
    from sinks.clickhouse.config import login_url
    from sinks.clickhouse.migrations import migrate
    from sinks.clickhouse.sink import ClickHouseSink
    from streams.metrics import Metrics

    url = login_url(settings)
    backend = connect(url, create_database=True)
    migrate(backend)
    sink = ClickHouseSink(backend, Metrics.create(), max_rows=10**9, max_seconds=10**9)
    names = ["clickhouse"] + [f"clickhouse-{i + 1}" for i in range(1, settings.clickhouse_replicas)]
    pids = {name: _pid(settings, name) for name in names}
    before = {name: proc_usage(pid).cpu_s for name, pid in pids.items()}
    envelopes = readings // READINGS_PER_ENVELOPE
    t0 = int(time.time() * 1000) - 3_600_000
    written = sink_cpu = 0.0    # of the writes only, not of making up the envelopes
    for first in range(0, envelopes, ENVELOPES_PER_BATCH):
        batch = [envelope(o, "cap.telemetry.clean", 1000, t0)
                 for o in range(first, min(envelopes, first + ENVELOPES_PER_BATCH))]
        part = PartitionBatch("cap.telemetry.clean", 0, 0.0, list(batch), batch[-1].offset,
                              batch[0].offset, len(batch) * READINGS_PER_ENVELOPE)
        cpu, wall = self_usage().cpu_s, time.monotonic()
        sink.write(Batch([part]))
        sink_cpu += self_usage().cpu_s - cpu
        written += time.monotonic() - wall
    out: dict[str, Any] = {"setup": label, "readings": readings, "seconds": round(written, 2),
                           "readings_per_s": round(readings / written, 0),
                           "sink_write_cpu_s_per_m": round(sink_cpu / readings * 1e6, 2)}
    if settings.clickhouse_replicas > 1:   # until the other replica holds every row
        step = settings.clickhouse_port_step
        database = backend.config.database
        other = login_url(settings.replace(
            clickhouse_url=f"clickhouse://127.0.0.1:{settings.clickhouse_tcp_port + step}/"
                           f"{database}", clickhouse_replicas=1,
            clickhouse_tcp_port=settings.clickhouse_tcp_port + step))
        last_write = time.monotonic()
        while _count(other, "readings_raw_local") < readings:
            if time.monotonic() - last_write > 900:
                break
            time.sleep(0.2)
        out["replicated_after_s"] = round(time.monotonic() - last_write, 2)
    time.sleep(2)   # merges of the last parts
    table = "readings_raw_local" if settings.clickhouse_replicas > 1 else "readings_raw"
    size, rows = backend.query(
        f"SELECT sum(bytes_on_disk), sum(rows) FROM system.parts WHERE active AND "
        f"database = '{backend.config.database}' AND table = '{table}'").rows[0]
    out["bytes_per_reading_on_disk"] = round(int(size) / max(int(rows), 1), 1)
    out["servers"] = {name: round((proc_usage(pid).cpu_s - before[name]) / readings * 1e6, 2)
                      for name, pid in pids.items()}
    out["server_cpu_s_per_m"] = round(sum(out["servers"].values()), 2)
    backend.close()
    return out


def stack_settings(data_dir: Path, replicas: int) -> Settings:
    from streams.stack.process import free_port, port_free

    while True:
        base = free_port()
        ports = [base + r + i * 10 for i in range(replicas) for r in range(4)]
        if max(ports) < 65000 and all(port_free(p) for p in ports):
            break
    return Settings(data_dir=data_dir, clickhouse_tcp_port=base, clickhouse_http_port=base + 1,
                    clickhouse_interserver_port=base + 2, zookeeper_port=base + 3,
                    clickhouse_replicas=replicas,
                    clickhouse_url=f"clickhouse://127.0.0.1:{base}/capacity")


def run(readings: int, data_dir: Path) -> list[dict[str, Any]]:
    from streams.stack.clickhouse import ClickHouseReplicas
    from streams.stack.zookeeper import ZooKeeper

    results = []
    for replicas in (1, 2):
        settings = stack_settings(data_dir / f"replicas-{replicas}", replicas)
        services: list[Any] = [ZooKeeper(settings)] if replicas > 1 else []
        services.append(ClickHouseReplicas(settings))
        try:
            for service in services:
                service.up()
            label = "1 server" if replicas == 1 else f"{replicas} replicas (ZooKeeper)"
            print(f"capacity: writing {readings:,} readings into {label} ...", flush=True)
            results.append(measure(settings, readings, label))
            print(f"capacity: {json.dumps(results[-1])}", flush=True)
        finally:
            for service in reversed(services):
                service.down()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--readings", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    data_dir = PROJECT_ROOT / "var" / "bench" / f"capacity-{stamp}"
    import os

    load = os.getloadavg()
    results = run(args.readings, data_dir)
    doc = {"started_at": stamp, "cores": os.cpu_count(), "loadavg_start": list(load),
           "loadavg_end": list(os.getloadavg()), "readings_per_envelope": READINGS_PER_ENVELOPE,
           "readings_per_batch": READINGS_PER_ENVELOPE * ENVELOPES_PER_BATCH,
           "results": results, "command": " ".join(["python -m bench.capacity", *(argv or [])])}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "capacity-latest.json").write_text(json.dumps(doc, indent=2))
    shutil.rmtree(data_dir, ignore_errors=True)
    for r in results:
        print(f"{r['setup']:<26} {r['readings_per_s']:>10,.0f} readings/s  server CPU "
              f"{r['server_cpu_s_per_m']:>6.2f} s/M {r['servers']}  sink write CPU "
              f"{r['sink_write_cpu_s_per_m']:.2f} s/M"
              + (f"  second replica complete {r['replicated_after_s']} s after the last write"
                 if "replicated_after_s" in r else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
