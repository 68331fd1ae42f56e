"""Simulated traffic with injected faults and exact ground truth (:mod:`.generator`)."""

from streams.simulate.generator import Event, SimConfig, Simulator

__all__ = ["Event", "SimConfig", "Simulator"]
