"""Operators' commands about alarms: the ``alarm_command`` record type (AlarmCommand on
``alarm.commands``, written by the ``operator`` role).

``ebi alarms ack ID --by NAME --note ...`` sends one (:func:`acknowledgement`), keyed by the
home that the alarm id names, so it reaches the worker that keeps the alarm's book. The
processor answers with the ACKNOWLEDGED AlarmEvent (Alertmanager silences the alarm, the
ClickHouse view ``alarms`` records who and when); a command about an alarm that is not
active (never raised, or cleared already) is a dead letter, UNKNOWN_ALARM.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from schemas.records import Record, Source, dead_letter
from streams.alarms.book import AlarmBook, BookState, home_of
from streams.processors.common import Outputs, arrival_ms, canary_tag, rejection
from streams.records.rules import Violation, _strings, _times

if TYPE_CHECKING:
    from streams.policy import Policy
    from streams.processors.context import ProcessorContext


def check_command(command: Mapping[str, Any], policy: Policy, now_ms: int) -> list[Violation]:
    out = _times(command, ("issued_at",), policy, now_ms) + _strings(command, policy,
                                                                        texts=("note",))
    alarm = str(command.get("alarm_id") or "")
    home = home_of(alarm)
    if not home:
        out.append(Violation("alarm_id", "UNKNOWN_ALARM",
                             f"{alarm[:policy.limits.max_id]!r} is not an alarm id "
                             "(<16 hex digits>@<home>, as in the alarm's notification)"))
    elif command.get("home") != home:
        out.append(Violation("home", "WRONG_HOME", f"{str(command.get('home'))[:80]!r} is not "
                             f"the home of alarm {alarm} ({home})"))
    if not str(command.get("by") or "").strip():
        out.append(Violation("by", "MISSING", "the operator's name is empty"))
    return out


def acknowledgement(alarm: str, by: str, note: str | None, now_ms: int) -> Record:
    """The command ``ebi alarms ack`` sends (ValueError for an id that is no alarm id)."""
    home = home_of(alarm)
    if not home:
        raise ValueError(f"{alarm!r} is not an alarm id: expected <16 hex digits>@<home>, as "
                         "in the label alarm_id of the notification")
    return {"command_id": uuid.uuid4().hex, "alarm_id": alarm, "home": home,
            "action": "ACKNOWLEDGE", "by": by, "note": note or None, "issued_at": now_ms,
            "tag": canary_tag(home)}


class AlarmCommandProcessor:
    def __init__(self, ctx: ProcessorContext) -> None:
        self.policy = ctx.policy
        self.book = AlarmBook(ctx)

    def process(self, command: Record, source: Source, key: bytes | None, value: bytes,
                state: BookState | None, now_ms: int) -> tuple[Outputs, BookState | None]:
        out = Outputs()
        problems = check_command(command, self.policy, arrival_ms(source, now_ms))
        alarm = str(command["alarm_id"])
        where = f"{command['action']} of alarm {alarm[:self.policy.limits.max_id]} by " \
                f"{str(command['by'])[:self.policy.limits.max_id]}"
        events = None if problems or state is None else \
            self.book.acknowledge(state, str(command["home"]), command)
        if events is None:
            code, why = rejection(problems) if problems else (
                "UNKNOWN_ALARM", f"alarm {alarm} is not active (never raised, or cleared "
                                 "already)")
            out.dead_letters.append(dead_letter(source, key, value, code, f"{where}: {why}",
                                                "validate", now_ms,
                                                record_id=str(command["command_id"])[:200],
                                                tag=command.get("tag")))
            return out, None
        out.alarms.extend(events)
        return out, state
