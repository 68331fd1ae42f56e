"""The hidden-danger (隐患) rules of the policy: ``[hazards]`` (see default.toml)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from streams.policy.sections import Section


@dataclass(frozen=True)
class HazardPolicy:
    """When a hidden danger not closed by its rectification deadline is alerted, how often a
    major one (重大隐患) is alerted again, which status changes are allowed, and when a closed
    one leaves the worker's state."""

    overdue_source: str
    major_repeat_every: timedelta    # HAZARD_OVERDUE again for an open major danger
    major_repeat_source: str
    first_version: int               # the version a hidden danger starts at (must be FOUND)
    transitions_source: str
    forget_closed_after: timedelta   # a CLOSED hazard's state is dropped this long after
    forget_source: str


DEFAULT_HAZARDS = HazardPolicy(
    overdue_source="Work Safety Law art. 41; SAWS order 16 art. 15 (rectification within the "
                   "time limit of the plan)",
    major_repeat_every=timedelta(hours=24),
    major_repeat_source="Site default for listed supervision (挂牌督办) of major dangers",
    first_version=1, transitions_source="SAWS order 16 arts. 10-18: found, rectified, closed",
    forget_closed_after=timedelta(days=90),
    forget_source="Platform default: a closed danger's replays are ignored for 90 days")


def hazard_policy(data: dict[str, Any]) -> HazardPolicy:
    """``[hazards]`` of a policy file (absent keys: the defaults above)."""
    d, s = DEFAULT_HAZARDS, Section(data, "hazards")
    policy = HazardPolicy(
        overdue_source=s.text("overdue_source", d.overdue_source),
        major_repeat_every=s.duration("major_repeat_every", "24h"),
        major_repeat_source=s.text("major_repeat_source", d.major_repeat_source),
        first_version=s.count("first_version", d.first_version, least=0),
        transitions_source=s.text("transitions_source", d.transitions_source),
        forget_closed_after=s.duration("forget_closed_after", "90d"),
        forget_source=s.text("forget_source", d.forget_source))
    s.done()
    return policy
