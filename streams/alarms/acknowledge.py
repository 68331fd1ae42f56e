"""``ebi alarms ack``: send an operator's acknowledgement and, if asked, wait for the answer.

The command goes to the catalog's alarm command topic (record AlarmCommand), keyed by the
alarm's home; the worker keeping the alarm answers on the alarm events topic (ACKNOWLEDGED,
with the operator and the note) or, for an alarm that is not active, with a dead letter
whose record id is the command id.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from schemas.catalog import load_catalog
from schemas.catalog.model import Catalog, RecordType, resolve
from streams.alarms.commands import acknowledgement
from streams.settings import Settings

COMMAND_RECORD = "AlarmCommand"


def command_type(catalog: Catalog) -> RecordType:
    """The record type operators' alarm commands are (the one reading AlarmCommand)."""
    for kind in catalog.types:
        if kind.input.record == COMMAND_RECORD:
            return kind
    raise KeyError(f"the catalog has no record type of {COMMAND_RECORD}")


def acknowledge(settings: Settings, alarm: str, by: str, note: str, wait: float,
                out: Any = None, err: Any = None) -> int:
    """0: sent (and, with ``wait``, acknowledged); 1: refused or no answer; 2: bad input."""
    from streams import clients
    from streams.kafkaio import OutputReader, publish

    out = out or sys.stdout
    err = err or sys.stderr
    catalog = load_catalog(settings.catalog)
    kind = command_type(catalog)
    try:
        command = acknowledgement(alarm, by.strip(), note.strip() or None, int(time.time() * 1000))
    except ValueError as exc:
        print(f"ebi alarms ack: {exc}", file=err)
        return 2
    problems = resolve(kind.checks)(command, _policy(settings), command["issued_at"])
    if problems:
        print(f"ebi alarms ack: {'; '.join(p.line() for p in problems)}", file=err)
        return 2
    answers = (catalog.output("alarm").topic.name, catalog.output("deadletter").topic.name)
    start = OutputReader.end_offsets(settings, answers) if wait > 0 else None
    registry = clients.registry(settings)
    [(topic, partition, offset)] = publish(settings, registry,
                                           [(kind.input.name, command["home"], command)],
                                           catalog=catalog)
    print(f"ebi alarms ack: acknowledgement of alarm {alarm} by {command['by']} sent to "
          f"{topic}[{partition}]@{offset} (command {command['command_id']})", file=out)
    if start is None:
        return 0
    reader = OutputReader(settings, registry, answers, start=start, catalog=catalog)
    try:
        found: list[Any] = []

        def answered(outputs: list[Any]) -> bool:
            found[:] = [o for o in outputs if _answers(o.record, command)]
            return bool(found)

        if not reader.until(answered, wait):
            print(f"ebi alarms ack: no answer within {wait:g} s (is the worker running and "
                  "caught up?); the command stays in Kafka and is applied when it is",
                  file=err)
            return 1
    finally:
        reader.close()
    record = found[0].record
    if "error_code" in record:
        print(f"ebi alarms ack: refused: {record['error_code']}: {record['error_message']}",
              file=err)
        return 1
    print(f"ebi alarms ack: alarm {alarm} ({record['alarm_type']} on {record['subject_type']} "
          f"{record['subject_id']}) acknowledged by {record['acknowledged_by']}", file=out)
    return 0


def _answers(record: dict[str, Any], command: dict[str, Any]) -> bool:
    if "error_code" in record:
        return bool(record.get("record_id") == command["command_id"])
    return bool(record.get("alarm_id") == command["alarm_id"]
                and record.get("transition") == "ACKNOWLEDGED"
                and record.get("acknowledged_by") == command["by"]
                and record.get("note") == command["note"])


def _policy(settings: Settings) -> Any:
    from streams.policy import load_policy

    return load_policy(settings.policy_file or None)
