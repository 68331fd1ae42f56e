"""Data classification: every field of every Avro record says how sensitive it is.

Each field carries a property ``"classification"``, one of :data:`CLASSES`:

==============  ==================================================================
public          may be published as it is: codes of public vocabularies (GB/T 2260
                region codes, metric, unit), figures once authorised for release
internal        for the platform's own staff: ids, times, counts, flags, incident
                figures before publication, safety measurements (gas concentrations)
trade_secret    an enterprise's trade secret: process values (temperature, pressure,
                liquid level) and their alarm limits, hazard descriptions, raw input
                bytes, economic loss before publication
personal        about a person: free text that names casualties or officers, who
                acknowledged an alarm
==============  ==================================================================

A field whose class depends on the row adds ``"classification_when"``: a list of
``{"field": <sibling>, "in": [<values>], "classification": <class>}``, tried in order; the
first whose sibling field (an enum or string of the same record; in a columnar record the
parallel array) holds one of the values gives the class, else ``classification`` does. A
field is classified strictly by default and relaxed where the row proves it harmless, so a
new metric symbol starts as a trade secret::

    {"name": "value", "classification": "trade_secret",
     "classification_when": [{"field": "metric", "in": ["METHANE", ...],
                              "classification": "internal"}], ...}

``ebi schemas check`` fails on a field without a classification or with an unknown one
(:func:`problems`). The sink carries the classes into the ClickHouse DDL (column comments)
and ``ebi access`` masks what a role may not see (docs/security.md, "Data access").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

PUBLIC, INTERNAL, TRADE_SECRET, PERSONAL = "public", "internal", "trade_secret", "personal"
CLASSES = (PUBLIC, INTERNAL, TRADE_SECRET, PERSONAL)
# What every role reading the data may see; clearances add the others.
OPEN = frozenset({PUBLIC, INTERNAL})
PROPERTY = "classification"
WHEN = "classification_when"


class ClassificationError(ValueError):
    """A field's classification is missing, unknown or refers to a field that is not there."""


@dataclass(frozen=True)
class Condition:
    """Rows whose ``field`` holds one of ``values`` are of class ``classification``."""

    field: str
    values: tuple[str, ...]
    classification: str


@dataclass(frozen=True)
class Rule:
    """The classification of one field (or column): ``base`` unless a condition matches."""

    base: str
    when: tuple[Condition, ...] = ()

    @property
    def classes(self) -> frozenset[str]:
        return frozenset({self.base, *(c.classification for c in self.when)})

    def visible(self, allowed: frozenset[str]) -> bool | None:
        """True: every row may be shown; False: no row; None: it depends on the row."""
        shown = {c in allowed for c in self.classes}
        return shown.pop() if len(shown) == 1 else None

    def text(self) -> str:
        """``trade_secret; internal where metric in METHANE|FLAMMABLE_GAS`` (a column
        comment)."""
        parts = [self.base]
        parts += [f"{c.classification} where {c.field} in {'|'.join(c.values)}"
                  for c in self.when]
        return "; ".join(parts)


INTERNAL_RULE = Rule(INTERNAL)


def rule_of(avro_field: dict[str, Any]) -> Rule | None:
    """The field's rule, None when it has no classification (``ebi schemas check`` fails
    on those; whoever masks treats them as visible to no one)."""
    base = avro_field.get(PROPERTY)
    if base is None:
        return None
    if base not in CLASSES:
        raise ClassificationError(f"field {avro_field.get('name')!r}: unknown classification "
                                  f"{base!r}; known: {', '.join(CLASSES)}")
    conditions = []
    for entry in avro_field.get(WHEN, []):
        if not isinstance(entry, dict) or set(entry) != {"field", "in", PROPERTY}:
            raise ClassificationError(
                f"field {avro_field.get('name')!r}: each {WHEN} entry needs exactly "
                f"\"field\", \"in\" and \"{PROPERTY}\"")
        if entry[PROPERTY] not in CLASSES:
            raise ClassificationError(f"field {avro_field.get('name')!r}: {WHEN}: unknown "
                                      f"classification {entry[PROPERTY]!r}")
        values = entry["in"]
        if not isinstance(values, list) or not values or not all(
                isinstance(v, str) for v in values):
            raise ClassificationError(f"field {avro_field.get('name')!r}: {WHEN}: \"in\" "
                                      "must be a non-empty list of strings")
        conditions.append(Condition(str(entry["field"]), tuple(values), entry[PROPERTY]))
    return Rule(base, tuple(conditions))


def _branches(avro_type: Any) -> list[Any]:
    return avro_type if isinstance(avro_type, list) else [avro_type]


def _element(avro_type: Any) -> Any:
    """The type a condition compares: the non-null branch, an array's items."""
    rest = [t for t in _branches(avro_type) if t != "null"]
    t = rest[0] if len(rest) == 1 else avro_type
    if isinstance(t, dict) and t.get("type") == "array":
        return _element(t["items"])
    return t


def _records(avro_type: Any, named: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Record types defined inside a field's type (nested, in unions or arrays)."""
    for t in _branches(avro_type):
        if isinstance(t, dict):
            if t.get("type") in ("record", "enum", "fixed"):
                named[t["name"].rsplit(".", 1)[-1]] = t
            if t.get("type") == "record":
                yield t
            elif t.get("type") == "array":
                yield from _records(t["items"], named)
            elif t.get("type") == "map":
                yield from _records(t["values"], named)


def problems(schema: dict[str, Any], where: str = "") -> list[str]:
    """Every field of ``schema`` (nested records included) without a valid classification,
    as ``Record.field: why``; empty when all are classified."""
    out: list[str] = []
    named: dict[str, Any] = {}
    seen: set[str] = set()

    def index(r: dict[str, Any]) -> None:
        for f in r["fields"]:
            for inner in _records(f["type"], named):
                index(inner)

    index(schema)

    def record(r: dict[str, Any], path: str) -> None:
        if r["name"] in seen:
            return
        seen.add(r["name"])
        fields = {f["name"]: f for f in r["fields"]}
        for f in r["fields"]:
            at = f"{path}.{f['name']}"
            for inner in _records(f["type"], named):
                record(inner, f"{path}.{f['name']}")
            try:
                rule = rule_of(f)
            except ClassificationError as exc:
                out.append(f"{at}: {str(exc).split(': ', 1)[-1]}")
                continue
            if rule is None:
                out.append(f"{at}: no \"{PROPERTY}\" (one of {', '.join(CLASSES)})")
                continue
            for c in rule.when:
                other = fields.get(c.field)
                if other is None or c.field == f["name"]:
                    out.append(f"{at}: {WHEN} names {c.field!r}, which is not another "
                               f"field of {r['name']}")
                    continue
                t = _element(other["type"])
                if isinstance(t, str) and t in named:
                    t = named[t]
                elif isinstance(t, str) and t.rsplit(".", 1)[-1] in named:
                    t = named[t.rsplit(".", 1)[-1]]
                if isinstance(t, dict) and t.get("type") == "enum":
                    unknown = [v for v in c.values if v not in t["symbols"]]
                    if unknown:
                        out.append(f"{at}: {WHEN}: {', '.join(unknown)} not symbols of "
                                   f"{c.field}")
                elif t != "string":
                    out.append(f"{at}: {WHEN}: {c.field} must be an enum or a string")

    record(schema, where or schema["name"].rsplit(".", 1)[-1])
    return out


def store_problems(schemas: Any) -> list[str]:
    """:func:`problems` of every record of a :class:`~schemas.catalog.model.SchemaStore`
    (every ``.avsc`` of its directories, on a topic yet or not)."""
    return [p for name in schemas.names() for p in problems(schemas.json(name))]
