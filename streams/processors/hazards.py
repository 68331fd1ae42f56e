"""Hidden-danger (隐患) records: validation, version deduplication, status order, and the
rectification clock.

State per hazard_id (:class:`HazardState`, the ``hazards`` table value):

- ``versions``: version (as a string: a JSON object key) -> packed source coordinates of the
  message that carried it, for the last ``VERSIONS`` versions;
- ``statuses``: version -> its status, for the same versions (absent in states written
  before it: the status order is then checked from the next version on);
- ``max_version``: the highest version seen;
- ``status``, ``level``, ``deadline`` (ms, 0: none), ``enterprise_id``, ``region_code``,
  ``category``: those of the highest version (absent before the first version this layout
  wrote: the clock ignores such a state until its next version);
- ``closed_at``: arrival time (ms) of the highest version when it is CLOSED, else 0;
- ``alerted_deadline``: the rectification deadline (ms) whose HAZARD_OVERDUE alert was
  raised (0: none), so a deadline is alerted once, not once per version past it;
- ``repeats``: how many repeated HAZARD_OVERDUE alerts of a major danger were raised for
  ``alerted_deadline``;
- ``applied``: packed coordinates of the last message applied to this state;
- ``enterprise_id``: the enterprise of the latest accepted version; with signatures verified
  the worker's signing rules (:mod:`streams.signing.senders`; the catalog's ``Signed.owner``)
  hold a later signed version to a key of that enterprise.

A version seen before under other coordinates is a duplicate (ledgered with
``duplicate=true``); one that says something else than before (another status) is also a
VERSION_CONFLICT. An older version arriving late is kept (ClickHouse keeps the highest
version) and checked against its neighbours.

**Status order** (the state machine, by version, not by arrival; policy ``[hazards]``)::

    (start) --> FOUND --> RECTIFYING --> CLOSED
                  |  \\______________________^ |
                  |                            +--> CLOSED (an update of a closed record)
                  +--> FOUND, RECTIFYING --> RECTIFYING (updates)

The version a hidden danger starts at (``first_version``) must be FOUND; RECTIFYING never
goes back to FOUND; nothing follows CLOSED but CLOSED (a danger that recurs is a new hidden
danger, with a new hazard_id). A version that breaks the order is kept and stored, flagged
INVALID_TRANSITION on the clean record, with a HAZARD_TRANSITION_INVALID alert.

**The clock** (:class:`HazardClock`, a due-index clock): HAZARD_OVERDUE at the rectification
deadline of a hidden danger whose highest version is not CLOSED (the same alert id as when a
late update finds it overdue, so it is raised once); for a MAJOR one again every
``major_repeat_every`` while it stays open (repeat *n* is dated deadline + n x the period); a
CLOSED one leaves the state ``forget_closed_after`` after it was closed. States written before
these field names are converted when first read (:mod:`.layouts`).
"""

from __future__ import annotations

from collections.abc import Callable
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
from streams.processors.timetext import local_time, span
from streams.records.rules import check_hazard

if TYPE_CHECKING:
    from streams.policy import Policy
    from streams.processors.base import StateStore
    from streams.processors.context import ProcessorContext

VERSIONS = 32
DAY_MS = 86_400_000
STATUSES = ("FOUND", "RECTIFYING", "CLOSED")
# status of a version -> the statuses the next version may have
NEXT: dict[str, frozenset[str]] = {
    "FOUND": frozenset(STATUSES),
    "RECTIFYING": frozenset({"RECTIFYING", "CLOSED"}),
    "CLOSED": frozenset({"CLOSED"}),
}


class HazardState(TypedDict):
    """One hidden-danger record's state (see the module docstring)."""

    versions: dict[str, int]
    max_version: int
    alerted_deadline: int
    applied: NotRequired[int]
    statuses: NotRequired[dict[str, str]]
    status: NotRequired[str]
    level: NotRequired[str]
    deadline: NotRequired[int]
    enterprise_id: NotRequired[str]
    region_code: NotRequired[str]
    category: NotRequired[str]
    closed_at: NotRequired[int]
    repeats: NotRequired[int]


def transition_problems(statuses: dict[str, str], version: int, status: str,
                        first_version: int) -> list[str]:
    """Why ``status`` at ``version`` breaks the status order, against the nearest known
    versions below and above it (empty: it does not)."""
    known = sorted(int(v) for v in statuses if int(v) != version)
    below = [v for v in known if v < version]
    above = [v for v in known if v > version]
    out = []
    if below:
        prev = below[-1]
        if status not in NEXT[statuses[str(prev)]]:
            out.append(f"{statuses[str(prev)]} (version {prev}) cannot be followed by "
                       f"{status} (version {version})")
    elif version <= first_version and status != "FOUND":
        out.append(f"version {version} is the first of the hidden danger and must be FOUND, "
                   f"not {status}")
    if above:
        nxt = above[0]
        if statuses[str(nxt)] not in NEXT[status]:
            out.append(f"{status} (version {version}) cannot be followed by "
                       f"{statuses[str(nxt)]} (version {nxt})")
    return out


class HazardRules:
    """The rectification clock's arithmetic, shared by the processor and the clock."""

    def __init__(self, policy: Policy) -> None:
        rules = policy.hazards
        self.first_version = rules.first_version
        self.repeat_ms = int(rules.major_repeat_every.total_seconds() * 1000)
        self.forget_ms = int(rules.forget_closed_after.total_seconds() * 1000)

    def next_due(self, state: HazardState) -> int | None:
        status = state.get("status")
        if status is None:
            return None          # an earlier layout: from its next version on
        if status == "CLOSED":
            return state.get("closed_at", 0) + self.forget_ms
        deadline = state.get("deadline", 0)
        if not deadline:
            return None
        if state["alerted_deadline"] != deadline:
            return deadline + 1
        if state.get("level") == "MAJOR":
            return deadline + (state.get("repeats", 0) + 1) * self.repeat_ms
        return None

    def overdue_alerts(self, hazard_id: str, state: HazardState, at: int, now_ms: int,
                       reminders: bool = True) -> list[Record]:
        """HAZARD_OVERDUE alerts due at ``at`` (the arrival of a late update, or the clock's
        now), updating ``alerted_deadline`` and ``repeats``; the reminders of a major danger
        only with ``reminders`` (the clock's)."""
        deadline = state.get("deadline", 0)
        if state.get("status", "CLOSED") == "CLOSED" or not deadline or at <= deadline:
            return []
        n = (at - deadline) // self.repeat_ms     # reminder periods passed (major dangers)
        if state["alerted_deadline"] != deadline:  # first noticed: the reminders so far with it
            state["alerted_deadline"] = deadline
            state["repeats"] = n
            return [self._alert(hazard_id, state, deadline, at, now_ms, "")]
        if reminders and state.get("level") == "MAJOR" and n > state.get("repeats", 0):
            state["repeats"] = n
            return [self._alert(hazard_id, state, deadline + n * self.repeat_ms, at, now_ms,
                                f"repeat-{n}")]
        return []

    def _alert(self, hazard_id: str, state: HazardState, event_ms: int, at: int, now_ms: int,
               extra: str) -> Record:
        deadline = state.get("deadline", 0)
        late = at - deadline
        days = late // DAY_MS
        enterprise = state.get("enterprise_id", "")
        again = f" (reminder {extra.split('-')[-1]} for a major danger)" if extra else ""
        return make_alert(
            "HAZARD_OVERDUE", "hazard", hazard_id, event_ms, now_ms,
            f"hidden danger {hazard_id} ({state.get('level', '')}, {state.get('category', '')}) "
            f"at enterprise {enterprise} is {state.get('status', '')} past its rectification "
            f"deadline {local_time(deadline)}: {span(late)} overdue ({days} d){again}",
            enterprise_id=enterprise, region_code=state.get("region_code", ""),
            value=late / 1000, id_extra=extra, tag=canary_tag(hazard_id, enterprise))


class HazardProcessor:
    def __init__(self, ctx: ProcessorContext) -> None:
        self.policy = ctx.policy
        self.reference = ctx.reference
        self.metrics = ctx.metrics
        self.rules = HazardRules(ctx.policy)

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
        statuses = state.setdefault("statuses", {})
        status = rec["status"]
        seen = state["versions"].get(str(version))
        duplicate = seen is not None and seen != source.packed
        deadline = rec.get("rectification_deadline")
        overdue = status != "CLOSED" and deadline is not None and arrival > deadline
        flags: list[str] = []
        if duplicate:
            self.metrics.duplicates.labels("hazard").inc()
            before = statuses.get(str(version))
            if before is not None and before != status:
                flags.append("VERSION_CONFLICT")
                out.alerts.append(self._invalid(
                    rec, now_ms, [f"version {version} was {before} and is sent again as "
                                  f"{status}; a change needs a new version"], tag))
        else:
            wrong = transition_problems(statuses, version, status, self.rules.first_version)
            if wrong:
                flags.append("INVALID_TRANSITION")
                out.alerts.append(self._invalid(rec, now_ms, wrong, tag))
            versions = state["versions"]
            versions[str(version)] = source.packed
            statuses[str(version)] = status
            if len(versions) > VERSIONS:
                for old in sorted(versions, key=int)[:-VERSIONS]:
                    del versions[old]
                    statuses.pop(old, None)
            if version >= state["max_version"]:
                self._latest(state, rec, arrival)
                out.alerts += self.rules.overdue_alerts(hazard_id, state, arrival, now_ms,
                                                        reminders=False)
            state["max_version"] = max(state["max_version"], version)
        state["applied"] = source.packed
        out.clean = dict(rec)
        out.clean.update(source=source.record(), received_at=now_ms, duplicate=duplicate,
                         overdue=overdue)
        if flags:
            out.clean["flags"] = flags
        return out, state

    @staticmethod
    def _latest(state: HazardState, rec: Record, arrival: int) -> None:
        """The fields of the highest version (what the clock works from)."""
        deadline = rec.get("rectification_deadline") or 0
        if deadline != state.get("deadline", 0):
            state["repeats"] = 0
        state["status"], state["level"], state["deadline"] = rec["status"], rec["level"], deadline
        state["enterprise_id"], state["region_code"] = rec["enterprise_id"], rec["region_code"]
        state["category"] = rec["category"]
        state["closed_at"] = arrival if rec["status"] == "CLOSED" else 0

    @staticmethod
    def _invalid(rec: Record, now_ms: int, why: list[str], tag: str | None) -> Record:
        return make_alert(
            "HAZARD_TRANSITION_INVALID", "hazard", rec["hazard_id"], rec["updated_at"], now_ms,
            f"hidden danger {rec['hazard_id']} at enterprise {rec['enterprise_id']}: "
            + "; ".join(why), enterprise_id=rec["enterprise_id"],
            region_code=rec["region_code"], value=float(rec["version"]),
            id_extra=f"{rec['version']}:{rec['status']}", tag=tag)


class HazardClock:
    """The periodic part: overdue rectification at the deadline (and again for major
    dangers), closed hazards leaving the state; the open/overdue gauge."""

    def __init__(self, ctx: ProcessorContext) -> None:
        self.rules = HazardRules(ctx.policy)
        self.metrics = ctx.metrics

    def next_due(self, state: HazardState) -> int | None:
        return self.rules.next_due(state)

    @staticmethod
    def category(state: HazardState) -> str | None:
        status = state.get("status")
        if status is None or status == "CLOSED" or \
                canary_tag(state.get("enterprise_id", "")) is not None:
            return None
        deadline = state.get("deadline", 0)
        return "overdue" if deadline and state["alerted_deadline"] == deadline else "open"

    def tick(self, store: StateStore, now_ms: int,
             trusted: Callable[[int | None], bool]) -> tuple[Outputs, list[bytes]]:
        out = Outputs()
        changed: list[bytes] = []
        for key in store.owned_keys():
            state = store.get(key)
            if state is None or "status" not in state or not trusted(store.partition_of(key)):
                continue      # (reading a backlog: its CLOSED update may be waiting there)
            if state["status"] == "CLOSED":
                if now_ms >= state.get("closed_at", 0) + self.rules.forget_ms:
                    store.put(key, None)
                    changed.append(key)
                continue
            alerts = self.rules.overdue_alerts(key.decode(), state, now_ms, now_ms)
            if alerts:
                out.alerts += alerts
                changed.append(key)
        counts = getattr(store, "categories", None)
        if counts is not None:
            found = counts()
            for name in ("open", "overdue"):
                self.metrics.hazards.labels(name).set(found.get(name, 0))
        return out, changed
