"""The toy record type's checks, processor and catalog entry."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from schemas.catalog import default_catalog
from schemas.catalog.model import Catalog, Ledger, RecordType, State, Table, Topic, catalog_from
from schemas.records import Record, Source, dead_letter
from streams.policy import Policy
from streams.processors.common import Outputs, already_applied, make_alert
from streams.processors.context import ProcessorContext
from streams.records.rules import Violation

HERE = Path(__file__).parent
RISE_ALERT_M = 1.0


def check_well_level(record: Mapping[str, Any], policy: Policy, now_ms: int) -> list[Violation]:
    level = record.get("level_m")
    if isinstance(level, int | float) and not 0 <= level <= 500:
        return [Violation("level_m", "OUT_OF_RANGE", f"{level} m is not a well level")]
    return []


class WellLevelProcessor:
    """Per site: the last level and the reading ids seen; a rise of over 1 m is an alert."""

    def __init__(self, ctx: ProcessorContext) -> None:
        self.policy = ctx.policy

    def process(self, rec: Record, source: Source, key: bytes | None, value: bytes,
                state: dict[str, Any] | None, now_ms: int) -> tuple[Outputs, Any]:
        if already_applied(state, "applied", source):
            return Outputs(replay=True), state
        out = Outputs()
        problems = check_well_level(rec, self.policy, now_ms)
        if problems:
            out.dead_letters.append(dead_letter(source, key, value, problems[0].code,
                                                problems[0].message, "validate", now_ms,
                                                record_id=rec["reading_id"]))
            return out, state
        state = state or {"last_level": None, "seen": []}
        duplicate = rec["reading_id"] in state["seen"]
        rise = 0.0 if state["last_level"] is None else rec["level_m"] - state["last_level"]
        if not duplicate:
            state["seen"] = [*state["seen"], rec["reading_id"]][-16:]
            state["last_level"] = rec["level_m"]
            if rise > RISE_ALERT_M:
                out.alerts.append(make_alert(
                    "WELL_RISE", "site", rec["site_id"], rec["measured_at"], now_ms,
                    f"well level at {rec['site_id']} rose {rise:.2f} m", value=rise,
                    threshold=RISE_ALERT_M))
        state["applied"] = source.packed
        out.clean = {**rec, "source": source.record(), "received_at": now_ms, "rise_m": rise,
                     "duplicate": duplicate, "tag": None}
        return out, state


WELL_LEVEL = RecordType(
    "well-level", Topic("wells", "WellLevel", "site_id"),
    checks="tests.toy.processor:check_well_level",
    processor="tests.toy.processor:WellLevelProcessor", state=State("wells", "site_id"),
    clean=Topic("wells.clean", "EnrichedWellLevel", "site_id"),
    table=Table("well_levels_raw", order_by=("site_id", "reading_id"),
                skip=frozenset({"duplicate"}), event_time="measured_at"),
    ledger=Ledger("well-level", ("reading_id",)), event_time="measured_at")


def toy_catalog() -> Catalog:
    """The toy type with ebi's shared outputs (alerts, statuses, dead letters; not the alarm
    book, a stage whose state the alarm commands keep)."""
    base = default_catalog()
    return catalog_from([WELL_LEVEL], [o for o in base.outputs if not o.stage],
                        [HERE, *base.schemas.dirs])
