"""The baseline: a plain confluent-kafka consumer, fastavro decoding and clickhouse-driver
columnar inserts into a MergeTree, with no validation, deduplication or flags.

Run in a child process (``python -m bench.baseline``) so its CPU and memory are measured apart.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import urllib.parse
from typing import Any

import fastavro

from schemas.catalog import default_catalog

DDL = """CREATE TABLE IF NOT EXISTS {table} (
    reading_id String, sensor_id String, gateway_id String, enterprise_id String,
    metric String, value Float64, unit String, quality String,
    event_time DateTime, event_ms UInt64
) ENGINE = MergeTree PARTITION BY toYYYYMM(event_time)
ORDER BY (enterprise_id, sensor_id, event_time)"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--clickhouse", required=True, help="clickhouse://host:port/db")
    parser.add_argument("--table", required=True)
    parser.add_argument("--expect", type=int, required=True, help="readings to wait for")
    parser.add_argument("--batch-rows", type=int, default=50_000)
    args = parser.parse_args(argv)

    from clickhouse_driver import Client

    from sinks.clickhouse.config import login_url
    from streams import clients
    from streams.settings import load

    # the logins and CA of this process's settings (EBI_*), as every client gets them
    settings = load().replace(kafka_bootstrap=args.bootstrap, clickhouse_url=args.clickhouse)
    url = urllib.parse.urlparse(login_url(settings))
    client = Client(host=url.hostname, port=url.port, database=url.path.strip("/"),
                    user=urllib.parse.unquote(url.username or "default"),
                    password=urllib.parse.unquote(url.password or ""))
    client.execute(DDL.format(table=args.table))
    schema = default_catalog().schemas.parsed("TelemetryBatch")
    consumer = clients.consumer(settings, f"bench-{args.table}",
                                **{"auto.offset.reset": "earliest",
                                   "fetch.max.bytes": 52428800})
    consumer.subscribe([args.topic])
    started = time.perf_counter()
    total = 0
    cols: list[list[object]] = [[] for _ in range(10)]
    reader = fastavro.schemaless_reader
    while total < args.expect:
        for msg in consumer.consume(5000, timeout=0.2):
            if msg.error():
                continue
            body = io.BytesIO(msg.value() or b"")
            body.seek(5)
            batch: dict[str, Any] = reader(body, schema, schema)  # type: ignore[assignment]
            gateway, enterprise = batch["gateway_id"], batch["enterprise_id"]
            for r in batch["readings"]:
                t = r["event_time"]
                cols[0].append(r["reading_id"])
                cols[1].append(r["sensor_id"])
                cols[2].append(gateway)
                cols[3].append(enterprise)
                cols[4].append(r["metric"])
                cols[5].append(r["value"])
                cols[6].append(r["unit"])
                cols[7].append(r["quality"])
                cols[8].append(t)
                cols[9].append(int(t.timestamp() * 1000))
        pending = len(cols[0])
        if pending and (pending >= args.batch_rows or total + pending >= args.expect):
            client.execute(f"INSERT INTO {args.table} (reading_id, sensor_id, gateway_id, "
                           "enterprise_id, metric, value, unit, quality, event_time, event_ms) "
                           "VALUES", cols, columnar=True)
            consumer.commit(asynchronous=False)
            total += pending
            cols = [[] for _ in range(10)]
    elapsed = time.perf_counter() - started
    consumer.close()
    json.dump({"readings": total, "seconds": elapsed}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
