"""Alarm floods: alarms raised per province and window, and a dry run that measures them.

The alarms of a province go to one operator, its bureau (deploy/alertmanager/
alertmanager.yml); EEMUA 191 calls more than 10 alarms in 10 minutes for one operator a
flood (the policy's ``[alarms] flood_window`` and ``flood_limit``). :func:`flood_figures`
counts the RAISED events of an alarm event stream per province and window (the same
figures ``ebi report`` takes from ClickHouse); :func:`dry_run` puts simulated traffic, with
the simulator's usual faults, through the worker's own pipeline (processors, alarm book and
clocks, in memory, simulated time) and returns what came out, so a policy can be tried on
traffic before it is deployed: ``ebi alarms flood``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas.records import Record


@dataclass(frozen=True)
class FloodFigures:
    window_ms: int
    limit: int
    per_window: Counter[tuple[str, int]] = field(default_factory=Counter)   # (prov, start)
    alarms: int = 0

    @property
    def floods(self) -> list[tuple[str, int, int]]:
        """(province, window start ms, alarms) of every window over the limit, worst first."""
        return sorted(((p, w, n) for (p, w), n in self.per_window.items() if n > self.limit),
                      key=lambda item: (-item[2], item[1], item[0]))

    @property
    def peak(self) -> int:
        return max(self.per_window.values(), default=0)

    def provinces(self) -> dict[str, tuple[int, int, int]]:
        """province -> (alarms, windows with alarms, most in one window)."""
        out: dict[str, tuple[int, int, int]] = {}
        for (province, _), n in self.per_window.items():
            total, windows, most = out.get(province, (0, 0, 0))
            out[province] = (total + n, windows + 1, max(most, n))
        return dict(sorted(out.items()))

    def lines(self, minutes: float | None = None) -> list[str]:
        span = f"{self.window_ms / 60000:g} min"
        head = [f"{self.alarms} alarm(s) raised; most in one {span} window of one province: "
                f"{self.peak}; {len(self.floods)} window(s) over {self.limit} (a flood)"]
        if minutes:
            head.append(f"over {minutes:g} simulated minute(s): "
                        f"{self.alarms / max(minutes / (self.window_ms / 60000), 1e-9):.1f} "
                        f"alarm(s) per {span} on average")
        rows = [f"  province {p or '--'}: {total} alarm(s), {windows} window(s) with alarms, "
                f"at most {most} in one" for p, (total, windows, most) in
                self.provinces().items()]
        return head + rows


def flood_figures(events: Iterable[Record], window_ms: int, limit: int) -> FloodFigures:
    """Alarms raised (RAISED events, by ``raised_at``) per province and window."""
    counts: Counter[tuple[str, int]] = Counter()
    for e in events:
        if e["transition"] != "RAISED":
            continue
        raised = int(e["raised_at"])
        counts[(str(e["region_code"])[:2], raised - raised % window_ms)] += 1
    return FloodFigures(window_ms, limit, counts, sum(counts.values()))


@dataclass
class DryRun:
    """What a dry run produced."""

    events: list[Record] = field(default_factory=list)     # AlarmEvents
    alerts: list[Record] = field(default_factory=list)
    messages: int = 0
    truth: Counter[str] = field(default_factory=Counter)   # the simulator's faults


def dry_run(config: Any, policy: Any) -> DryRun:
    """Simulated traffic (a :class:`streams.simulate.SimConfig`) through the worker's
    pipeline in memory: every message arrives at its simulated time and the clocks run every
    ``policy.check_every`` of simulated time."""
    from prometheus_client import CollectorRegistry

    from schemas.catalog import default_catalog
    from schemas.codec import AvroDeserializer, AvroSerializer, SerializationContext
    from schemas.records import Source
    from schemas.registry import InMemoryRegistry
    from streams.metrics import Metrics
    from streams.processors.base import DictStore
    from streams.processors.context import ProcessorContext
    from streams.processors.reference import ReferenceData
    from streams.simulate import Simulator
    from streams.worker.pipeline import Pipeline

    catalog = default_catalog()
    registry = InMemoryRegistry()
    serializer = AvroSerializer(registry)
    reference = ReferenceData(policy)
    stores = {name: DictStore() for name in catalog.state_groups()}
    pipeline = Pipeline(catalog, ProcessorContext(policy, reference,
                                                  Metrics.create(CollectorRegistry())),
                        AvroDeserializer(registry, millis=True), stores)
    sim = Simulator(config, policy,
                    header=lambda t: serializer.header(f"dry.{t}", catalog.topic(t).record))
    every = max(1000, int(policy.check_every.total_seconds() * 1000))
    next_tick = config.start_ms + every
    offsets: Counter[str] = Counter()
    result = DryRun()

    def keep(out: Any) -> None:
        result.events += out.alarms
        result.alerts += out.alerts

    for topic, key, value, _ in sim:
        now = sim.now_ms
        while now >= next_tick:
            keep(pipeline.tick(next_tick)[0])
            next_tick += every
        kind = catalog.of_input(topic)
        if kind.reference is not None:
            reference.apply(kind, key, value if isinstance(value, dict) else None, now)
            continue
        result.messages += 1
        data = value if isinstance(value, bytes) else serializer(
            value, SerializationContext(f"dry.{topic}", kind.input.record))
        source = Source(f"dry.{topic}", 0, offsets[topic], None, now)
        offsets[topic] += 1
        record, source, out = pipeline.decode(topic, source, key.encode(), data, now)
        if record is not None:
            out, _ = pipeline.apply(topic, record, source, key.encode(), data, now)
            pipeline.take_touched()
        if out is not None:
            keep(out)
    end = config.start_ms + int(config.duration_s * 1000)
    while next_tick <= end:      # not beyond: the traffic stops there, not the gateways
        keep(pipeline.tick(next_tick)[0])
        next_tick += every
    result.truth = Counter(line["fault"] for line in sim.truth)
    return result
