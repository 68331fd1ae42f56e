"""``ebi schemas register | check``.

register: registers every topic's schema under ``<topic>-value``, sets BACKWARD_TRANSITIVE on
the subject and prints ``subject -> id``.
check: compares each local .avsc with ALL registered versions of its subject, locally
(:mod:`schemas.compat`, naming the field and the rule) and through the registry's
compatibility endpoint; exits non-zero on any incompatible change. The local check defaults
to FULL_TRANSITIVE: besides BACKWARD_TRANSITIVE (what the registry enforces), workers still
running an older schema must read what upgraded gateways write during a rolling upgrade.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from schemas import compat
from schemas.catalog import default_catalog, subject
from schemas.registry import COMPATIBILITY
from streams.settings import Settings


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["register", "check"])
    parser.add_argument("--topic", action="append", dest="topics", metavar="NAME",
                        help="only this logical topic (repeatable); default: all")
    parser.add_argument("--local-mode", default="FULL_TRANSITIVE", choices=compat.MODES,
                        help="rule for the local check (default FULL_TRANSITIVE)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams import clients

    registry = clients.registry(settings)
    known = [t.name for t in default_catalog().all_topics()]
    topics = args.topics or known
    unknown = [t for t in topics if t not in known]
    if unknown:
        print(f"ebi schemas: unknown topic(s) {', '.join(unknown)}; known: "
              f"{', '.join(known)}", file=sys.stderr)
        return 2
    if args.action == "register":
        return register(settings, registry, topics)
    return check(settings, registry, topics, args.local_mode)


def register(settings: Settings, registry: Any, topics: list[str],
             out: TextIO | None = None) -> int:
    out = out or sys.stdout
    for name in topics:
        subj = subject(settings.topic(name))
        schema_id = registry.register(subj, _text(name))
        registry.set_compatibility(subj, COMPATIBILITY)
        print(f"{subj} -> {schema_id}", file=out)
    return 0


def _text(topic: str) -> str:
    catalog = default_catalog()
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
          mode: str = "FULL_TRANSITIVE", out: TextIO | None = None) -> int:
    out = out or sys.stdout
    failed = 0
    for name in topics:
        subj = subject(settings.topic(name))
        text = _text(name)
        versions = registered_versions(registry, subj)
        if not versions:
            print(f"{subj}: not registered yet, nothing to check", file=out)
            continue
        problems = compat.check(text, versions, mode)
        remote = registry.is_compatible(subj, text)
        if not remote and not problems:
            record = default_catalog().topic(name).record
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
    return 1 if failed else 0
