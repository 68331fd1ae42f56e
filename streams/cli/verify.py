"""``ebi verify``: re-check the signatures of stored records (:mod:`streams.signing.stored`).

For every signed record type's table (or ``--table``), the messages received since
``--since`` (default 30 days), at most ``--limit`` rows per table: each is VERIFIED against
the registered key of its sender and, field by field, against the bytes the sender signed
(kept in the table for incident reports and hidden dangers, read again from the input topic
for telemetry and heartbeats while Kafka retains them). Lists every message that is not
VERIFIED; exit status 1 when any is UNKNOWN_KEY, BAD_SIGNATURE, TAMPERED or (unless
``--allow-unsigned``) UNSIGNED.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from streams.settings import Settings

SHOWN = 50


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", action="append", dest="tables", metavar="NAME",
                        help="only this table (repeatable); default: every signed one")
    parser.add_argument("--since", default="30d", help="received at or after (ISO time in "
                        "UTC, or 24h, 7d; default 30d)")
    parser.add_argument("--limit", type=int, default=1_000_000,
                        help="rows read per table (default 1,000,000)")
    parser.add_argument("--allow-unsigned", action="store_true",
                        help="rows stored without a signature are not failures")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.catalog import load_catalog
    from sinks.clickhouse import ClickHouseError
    from sinks.clickhouse.config import parse_url
    from sinks.store import open_store
    from streams import clients
    from streams.cli.report import parse_time
    from streams.signing.registered import read_keys
    from streams.signing.stored import StoredVerifier, kafka_fetch
    from streams.signing.trust import default_trust_file, load_trust

    catalog = load_catalog(settings.catalog)
    try:
        since = parse_time(args.since, dt.datetime.now(dt.UTC))
    except ValueError as exc:
        print(f"ebi verify: bad --since: {exc}", file=sys.stderr)
        return 2
    clients.require_kafka(settings)
    registry = clients.registry(settings)
    trust = default_trust_file(settings)
    anchors = load_trust(trust) if trust.exists() else None
    if anchors is None:
        print(f"ebi verify: no trust file {trust}: the key registrations are taken as they "
              "are on the keys topic, unverified", file=sys.stderr)
    registered = read_keys(settings, registry, catalog, anchors)
    for line in registered.rejected[:10]:
        print(f"ebi verify: key registration not accepted: {line}", file=sys.stderr)
    backend = open_store(settings, "verify")
    if backend is None:
        return 1
    checker = StoredVerifier(backend, parse_url(settings.clickhouse).database, catalog,
                             registered.keys, registry, kafka_fetch(settings))
    kinds = checker.kinds(args.tables or ())
    if args.tables and len(kinds) != len(set(args.tables)):
        known = ", ".join(k.table.name for k in checker.kinds() if k.table is not None)
        print(f"ebi verify: not a signed record type's table: {', '.join(args.tables)}; "
              f"known: {known}", file=sys.stderr)
        return 2
    failed = 0
    try:
        for kind in kinds:
            report = checker.check(kind, int(since.timestamp()), args.limit)
            print(report.summary())
            for finding in report.findings[:SHOWN]:
                print(f"  {finding.line()}")
            if len(report.findings) > SHOWN:
                print(f"  ... and {len(report.findings) - SHOWN} more")
            failed += report.failed(args.allow_unsigned)
    except ClickHouseError as exc:
        print(f"ebi verify: {exc}", file=sys.stderr)
        return 1
    finally:
        backend.close()
    print(f"ebi verify: {len(registered.keys)} registered key(s); "
          + (f"{failed} message(s) FAILED" if failed else "every stored message checked is "
             "its sender's, as signed (or unchecked where said)"))
    return 1 if failed else 0
