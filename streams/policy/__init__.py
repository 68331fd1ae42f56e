"""The reporting and alarm policy: deadlines, limits and thresholds, from a TOML file.

The bundled ``default.toml`` names the regulation behind each number; an operator points
``EBI_POLICY_FILE`` at their own copy to change them. Loading validates everything up front
and fails with a message that names the rule and the key.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from streams.localtime import CST, Zone
from streams.policy.alarms import AlarmPolicy, AlarmPolicyError, parse_alarms
from streams.policy.blindspots import DEFAULT_BLIND_SPOTS, BlindSpotPolicy, blind_spot_policy
from streams.policy.hazards import DEFAULT_HAZARDS, HazardPolicy, hazard_policy
from streams.policy.incidents import (
    ReportingRules,
    default_reporting,
    parse_reporting,
    parse_time_zone,
)
from streams.records.regions import RegionTableError, table

LEVELS = ("ORDINARY", "RELATIVELY_SERIOUS", "SERIOUS", "ESPECIALLY_SERIOUS")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class PolicyError(ValueError):
    """The policy file is malformed; the message names the rule and key."""


def parse_duration(text: str, where: str = "duration") -> timedelta:
    match = _DURATION.match(str(text))
    if not match:
        raise PolicyError(f"{where}: {text!r} is not a duration like 90s, 45m, 2h or 30d")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


@dataclass(frozen=True)
class DeadlineRule:
    kind: str
    stage: str
    reporting_level: str
    within: timedelta
    start: str  # "occurred" or "previous"
    source: str
    declared_levels: tuple[str, ...] = ()
    industries: tuple[str, ...] = ()

    def matches(self, kind: str, stage: str, reporting_level: str, declared_level: str,
                industry: str | None) -> bool:
        return (
            self.kind in ("*", kind)
            and self.stage in ("*", stage)
            and self.reporting_level in ("*", reporting_level)
            and (not self.declared_levels or declared_level in self.declared_levels)
            and (not self.industries or (industry or "").lower() in self.industries)
        )


@dataclass(frozen=True)
class MetricPolicy:
    unit: str
    low: float
    high: float
    alarm_level1: float
    alarm_level2: float
    late_after: timedelta
    source: str


@dataclass(frozen=True)
class Limits:
    """Bounds on what one record may hold (``[limits]``); each has its reason in the file."""

    earliest_ms: int              # no time before this (epoch millis)
    max_readings: int             # readings per telemetry envelope
    max_id: int                   # characters of an id, code or name
    max_text: int                 # characters of a free text (descriptions, messages)
    max_count: int                # people, houses: any count figure
    max_loss_cny: float           # direct economic loss
    max_message_bytes: int        # one input message (Confluent header + Avro body)
    max_output_bytes: int         # one message the worker writes (clean record, dead letter)


DEFAULT_LIMITS = Limits(
    earliest_ms=946_684_800_000, max_readings=10_000, max_id=128, max_text=8192,
    max_count=100_000_000, max_loss_cny=1e13, max_message_bytes=1_048_576,
    max_output_bytes=8_388_608)


@dataclass(frozen=True)
class Policy:
    name: str
    deadlines: tuple[DeadlineRule, ...]
    metrics: dict[str, MetricPolicy]
    warn_before: timedelta
    check_every: timedelta
    jump_ratio: float
    jump_min_delta: float
    drop_ratio: float
    max_future_skew: timedelta
    telemetry_dedup_horizon: timedelta
    incident_dedup_horizon: timedelta
    spike_ratio: float
    flatline_count: int
    outlier_z: float
    outlier_warmup: int
    ewma_alpha: float
    offline_after_intervals: int
    default_heartbeat_interval: timedelta
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    limits: Limits = DEFAULT_LIMITS
    # The GB/T 2260 division table the region checks use (streams.records.regions); empty:
    # the bundled one. Set from the region_table setting by load_policy.
    region_table: str = ""
    zone: Zone = CST     # of the reporting clocks ([time_zone])
    reporting: ReportingRules = field(default_factory=default_reporting)  # .incidents
    alarms: AlarmPolicy = field(default_factory=AlarmPolicy)   # [alarms]: streams.policy.alarms
    hazards: HazardPolicy = DEFAULT_HAZARDS                  # [hazards]
    blind_spots: BlindSpotPolicy = DEFAULT_BLIND_SPOTS       # [blind_spots]

    def deadline_rule(self, kind: str, stage: str, reporting_level: str,
                      declared_level: str = "ORDINARY",
                      industry: str | None = None) -> DeadlineRule | None:
        """The first rule that applies to a report, or None when no deadline applies."""
        for rule in self.deadlines:
            if rule.matches(kind, stage, reporting_level, declared_level, industry):
                return rule
        return None

    def reporting_deadline(self, kind: str, stage: str, reporting_level: str,
                           declared_level: str = "ORDINARY",
                           industry: str | None = None) -> timedelta | None:
        rule = self.deadline_rule(kind, stage, reporting_level, declared_level, industry)
        return rule.within if rule else None


def _get(table: dict[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise PolicyError(f"{where}: missing key {key!r}")
    return table[key]


def _deadline(rule: dict[str, Any], index: int) -> DeadlineRule:
    where = f"deadline rule #{index + 1}"
    start = rule.get("from", "occurred")
    if start not in ("occurred", "previous"):
        raise PolicyError(f"{where}: from must be 'occurred' or 'previous', not {start!r}")
    levels = tuple(rule.get("declared_level", ()))
    unknown = [lvl for lvl in levels if lvl not in LEVELS]
    if unknown:
        raise PolicyError(f"{where}: unknown declared_level {unknown}; known: {LEVELS}")
    return DeadlineRule(
        kind=str(_get(rule, "kind", where)), stage=str(_get(rule, "stage", where)),
        reporting_level=str(rule.get("reporting_level", "*")),
        within=parse_duration(_get(rule, "within", where), f"{where} within"),
        start=start, source=str(_get(rule, "source", where)), declared_levels=levels,
        industries=tuple(str(i).lower() for i in rule.get("industry", ())),
    )


def _metric(name: str, table: dict[str, Any], default_late: timedelta) -> MetricPolicy:
    where = f"metric.{name}"
    low, high = _get(table, "range", where)
    level1, level2 = _get(table, "alarm", where)
    if not low < high or not level1 <= level2:
        raise PolicyError(f"{where}: range must be [low, high] with low < high and alarm "
                          "[level1, level2] with level1 <= level2")
    late = table.get("late_after")
    return MetricPolicy(
        unit=str(_get(table, "unit", where)), low=float(low), high=float(high),
        alarm_level1=float(level1), alarm_level2=float(level2),
        late_after=parse_duration(late, f"{where}.late_after") if late else default_late,
        source=str(_get(table, "source", where)),
    )


def _timestamp(text: Any, where: str) -> int:
    from datetime import datetime

    try:
        parsed = datetime.fromisoformat(str(text))
    except ValueError:
        raise PolicyError(f"{where}: {text!r} is not an ISO-8601 time") from None
    if parsed.tzinfo is None:
        raise PolicyError(f"{where}: {text!r} has no time zone")
    return int(parsed.timestamp() * 1000)


def _limits(table: dict[str, Any]) -> Limits:
    d = DEFAULT_LIMITS
    try:
        limits = Limits(
            earliest_ms=_timestamp(table["earliest"], "limits.earliest") if "earliest" in table
            else d.earliest_ms,
            max_readings=int(table.get("max_envelope_readings", d.max_readings)),
            max_id=int(table.get("max_id_length", d.max_id)),
            max_text=int(table.get("max_text_length", d.max_text)),
            max_count=int(table.get("max_count", d.max_count)),
            max_loss_cny=float(table.get("max_economic_loss_cny", d.max_loss_cny)),
            max_message_bytes=int(table.get("max_message_bytes", d.max_message_bytes)),
            max_output_bytes=int(table.get("max_output_bytes", d.max_output_bytes)))
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"limits: {exc}") from None
    if min(limits.max_readings, limits.max_id, limits.max_text, limits.max_count,
           limits.max_message_bytes) <= 0:
        raise PolicyError("limits: every bound must be positive")
    if limits.max_output_bytes < limits.max_message_bytes + 64 * 1024:
        raise PolicyError("limits: max_output_bytes must leave room for a dead letter carrying "
                          "a whole input message (max_message_bytes + 64 KiB)")
    return limits


def parse_policy(data: dict[str, Any]) -> Policy:
    tele = data.get("telemetry", {})
    clocks = data.get("clocks", {})
    figures = data.get("figures", {})
    gateways = data.get("gateways", {})
    default_late = parse_duration(tele.get("late_after", "5m"), "telemetry.late_after")
    metrics = {k: _metric(k, v, default_late) for k, v in data.get("metric", {}).items()}
    try:
        alarms = parse_alarms(data.get("alarms", {}), {k: m.unit for k, m in metrics.items()})
    except AlarmPolicyError as exc:
        raise PolicyError(str(exc)) from None
    return Policy(
        name=str(data.get("name", "unnamed")),
        deadlines=tuple(_deadline(r, i) for i, r in enumerate(data.get("deadline", []))),
        metrics=metrics,
        warn_before=parse_duration(clocks.get("warn_before", "1h"), "clocks.warn_before"),
        check_every=parse_duration(clocks.get("check_every", "30s"), "clocks.check_every"),
        jump_ratio=float(figures.get("jump_ratio", 3.0)),
        jump_min_delta=float(figures.get("jump_min_delta", 10)),
        drop_ratio=float(figures.get("drop_ratio", 0.5)),
        max_future_skew=parse_duration(tele.get("max_future_skew", "5m"),
                                       "telemetry.max_future_skew"),
        telemetry_dedup_horizon=parse_duration(tele.get("dedup_horizon", "24h"),
                                               "telemetry.dedup_horizon"),
        incident_dedup_horizon=parse_duration(
            data.get("incidents", {}).get("dedup_horizon", "30d"), "incidents.dedup_horizon"),
        spike_ratio=float(tele.get("spike_ratio", 0.5)),
        flatline_count=int(tele.get("flatline_count", 30)),
        outlier_z=float(tele.get("outlier_z", 6.0)),
        outlier_warmup=int(tele.get("outlier_warmup", 50)),
        ewma_alpha=float(tele.get("ewma_alpha", 0.05)),
        offline_after_intervals=int(gateways.get("offline_after_intervals", 3)),
        default_heartbeat_interval=parse_duration(gateways.get("default_interval", "60s"),
                                                  "gateways.default_interval"),
        raw=data,
        limits=_limits(data.get("limits", {})),
        zone=parse_time_zone(data), reporting=parse_reporting(data),
        alarms=alarms,
        hazards=hazard_policy(data), blind_spots=blind_spot_policy(data),
    )


def load_policy(path: str | Path | None = None, region_table: str = "") -> Policy:
    """The policy from ``path``, or the bundled defaults when ``path`` is empty.

    ``region_table`` (the ``region_table`` setting) is an operator's division table for the
    region checks; it is read and validated here, so a bad file fails at start-up."""
    policy = _load_policy(path)
    if not region_table:
        return policy
    try:
        table(region_table).load()
    except RegionTableError as exc:
        raise PolicyError(f"region_table: {exc}") from exc
    return replace(policy, region_table=region_table)


def _load_policy(path: str | Path | None) -> Policy:
    if path:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from exc
    else:
        text = resources.files("streams.policy").joinpath("default.toml").read_text("utf-8")
    try:
        return parse_policy(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy file {path or 'default.toml'} is not valid TOML: {exc}") from exc
