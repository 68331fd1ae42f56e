"""``ebi schemas register | check | release``.

register: registers every topic's schema under ``<topic>-value``, sets BACKWARD_TRANSITIVE on
the subject and prints ``subject -> id``.
check: compares each local .avsc with ALL registered versions of its subject, locally
(:mod:`schemas.compat`, naming the field and the rule) and through the registry's
compatibility endpoint; exits non-zero on any incompatible change. The local check defaults
to FULL_TRANSITIVE: besides BACKWARD_TRANSITIVE (what the registry enforces), workers still
running an older schema must read what upgraded gateways write during a rolling upgrade.
check --released: offline, no registry: each local .avsc against its released versions in
``schemas/releases/`` under its topic's rule (:mod:`schemas.gate`; ``make test`` runs it).
Both checks also fail on a field without a valid ``classification``
(:mod:`schemas.classification`).
release VERSION: copies the current schemas into ``schemas/releases/VERSION``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from schemas import compat
from schemas.catalog import Catalog, default_catalog, load_catalog, subject
from schemas.registry import COMPATIBILITY
from streams.settings import Settings


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["register", "check", "release"])
    parser.add_argument("version", nargs="?", help="release: the version to record (e.g. 0.2.0)")
    parser.add_argument("--released", action="store_true",
                        help="check: against the released schemas in the repository, offline")
    parser.add_argument("--topic", action="append", dest="topics", metavar="NAME",
                        help="only this logical topic (repeatable); default: all")
    parser.add_argument("--local-mode", default="FULL_TRANSITIVE", choices=compat.MODES,
                        help="rule for the local check (default FULL_TRANSITIVE)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams import clients

    if args.action == "release":
        return release(args.version)
    if args.action == "check" and args.released:
        return check_released()
    registry = clients.registry(settings)
    catalog = load_catalog(settings.catalog)
    known = [t.name for t in catalog.all_topics()]
    topics = args.topics or known
    unknown = [t for t in topics if t not in known]
    if unknown:
        print(f"ebi schemas: unknown topic(s) {', '.join(unknown)}; known: "
              f"{', '.join(known)}", file=sys.stderr)
        return 2
    if args.action == "register":
        return register(settings, registry, topics, catalog=catalog)
    return check(settings, registry, topics, args.local_mode, catalog=catalog)


def register(settings: Settings, registry: Any, topics: list[str],
             out: TextIO | None = None, catalog: Catalog | None = None) -> int:
    out = out or sys.stdout
    catalog = catalog or default_catalog()
    for name in topics:
        subj = subject(settings.topic(name))
        schema_id = registry.register(subj, _text(catalog, name))
        registry.set_compatibility(subj, COMPATIBILITY)
        print(f"{subj} -> {schema_id}", file=out)
    return 0


def check_classification(catalog: Catalog, out: TextIO) -> int:
    """Print every field without a valid classification; the number of them."""
    from schemas.classification import CLASSES, store_problems

    found = store_problems(catalog.schemas)
    for line in found:
        print(f"UNCLASSIFIED {line}", file=out)
    if found:
        print(f"{len(found)} field(s) without a valid classification: give each field "
              f"\"classification\": one of {', '.join(CLASSES)} (schemas/classification.py, "
              "docs/security.md)", file=out)
    else:
        print(f"classification: every field of {len(catalog.schemas.names())} schema(s) "
              "classified", file=out)
    return len(found)


def check_released(out: TextIO | None = None) -> int:
    from schemas import gate

    out = out or sys.stdout
    unclassified = check_classification(default_catalog(), out)
    results = gate.check(default_catalog())
    for r in results:
        if r.ok:
            print(f"{r.record}: {r.rule}, compatible with {r.releases} release(s)", file=out)
        for line in r.problems:
            print(f"{r.record}: INCOMPATIBLE {line}", file=out)
    failed = [r.record for r in results if not r.ok]
    if failed:
        print(f"{len(failed)} schema(s) break their rule against a release: make the change "
              "compatible (add fields with defaults, do not change types) or give the record a "
              "new name on a new topic (schemas/releases/README.md)", file=out)
    return 1 if failed or unclassified else 0


def release(version: str | None) -> int:
    from pathlib import Path

    from schemas import gate

    if not version:
        print("ebi schemas release: give the version to record, e.g. 0.2.0", file=sys.stderr)
        return 2
    root = Path(str(gate.releases_dir()))
    try:
        target = gate.release(default_catalog(), version, root)
    except FileExistsError as exc:
        print(f"ebi schemas release: {exc}", file=sys.stderr)
        return 1
    print(f"released schemas recorded in {target}")
    return 0


def _text(catalog: Catalog, topic: str) -> str:
    return catalog.schemas.text(catalog.topic(topic).record)


def registered_versions(registry: Any, subj: str) -> list[tuple[int, str]]:
    """``(version, schema text)`` of every version of ``subj``, oldest first; [] if none."""
    if hasattr(registry, "versions"):   # test fakes
        return list(registry.versions(subj))
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    try:
        numbers = registry.client.get_versions(subj)
    except SchemaRegistryError as exc:
        if exc.http_status_code == 404:
            return []
        raise
    return [(int(n), registry.client.get_version(subj, n).schema.schema_str)
            for n in sorted(numbers)]


def check(settings: Settings, registry: Any, topics: list[str],
          mode: str = "FULL_TRANSITIVE", out: TextIO | None = None,
          catalog: Catalog | None = None) -> int:
    out = out or sys.stdout
    catalog = catalog or default_catalog()
    unclassified = check_classification(catalog, out)
    failed = 0
    for name in topics:
        subj = subject(settings.topic(name))
        text = _text(catalog, name)
        versions = registered_versions(registry, subj)
        if not versions:
            print(f"{subj}: not registered yet, nothing to check", file=out)
            continue
        problems = compat.check(text, versions, mode)
        remote = registry.is_compatible(subj, text)
        if not remote and not problems:
            record = catalog.topic(name).record
            problems = [f"{record}: the registry reports the local schema incompatible with "
                        f"{subj} ({COMPATIBILITY})"]
        if problems:
            failed += 1
            for line in problems:
                print(f"{subj}: INCOMPATIBLE {line}", file=out)
        else:
            print(f"{subj}: compatible with {len(versions)} registered version(s)", file=out)
    if failed:
        print(f"{failed} subject(s) incompatible; register the change as a new topic or make "
              "it compatible (add fields with defaults, do not change types)", file=out)
    return 1 if failed or unclassified else 0
