"""``ebi reconcile``: per input topic and partition, Kafka's offsets against ClickHouse's
ledger (clean records + whole-message dead letters) and readings; per topic the worker
writes (clean topics, alerts, gateway statuses, dead letters), what the sink committed
against what it stored. Offsets the worker or the sink has not got to yet are in flight, not
gaps. Exits 0 when everything is accounted for or on its way, 1 on any unexplained gap."""

from __future__ import annotations

import argparse
import sys

from schemas.catalog import load_catalog
from sinks.clickhouse import ClickHouseError
from sinks.reconcile import output_lines, reconcile, reconcile_outputs, report_lines
from sinks.store import open_store
from streams import clients
from streams.kafkaio import committed, watermarks
from streams.settings import Settings


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topics", nargs="*", default=None,
                        help="logical input topics (default: every ledgered input topic)")


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
    outputs = list(catalog.routes())
    try:
        marks = watermarks(settings, topics, timeout=5.0)
        out_marks = watermarks(settings, outputs, timeout=5.0)
        processed = committed(settings, settings.worker_id, marks)
        stored = committed(settings, settings.sink_group, out_marks)
    except Exception as exc:  # KafkaException and friends
        print(f"ebi reconcile: cannot read offsets from Kafka at {settings.bootstrap}: {exc}",
              file=sys.stderr)
        return 1
    behind: dict[str, int] = {}
    for kind in catalog.ledgered:
        if kind.clean is not None:
            clean = settings.topic(kind.clean.name)
            behind[settings.topic(kind.input.name)] = sum(
                high - max(stored.get((t, p), low), low)
                for (t, p), (low, high) in out_marks.items() if t == clean)
    backend = open_store(settings, "reconcile", own_database=True)
    if backend is None:
        return 1
    try:
        checks = reconcile(backend, marks, kinds, processed, behind)
        out_checks = reconcile_outputs(backend, out_marks, stored)
    except ClickHouseError as exc:
        print(f"ebi reconcile: {exc}", file=sys.stderr)
        return 1
    finally:
        backend.close()
    print("inputs (offsets against the ledger):")
    print("\n".join(report_lines(checks)))
    print("\noutputs of the worker (what the sink committed against what it stored):")
    print("\n".join(output_lines(out_checks)))
    bad = [c for c in checks if not c.ok] + [c for c in out_checks if not c.ok]
    flying = sum(c.in_flight for c in checks) + sum(c.in_flight for c in out_checks)
    if bad:
        print(f"\n{len(bad)} partition(s) with unexplained differences", file=sys.stderr)
        return 1
    parts = f"{len(checks)} input and {len(out_checks)} output"
    if flying:
        print(f"\nall {parts} partition(s) reconcile; {flying} message(s) in flight (the "
              "worker or the sink has not got to them yet)")
    else:
        print(f"\nall {parts} partition(s) reconcile")
    return 0
