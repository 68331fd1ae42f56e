"""Grading a report by its own figures, and the concealment check that compares like with
like.

- Production-safety accidents: Decree 493 art. 3 (:func:`streams.records.rules.implied_level`),
  compared with ``declared_level``.
- Natural disasters: the national relief plan's response levels (policy
  ``[[disaster_response]]``: dead and missing together, people relocated or assisted, houses
  collapsed or severely damaged in rooms or households, drought-assisted people as a number
  or as a share of ``farming_population``), compared with ``declared_response``; a report
  without one declares the response its ``declared_level`` stands for
  (:data:`RESPONSE_FOR_LEVEL`). Decree 493 is never applied to a disaster: a landslide with
  12 dead is below Level IV (20 dead and missing), whatever its declared level.

For disasters the clean record's ``implied_level`` is the accident level standing for the
implied response (:data:`LEVEL_FOR_RESPONSE`), so ``declared_level`` and ``implied_level``
stay comparable in one scale; ``implied_response`` holds the response itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streams.policy.incidents import RESPONSE_RANK, Escalation, ResponseRow
from streams.processors.common import LEVEL_RANK
from streams.records.rules import implied_level

DISASTER = "NATURAL_DISASTER"
# the declared_level of a disaster report without declared_response stands for ...
RESPONSE_FOR_LEVEL = {"ORDINARY": "LEVEL_IV", "RELATIVELY_SERIOUS": "LEVEL_III",
                      "SERIOUS": "LEVEL_II", "ESPECIALLY_SERIOUS": "LEVEL_I"}
# ... and a response level is shown in the accident scale as
LEVEL_FOR_RESPONSE = {"NONE": "ORDINARY", "LEVEL_IV": "ORDINARY",
                      "LEVEL_III": "RELATIVELY_SERIOUS", "LEVEL_II": "SERIOUS",
                      "LEVEL_I": "ESPECIALLY_SERIOUS"}


@dataclass(frozen=True, slots=True)
class Grade:
    """A report's grade: what it declares and what its figures imply, in its kind's scale."""

    implied_level: str              # accident scale (disasters: LEVEL_FOR_RESPONSE)
    declared: str                   # accidents: declared_level; disasters: declared response
    implied: str                    # accidents: implied_level; disasters: implied response
    disaster: bool

    @property
    def concealed(self) -> bool:
        """The declared grade is below what the report's own figures imply (瞒报?)."""
        rank = RESPONSE_RANK if self.disaster else LEVEL_RANK
        return rank[self.declared] < rank[self.implied]

    @property
    def implied_response(self) -> str | None:
        return self.implied if self.disaster else None

    @property
    def response(self) -> str:
        """Disasters: the higher of declared and implied response ("" for accidents)."""
        if not self.disaster:
            return ""
        return max(self.declared, self.implied, key=RESPONSE_RANK.__getitem__)


def dead_missing(figures: Mapping[str, Any]) -> int:
    return int(figures.get("deaths", 0) or 0) + int(figures.get("missing", 0) or 0)


def implied_response(figures: Mapping[str, Any], rows: tuple[ResponseRow, ...]) -> str:
    """The first row (highest level first) any of whose bounds the figures reach; NONE."""
    dm = dead_missing(figures)
    relocated = figures.get("relocated_or_assisted", 0) or 0
    rooms = figures.get("houses_collapsed_rooms", 0) or 0
    households = figures.get("houses_collapsed_households", 0) or 0
    drought = figures.get("drought_assisted_population", 0) or 0
    farming = figures.get("farming_population", 0) or 0
    for row in rows:
        if (_reaches(dm, row.dead_missing) or _reaches(relocated, row.relocated_or_assisted)
                or _reaches(rooms, row.houses_collapsed_rooms)
                or _reaches(households, row.houses_collapsed_households)
                or _reaches(drought, row.drought_assisted_population)
                or (drought > 0 and farming > 0
                    and drought >= row.drought_assisted_share * farming)):
            return row.level
    return "NONE"


def _reaches(value: float, bound: int) -> bool:
    """A bound of 0 is a criterion the policy does not use."""
    return bound > 0 and value >= bound


def grade(report: Mapping[str, Any], rows: tuple[ResponseRow, ...]) -> Grade:
    if report["kind"] == DISASTER:
        implied = implied_response(report, rows)
        declared = report.get("declared_response") or RESPONSE_FOR_LEVEL[report["declared_level"]]
        return Grade(LEVEL_FOR_RESPONSE[implied], declared, implied, True)
    level = implied_level(report["deaths"], report.get("serious_injuries", 0),
                          report.get("direct_economic_loss_cny", 0.0))
    return Grade(level, report["declared_level"], level, False)


def escalation_met(figures: Mapping[str, Any], rule: Escalation) -> bool:
    """A disaster large enough to go to the province and the ministry at once."""
    return (_reaches(dead_missing(figures), rule.dead_missing)
            or _reaches(figures.get("houses_collapsed_rooms", 0) or 0,
                        rule.houses_collapsed_rooms)
            or _reaches(figures.get("houses_collapsed_households", 0) or 0,
                        rule.houses_collapsed_households))


def describe(figures: Mapping[str, Any]) -> str:
    """The figures a disaster is graded by, for alert messages."""
    parts = [f"dead and missing {dead_missing(figures)}"]
    for name, label in (("relocated_or_assisted", "relocated or assisted"),
                        ("houses_collapsed_rooms", "houses collapsed (rooms)"),
                        ("houses_collapsed_households", "houses collapsed (households)"),
                        ("drought_assisted_population", "drought-assisted")):
        if figures.get(name):
            parts.append(f"{label} {figures[name]}")
    return ", ".join(parts)
