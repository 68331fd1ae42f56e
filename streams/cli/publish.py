"""``ebi publish --type TYPE FILE``: validate every record, then publish them.

FILE is JSON Lines, a JSON array, or CSV (by the .csv suffix). Telemetry CSV rows (and JSON
objects without ``readings``) are single readings with gateway_id/enterprise_id columns,
grouped into envelopes of ``--batch-size`` readings per gateway. Every invalid record is
listed with its line, field and reason; nothing is sent unless all are valid, or with
``--skip-invalid`` the valid ones are sent and the rejects written to ``--rejects``
(default FILE.rejects.jsonl). Exit status 1 on any reject or delivery failure. Every
message is signed with this sender's key (``signing_key_file``, or the local dev keyring:
docs/security.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from schemas.catalog import Catalog, default_catalog, load_catalog
from schemas.catalog.model import resolve
from schemas.codec import AvroSerializer, SerializationContext
from streams.policy import Policy, PolicyError, load_policy
from streams.publisher.producer import avro_body, make_producer
from streams.records.reader import Row, envelopes, read_rows, validate
from streams.records.rules import Violation
from streams.settings import Settings

SHOWN = 100   # rejects printed to the terminal; the rejects file has them all


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", required=True, dest="kind",
                        help="record type of the file: "
                        f"{', '.join(default_catalog().type_names())}")
    parser.add_argument("file", help="JSON Lines, JSON array or CSV file")
    parser.add_argument("--skip-invalid", action="store_true",
                        help="send the valid records and write the rejects to --rejects")
    parser.add_argument("--rejects", metavar="PATH", help="default: FILE.rejects.jsonl")
    parser.add_argument("--batch-size", type=int, default=100,
                        help="readings per telemetry envelope for flat readings (default 100)")
    parser.add_argument("--no-rules", action="store_true",
                        help="check structure only, not region codes, ranges, units, figures")
    parser.add_argument("--max-bytes", type=int, default=None,
                        help="largest message allowed (default: the policy's "
                        "limits.max_message_bytes, 1 MiB)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for delivery reports (default 60)")


@dataclass
class Prepared:
    topic: str                       # logical topic
    messages: list[tuple[dict[str, Any], list[Row]]] = field(default_factory=list)
    rejects: list[Row] = field(default_factory=list)
    read: int = 0


def prepare(path: str | Path, kind: str, policy: Policy | None, now_ms: int,
            batch_size: int = 100, max_bytes: int | None = None,
            catalog: Catalog | None = None) -> Prepared:
    """Read and validate the whole file; ``policy`` None skips the semantic rules."""
    spec = (catalog or default_catalog()).type(kind)
    if max_bytes is None:
        max_bytes = (policy or load_policy()).limits.max_message_bytes
    record = spec.input.record
    checks = resolve(spec.checks)
    out = Prepared(spec.input.name)
    flat: list[Row] = []
    for row in validate(read_rows(path), record, spec.flat_items):
        out.read += 1
        if not row.errors and policy is not None:
            assert row.record is not None
            found = checks(row.record, policy, now_ms)
            if row.flat_reading:
                found = [Violation(v.field.removeprefix(f"{spec.flat_items}[0]."), v.code,
                                   v.message) for v in found]
            row.errors = found
        if row.errors:
            out.rejects.append(row)
        elif row.flat_reading:
            flat.append(row)
        else:
            assert row.record is not None
            out.messages.append((row.record, [row]))
    if flat:
        out.messages += envelopes(flat, batch_size, now_ms, record, spec.flat_items)
    kept = []
    for obj, rows in out.messages:
        size = 5 + len(avro_body(record, obj))
        if size > max_bytes:
            for row in rows:
                row.errors = [Violation("", "OVERSIZE", f"the message is {size} bytes, over "
                                        f"the limit of {max_bytes}")]
                out.rejects.append(row)
        else:
            kept.append((obj, rows))
    out.messages = kept
    out.rejects.sort(key=lambda r: r.line)
    return out


def report_rejects(prepared: Prepared, path: str, rejects_path: Path | None,
                   err: TextIO | None = None) -> None:
    err = err or sys.stderr
    for row in prepared.rejects[:SHOWN]:
        for v in row.errors:
            where = f"{v.field}: " if v.field else ""
            print(f"{path}:{row.line}: {where}{v.code}: {v.message}", file=err)
    if len(prepared.rejects) > SHOWN:
        print(f"... and {len(prepared.rejects) - SHOWN} more rejected records", file=err)
    if rejects_path is not None:
        with open(rejects_path, "w", encoding="utf-8") as handle:
            for row in prepared.rejects:
                handle.write(json.dumps({
                    "line": row.line, "record": row.data,
                    "errors": [{"field": v.field, "code": v.code, "message": v.message}
                               for v in row.errors]}) + "\n")


def send(prepared: Prepared, settings: Settings, registry: Any, producer: Any,
         timeout: float, catalog: Catalog | None = None,
         signer: Any = None) -> tuple[int, int]:
    """Produce every prepared message, signed by ``signer`` (None: unsigned); returns
    (delivered, failed)."""
    spec = (catalog or default_catalog()).topic(prepared.topic)
    full = settings.topic(prepared.topic)
    if signer is not None:
        signer.prepare((prepared.topic, str(obj[spec.key]), obj)
                       for obj, _ in prepared.messages)
    serializer = AvroSerializer(registry)
    ctx = SerializationContext(full, spec.record)
    result = {"ok": 0, "failed": 0}

    def report(err: Any, msg: Any) -> None:
        result["failed" if err is not None else "ok"] += 1
        if err is not None and result["failed"] <= 5:
            print(f"delivery failed: {err}", file=sys.stderr)

    for obj, _ in prepared.messages:
        value = serializer(obj, ctx)
        key = str(obj[spec.key]).encode()
        headers = signer.sign(prepared.topic, key, value, obj) if signer is not None else None
        while True:
            try:
                producer.produce(full, value=value, key=key, headers=headers or None,
                                 on_delivery=report)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(timeout)
    return result["ok"], result["failed"] + left


def run(args: argparse.Namespace, settings: Settings) -> int:
    catalog = load_catalog(settings.catalog)
    if args.kind not in catalog.type_names():
        print(f"ebi publish: unknown --type {args.kind!r}; known: "
              f"{', '.join(catalog.type_names())}", file=sys.stderr)
        return 2
    try:
        policy = None if args.no_rules else load_policy(settings.policy_file or None,
                                                        region_table=settings.region_table)
    except PolicyError as exc:
        print(f"ebi publish: {exc}", file=sys.stderr)
        return 2
    try:
        prepared = prepare(args.file, args.kind, policy, int(time.time() * 1000),
                           args.batch_size, args.max_bytes, catalog)
    except OSError as exc:
        print(f"ebi publish: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    rejects_path = None
    if prepared.rejects and (args.skip_invalid or args.rejects):
        rejects_path = Path(args.rejects or f"{args.file}.rejects.jsonl")
    report_rejects(prepared, args.file, rejects_path)
    valid = prepared.read - len(prepared.rejects)
    line = (f"{args.file}: {prepared.read} records read, {valid} valid, "
            f"{len(prepared.rejects)} rejected")
    if prepared.rejects and not args.skip_invalid:
        print(f"{line}; nothing sent (fix the records or use --skip-invalid)")
        return 1
    delivered = failed = 0
    if prepared.messages:
        from streams import clients
        from streams.signing.signer import signer_for

        clients.require_kafka(settings)
        producer = make_producer(settings)
        registry = clients.registry(settings)
        signer = signer_for(settings, registry, catalog)
        if signer is None:
            print("ebi publish: no signing key (set signing_key_file, or run `ebi stack up` "
                  "for the local dev keyring): the records go out unsigned and a worker "
                  "that verifies signatures rejects them", file=sys.stderr)
        delivered, failed = send(prepared, settings, registry, producer, args.timeout,
                                 catalog, signer)
    print(f"{line}; {len(prepared.messages)} messages to {settings.topic(prepared.topic)}: "
          f"{delivered} delivered, {failed} failed"
          + (f"; rejects written to {rejects_path}" if rejects_path else ""))
    return 1 if prepared.rejects or failed else 0
