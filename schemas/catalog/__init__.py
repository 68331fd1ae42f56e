"""The catalog: one declaration per record type (:mod:`.declarations`), the vocabulary
(:mod:`.model`) and :func:`default_catalog`, ebi's own. Subjects follow the topic-name
strategy: ``<full topic>-value``."""

from __future__ import annotations

from functools import cache
from importlib import resources

from schemas.catalog.model import Catalog, catalog_from, resolve


@cache
def default_catalog() -> Catalog:
    """ebi's record types with the bundled schemas (built on first use)."""
    from schemas.catalog.declarations import OUTPUTS, TYPES

    return catalog_from(TYPES, OUTPUTS, [resources.files("schemas").joinpath("avro")])


@cache
def load_catalog(path: str = "") -> Catalog:
    """The catalog a deployment runs with: ``path`` names a function returning one
    (``"package.module:function"``, the ``catalog`` setting); empty: ebi's own."""
    if not path:
        return default_catalog()
    try:
        catalog = resolve(path)()
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"catalog {path!r} cannot be loaded: {exc}") from exc
    if not isinstance(catalog, Catalog):
        raise ValueError(f"catalog {path!r} returned {type(catalog).__name__}, not a Catalog")
    return catalog


def subject(full_topic: str) -> str:
    return f"{full_topic}-value"


__all__ = ["Catalog", "default_catalog", "load_catalog", "subject"]
