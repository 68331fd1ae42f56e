"""Hypothesis profiles: ``ci`` (the default, bounded: the whole suite well under two
minutes) and ``long`` (``make fuzz``, EBI_FUZZ_PROFILE=long)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
settings.register_profile("long", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
settings.load_profile(os.environ.get("EBI_FUZZ_PROFILE", "ci"))
