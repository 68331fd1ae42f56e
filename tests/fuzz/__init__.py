"""Fuzzing the paths a hostile or careless sender reaches: property-based (hypothesis) and
mutation cases. Bounded in ``make test`` (profile ``ci``), longer with ``make fuzz``
(profile ``long``); every reproducer found is kept in ``test_regressions.py``."""
