"""What every processor and clock is built with: policy, reference data, metrics, and the
pieces processors of several record types share (the gateway monitor: telemetry and
heartbeats both keep a gateway alive)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from streams.metrics import Metrics
from streams.policy import Policy
from streams.processors.liveness import GatewayMonitor
from streams.processors.reference import ReferenceData

if TYPE_CHECKING:
    from streams.processors.incidents.clocks import IncidentBook


@dataclass
class ProcessorContext:
    policy: Policy
    reference: ReferenceData
    metrics: Metrics
    ring_size: int = 32          # reading ids remembered per sensor for deduplication

    @cached_property
    def gateways(self) -> GatewayMonitor:
        return GatewayMonitor(self.policy, self.reference, self.metrics)

    @cached_property
    def incident_book(self) -> IncidentBook:
        """Open and overdue incidents for the gauges (the processor and the clock share it)."""
        from streams.processors.incidents.clocks import IncidentBook

        return IncidentBook()
