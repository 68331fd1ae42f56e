"""Authorised publication (统一发布): only bodies the policy names publish emergency
information.

An incident report marked ``publication = AUTHORISED`` keeps that mark only when its
signature's key is a publisher's: a regional system of a level the policy lists (by default
the ministry, ``000000``, and the provincial bureaus, each for its own province), or a region
or key the policy names. Anything else is stored INTERNAL, flagged
UNAUTHORISED_PUBLICATION, and raises an alert. The policy section ``[publication]``::

    levels = ["national", "province"]   # regional systems of these levels, own region only
    regions = []                         # further regional systems, by region code
    keys = []                            # single keys, by key id
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streams.signing.identity import level, within
from streams.signing.keys import KeyRef

AUTHORISED = "AUTHORISED"
INTERNAL = "INTERNAL"
FLAG = "UNAUTHORISED_PUBLICATION"
LEVELS = ("national", "province", "city", "county")


class PublicationPolicyError(ValueError):
    """The policy's [publication] section names something unknown."""


@dataclass(frozen=True)
class Publishers:
    levels: frozenset[str] = frozenset({"national", "province"})
    regions: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()

    def authorised(self, key: KeyRef | None, region: str) -> bool:
        """``key`` may publish a report of ``region``."""
        if key is None or key.kind != "REGIONAL" or not within(key.owner_id, region):
            return False
        return (level(key.owner_id) in self.levels or key.owner_id in self.regions
                or key.key_id in self.keys)


def publishers(raw_policy: Mapping[str, Any]) -> Publishers:
    """The ``[publication]`` section of a policy (its defaults when absent)."""
    section = raw_policy.get("publication", {})
    if not isinstance(section, Mapping):
        raise PublicationPolicyError("policy [publication] must be a table")
    unknown = sorted(set(section) - {"levels", "regions", "keys", "source"})
    if unknown:
        raise PublicationPolicyError(f"policy [publication]: unknown key(s) "
                                     f"{', '.join(unknown)}; known: levels, regions, keys")
    levels = [str(x) for x in section.get("levels", ["national", "province"])]
    bad = sorted(set(levels) - set(LEVELS))
    if bad:
        raise PublicationPolicyError(f"policy [publication] levels: unknown {bad}; known: "
                                     f"{', '.join(LEVELS)}")
    return Publishers(frozenset(levels), frozenset(str(x) for x in section.get("regions", [])),
                      frozenset(str(x) for x in section.get("keys", [])))
