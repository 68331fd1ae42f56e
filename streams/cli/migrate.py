"""``ebi migrate``: create or upgrade the ClickHouse tables, rollups and views."""

from __future__ import annotations

import argparse
import sys

from schemas.catalog import load_catalog
from sinks.clickhouse import ClickHouseError
from sinks.clickhouse.migrations import migrate
from sinks.store import open_store
from streams.settings import Settings


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="print nothing when up to date")


def run(args: argparse.Namespace, settings: Settings) -> int:
    backend = open_store(settings, "migrate", create_database=True)
    if backend is None:
        return 1
    try:
        report = migrate(backend, progress=None if args.quiet else
                         (lambda step: print(f"  applying {step}")),
                         catalog=load_catalog(settings.catalog))
    except ClickHouseError as exc:
        print(f"ebi migrate: failed: {exc}", file=sys.stderr)
        return 1
    finally:
        backend.close()
    if report.applied or not args.quiet:
        print(f"{backend.config.display} (ClickHouse {backend.features.version_text}): "
              f"{report.summary()}")
    return 0
