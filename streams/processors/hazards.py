"""Hidden-danger (隐患) records: validation, version deduplication and overdue rectification.

State per hazard_id (:class:`HazardState`, the ``hazards`` table value):

- ``versions``: version (as a string: a JSON object key) -> packed source coordinates of the
  message that carried it, for the last ``VERSIONS`` versions;
- ``max_version``: the highest version seen;
- ``alerted_deadline``: the rectification deadline (ms) whose HAZARD_OVERDUE alert was
  raised (0: none), so a deadline is alerted once, not once per version past it;
- ``applied``: packed coordinates of the last message applied to this state;
- ``enterprise_id``: the enterprise of the latest accepted signed version, kept by the
  worker's signing rules (:mod:`streams.signing.senders`; the catalog's ``Signed.owner``):
  a later signed version must come from a key of that enterprise. Absent in older states
  and when signatures are not verified.

A version seen before under other coordinates is a duplicate (ledgered with
``duplicate=true``); an older version arriving late is kept (ClickHouse keeps the highest
version). States written before these field names are converted when first read
(:mod:`.layouts`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NotRequired, TypedDict

from schemas.records import Record, Source, dead_letter
from streams.processors.common import (
    Outputs,
    already_applied,
    arrival_ms,
    canary_tag,
    make_alert,
    rejection,
)
from streams.records.rules import check_hazard

if TYPE_CHECKING:
    from streams.processors.context import ProcessorContext

VERSIONS = 32


class HazardState(TypedDict):
    """One hidden-danger record's state (see the module docstring)."""

    versions: dict[str, int]
    max_version: int
    alerted_deadline: int
    applied: NotRequired[int]
    enterprise_id: NotRequired[str]


class HazardProcessor:
    def __init__(self, ctx: ProcessorContext) -> None:
        self.policy = ctx.policy
        self.reference = ctx.reference
        self.metrics = ctx.metrics

    def missing_reference(self, rec: Record) -> bool:
        return rec["enterprise_id"] not in self.reference.enterprises

    def process(self, rec: Record, source: Source, key: bytes | None, value: bytes,
                state: HazardState | None, now_ms: int) -> tuple[Outputs, HazardState | None]:
        if already_applied(state, "applied", source):
            return Outputs(replay=True), state
        out = Outputs()
        hazard_id, version, enterprise = rec["hazard_id"], rec["version"], rec["enterprise_id"]
        tag = canary_tag(hazard_id, enterprise)
        arrival = arrival_ms(source, now_ms)
        where = f"hazard {hazard_id} version {version}"
        problems = check_hazard(rec, self.policy, arrival)
        if problems:
            code, why = rejection(problems)
        elif enterprise not in self.reference.enterprises:
            code, why = "UNKNOWN_ENTERPRISE", f"enterprise {enterprise} is not registered"
        else:
            code = ""
        if code:
            out.dead_letters.append(dead_letter(source, key, value, code, f"{where}: {why}",
                                                "validate", now_ms, record_id=hazard_id, tag=tag))
            return out, state
        if state is None:
            state = {"versions": {}, "max_version": -1, "alerted_deadline": 0}
        seen = state["versions"].get(str(version))
        duplicate = seen is not None and seen != source.packed
        deadline = rec.get("rectification_deadline")
        overdue = rec["status"] != "CLOSED" and deadline is not None and arrival > deadline
        if duplicate:
            self.metrics.duplicates.labels("hazard").inc()
        else:
            versions = state["versions"]
            versions[str(version)] = source.packed
            if len(versions) > VERSIONS:
                for old in sorted(versions, key=int)[:-VERSIONS]:
                    del versions[old]
            state["max_version"] = max(state["max_version"], version)
            if overdue and deadline is not None and state["alerted_deadline"] != deadline \
                    and version >= state["max_version"]:
                state["alerted_deadline"] = deadline
                out.alerts.append(make_alert(
                    "HAZARD_OVERDUE", "hazard", hazard_id, deadline, now_ms,
                    f"{where} ({rec['level']}, {rec['category']}) at enterprise {enterprise} is "
                    f"{rec['status']} past its rectification deadline {deadline}",
                    enterprise_id=enterprise, region_code=rec["region_code"],
                    value=(arrival - deadline) / 1000, tag=tag))
        state["applied"] = source.packed
        out.clean = dict(rec)
        out.clean.update(source=source.record(), received_at=now_ms, duplicate=duplicate,
                         overdue=overdue)
        return out, state
