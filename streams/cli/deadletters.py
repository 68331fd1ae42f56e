"""``ebi dead-letters replay``: send selected dead letters again to their input topic.

Once the cause of a reject is fixed (a sensor registered late, a registry restored, a bug
fixed), the records can be replayed: the dead letters are selected in ClickHouse by reason
code (``--reason``), input topic (``--topic``) and time (``--since``, ``--until``), and each
distinct payload is published again to the input topic it came from, with its key and the
headers ``ebi-replay-of`` (the original coordinates) and ``ebi-replay-reason``. A whole
message goes out as its original bytes; a reading rejected alone goes out as a one-reading
envelope (re-encoded with the current schema). The worker's deduplication makes a replay
idempotent: what was accepted before is dropped as a duplicate, so running it twice changes
nothing. ``--dry-run`` lists what would be sent. Exit status 1 on any failure.

A whole message goes out with the sender's own signature (kept with its dead letter: the
replay is provably the sender's); a reading rebuilt alone is new bytes, signed with this
process's key (``signing_key_file`` or the local dev keyring), so on a production cluster
rejected readings are re-sent by their gateway instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from schemas.catalog import load_catalog
from schemas.catalog.model import Catalog
from sinks.clickhouse import ClickHouseError
from sinks.replay import DeadLetterRow, select
from sinks.store import open_store
from streams.cli.report import parse_time
from streams.settings import Settings


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["replay"])
    parser.add_argument("--reason", action="append", dest="reasons", metavar="CODE",
                        help="only dead letters with this error code (repeatable)")
    parser.add_argument("--topic", action="append", dest="topics", metavar="NAME",
                        help="only this logical input topic (repeatable); default: all")
    parser.add_argument("--since", default="7d", help="rejected at or after (ISO time in "
                        "UTC, or 24h, 7d; default 7d)")
    parser.add_argument("--until", default="", help="rejected before (default: now)")
    parser.add_argument("--limit", type=int, default=100_000, help="at most this many")
    parser.add_argument("--dry-run", action="store_true", help="list, send nothing")


def payload(row: DeadLetterRow, catalog: Catalog, logical: str, serializer: Any,
            topic: str) -> bytes:
    """The bytes to send: the original message, or a rejected reading re-encoded."""
    from schemas.codec import SerializationContext
    from streams.records.convert import convert

    if row.framed:
        return row.value
    kind = catalog.of_input(logical)
    record, errors = convert(kind.input.record, json.loads(row.value))
    if record is None:
        raise ValueError("; ".join(e.line() for e in errors))
    value: bytes = serializer(record, SerializationContext(topic, kind.input.record))
    return value


def run(args: argparse.Namespace, settings: Settings) -> int:
    catalog = load_catalog(settings.catalog)
    inputs = {settings.topic(kind.input.name): kind.input.name for kind in catalog.processed}
    wanted = args.topics or list(inputs.values())
    unknown = [t for t in wanted if settings.topic(t) not in inputs]
    if unknown:
        print(f"ebi dead-letters: not an input topic: {', '.join(unknown)}", file=sys.stderr)
        return 2
    now = dt.datetime.now(dt.UTC)
    try:
        since = parse_time(args.since, now)
        until = parse_time(args.until, now) if args.until else None
    except ValueError as exc:
        print(f"ebi dead-letters: bad time: {exc}", file=sys.stderr)
        return 2
    backend = open_store(settings, "dead-letters", own_database=True)
    if backend is None:
        return 1
    try:
        rows = select(backend, [settings.topic(t) for t in wanted], args.reasons, since, until,
                      args.limit)
    except ClickHouseError as exc:
        print(f"ebi dead-letters: {exc}", file=sys.stderr)
        return 1
    finally:
        backend.close()
    if args.dry_run:
        for row in rows:
            shown = "message" if row.framed else f"reading {row.record_index}"
            print(f"{row.coordinates}  {row.error_code:<22} {shown} ({len(row.value)} bytes)")
        print(f"{len(rows)} dead letter(s) would be replayed")
        return 0
    return _replay(settings, catalog, inputs, rows)


def _replay(settings: Settings, catalog: Catalog, inputs: dict[str, str],
            rows: list[DeadLetterRow]) -> int:
    from schemas.codec import AvroSerializer
    from streams import clients
    from streams.publisher.producer import make_producer

    clients.require_kafka(settings)
    from streams.signing.signer import signer_for
    from streams.signing.wire import headers as signature_headers

    registry = clients.registry(settings)
    serializer = AvroSerializer(registry, catalog.schemas)
    producer = make_producer(settings)
    signer = signer_for(settings, registry, catalog)
    unbuilt: list[str] = []
    undelivered: list[str] = []
    sent = 0

    def report(err: Any, msg: Any) -> None:
        if err is not None:
            undelivered.append(str(err))

    for row in rows:
        try:
            value = payload(row, catalog, inputs[row.source_topic], serializer,
                            row.source_topic)
        except (ValueError, KeyError) as exc:
            unbuilt.append(f"{row.coordinates}: cannot be rebuilt: {exc}")
            continue
        headers = [("ebi-replay-of", row.coordinates.encode()),
                   ("ebi-replay-reason", row.error_code.encode())]
        logical = inputs[row.source_topic]
        if row.framed and row.key_id and row.signature:
            headers += signature_headers(row.key_id, row.signature)
        elif signer is not None:
            headers += signer.sign(logical, row.key, value)
        while True:
            try:
                producer.produce(row.source_topic, value=value, key=row.key, headers=headers,
                                 on_delivery=report)
                break
            except BufferError:
                producer.poll(0.1)
        sent += 1
        producer.poll(0)
    left = producer.flush(60)
    for line in (unbuilt + undelivered)[:10]:
        print(f"ebi dead-letters: {line}", file=sys.stderr)
    failed = len(unbuilt) + len(undelivered) + left
    print(f"replayed {sent - len(undelivered) - left} of {len(rows)} dead letter(s)"
          + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0
