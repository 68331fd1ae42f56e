"""Whether a record names its key's owner: the catalog's :class:`~schemas.catalog.model.Signed`
declaration of its record type says which fields must match which part of the owner.

Regions nest by their GB/T 2260 code: ``000000`` covers the country, ``XX0000`` a province
(every code starting with XX), ``XXYY00`` a city, any other code only itself; a regional
system's key covers the records of its own region.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.catalog.model import Signed
from streams.signing.keys import KeyRef

NATIONAL = "000000"


def level(code: str) -> str:
    """national, province, city or county."""
    if code == NATIONAL:
        return "national"
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "county"


def well_formed(code: str) -> bool:
    """Six digits: the shape of a GB/T 2260 code."""
    return len(code) == 6 and code.isascii() and code.isdigit()


def within(scope: str, code: str) -> bool:
    """The region ``code`` lies inside ``scope`` (both six-digit codes)."""
    if len(scope) != 6 or len(code) != 6:
        return False
    kind = level(scope)
    if kind == "national":
        return True
    if kind == "province":
        return code[:2] == scope[:2]
    if kind == "city":
        return code[:4] == scope[:4]
    return code == scope


def covers(key: KeyRef, attribute: str, value: Any) -> str | None:
    """Why ``key``'s owner is not the record's ``attribute`` (gateway, enterprise, region)
    ``value``; None when it is, or when the key does not bind that attribute."""
    text = "" if value is None else str(value)
    if attribute == "gateway":
        if key.kind == "GATEWAY" and text != key.owner_id:
            return f"gateway {text[:128]} is not the key's gateway {key.owner_id}"
        return None
    if attribute == "enterprise":
        if key.kind in ("GATEWAY", "ENTERPRISE") and text != key.enterprise_id:
            return f"enterprise {text[:128]} is not the key's enterprise {key.enterprise_id}"
        return None
    if attribute == "region":
        # a malformed code names no region: validation rejects it with its own reason
        # (BAD_REGION_CODE), which tells the sender more than a mismatch would
        if key.kind == "REGIONAL" and well_formed(text) and not within(key.owner_id, text):
            return f"region {text[:128]} is outside the key's region {key.owner_id}"
        return None
    raise ValueError(f"unknown identity attribute {attribute!r}")


def mismatch(spec: Signed, key: KeyRef, record: Mapping[str, Any]) -> str | None:
    """Why ``record`` is not ``key``'s owner's to send (None: it is)."""
    if key.kind not in spec.kinds:
        return f"a {key.kind} key ({key.owner()}) may not sign these records (signers: " \
               f"{', '.join(spec.kinds)})"
    for attribute, name in (("gateway", spec.gateway), ("enterprise", spec.enterprise),
                            ("region", spec.region)):
        if name:
            why = covers(key, attribute, record.get(name))
            if why is not None:
                return f"{name}: {why}"
    return None


def owner_mismatch(spec: Signed, key: KeyRef, state: Mapping[str, Any] | None) -> str | None:
    """Why ``key`` may not change an entity whose state names another owner (None: it may,
    or the entity is new)."""
    if not spec.owner or not isinstance(state, Mapping):
        return None
    attribute, name = spec.owner
    value = state.get(name)
    if value in (None, ""):
        return None
    why = covers(key, attribute, value)
    return None if why is None else f"the record continues one of another owner: {why}"
