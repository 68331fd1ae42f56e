"""``ebi reconcile``: per input topic and partition, Kafka's offsets against ClickHouse's
ledger (enriched envelopes + whole-message dead letters) and readings. Exits 1 on any
unexplained gap."""

from __future__ import annotations

import argparse
import sys
import uuid

from schemas.catalog import load_catalog
from sinks.clickhouse import ClickHouseError
from sinks.reconcile import reconcile, report_lines
from sinks.store import open_store
from streams import clients
from streams.settings import Settings


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topics", nargs="*", default=None,
                        help="logical input topics (default: every ledgered input topic)")


def watermarks(settings: Settings, topics: list[str], timeout: float = 10.0
               ) -> dict[tuple[str, int], tuple[int, int]]:
    from confluent_kafka import TopicPartition

    consumer = clients.consumer(settings, f"ebi-reconcile-{uuid.uuid4().hex[:8]}")
    try:
        meta = consumer.list_topics(timeout=timeout)
        out = {}
        for logical in topics:
            name = settings.topic(logical)
            if name not in meta.topics:
                continue
            for partition in sorted(meta.topics[name].partitions):
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(name, partition), timeout=timeout)
                out[(name, partition)] = (int(low), int(high))
        return out
    finally:
        consumer.close()


def run(args: argparse.Namespace, settings: Settings) -> int:
    catalog = load_catalog(settings.catalog)
    kinds = {settings.topic(kind.input.name): kind for kind in catalog.ledgered}
    topics = args.topics or [kind.input.name for kind in catalog.ledgered]
    unknown = [t for t in topics if settings.topic(t) not in kinds]
    if unknown:
        print(f"ebi reconcile: not a ledgered input topic: {', '.join(unknown)}",
              file=sys.stderr)
        return 2
    clients.require_kafka(settings)
    try:
        marks = watermarks(settings, topics, timeout=5.0)
    except Exception as exc:  # KafkaException and friends
        print(f"ebi reconcile: cannot read offsets from Kafka at {settings.bootstrap}: {exc}",
              file=sys.stderr)
        return 1
    backend = open_store(settings, "reconcile")
    if backend is None:
        return 1
    try:
        checks = reconcile(backend, marks, kinds)
    except ClickHouseError as exc:
        print(f"ebi reconcile: {exc}", file=sys.stderr)
        return 1
    finally:
        backend.close()
    print("\n".join(report_lines(checks)))
    bad = [c for c in checks if not c.ok]
    if bad:
        print(f"\n{len(bad)} partition(s) with unexplained differences", file=sys.stderr)
        return 1
    print(f"\nall {len(checks)} partition(s) reconcile")
    return 0
