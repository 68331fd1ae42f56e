"""The reference data on any registration: it is kept or ignored (counted), never raises."""

from __future__ import annotations

import pytest
from hypothesis import given

from schemas.catalog import default_catalog
from streams.policy import load_policy
from streams.processors.reference import ReferenceData
from tests.fuzz.strategies import records

POLICY = load_policy()
KINDS = default_catalog().reference


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
@given(data=records("Enterprise") | records("Sensor"))
def test_any_registration_is_kept_or_ignored(kind: object, data: dict[str, object]) -> None:
    ref = ReferenceData(POLICY)
    ok = ref.apply(kind, "key", data, 1_790_000_000_000)  # type: ignore[arg-type]
    assert ok in (True, False)
    ref.apply(kind, "key", None, 1_790_000_000_000)  # type: ignore[arg-type]
