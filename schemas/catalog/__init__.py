"""The catalog: one declaration per record type (:mod:`.declarations`), the vocabulary
(:mod:`.model`) and :func:`default_catalog`, ebi's own. Subjects follow the topic-name
strategy: ``<full topic>-value``."""

from __future__ import annotations

from functools import cache
from importlib import resources

from schemas.catalog.model import Catalog, catalog_from


@cache
def default_catalog() -> Catalog:
    """ebi's record types with the bundled schemas (built on first use)."""
    from schemas.catalog.declarations import OUTPUTS, TYPES

    return catalog_from(TYPES, OUTPUTS, [resources.files("schemas").joinpath("avro")])


def subject(full_topic: str) -> str:
    return f"{full_topic}-value"


__all__ = ["Catalog", "default_catalog", "subject"]
