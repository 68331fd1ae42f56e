"""Hypothesis strategies driven by the Avro schemas: any value the schema allows, with the
extremes a hostile sender would pick (huge and negative numbers, NaN, empty and very long
strings, times far in the past and future), and mutations of framed messages."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import strategies as st

from schemas.catalog import default_catalog

INT32, INT64 = 2**31, 2**63

_texts = st.one_of(st.text(max_size=20), st.text(min_size=200, max_size=400),
                   st.sampled_from(["", "canary-x-1", "110101", "329999", "\x00", "é" * 5]))
_longs = st.one_of(st.integers(-INT64, INT64 - 1),
                   st.sampled_from([0, 1, -1, -INT64, INT64 - 1, 946_684_800_000,
                                    1_790_000_000_000, 4_102_444_800_000]))
_doubles = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from([0.0, -0.0, 1e308, -1e308, 0.5, 25.0]))


def for_type(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of one Avro type (``named``: the record/enum names seen so far)."""
    if isinstance(schema, list):
        return st.one_of([for_type(branch, named) for branch in schema])
    if isinstance(schema, str):
        if schema in named:
            return for_type(named[schema], named)
        return {"null": st.none(), "boolean": st.booleans(), "int": st.integers(-INT32,
                INT32 - 1), "long": _longs, "float": st.floats(width=32, allow_nan=True),
                "double": _doubles, "string": _texts, "bytes": st.binary(max_size=64)}[schema]
    kind = schema["type"]
    if kind in ("record", "enum", "fixed"):
        named[schema["name"]] = schema
        ns = schema.get("namespace")
        if ns:
            named[f"{ns}.{schema['name']}"] = schema
    if kind == "record":
        return st.fixed_dictionaries({f["name"]: for_type(f["type"], named)
                                      for f in schema["fields"]})
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(for_type(schema["items"], named), max_size=8)
    if kind == "map":
        return st.dictionaries(st.text(max_size=5), for_type(schema["values"], named),
                               max_size=3)
    if isinstance(kind, dict | list):
        return for_type(kind, named)
    return for_type(kind, named)


def records(record: str) -> st.SearchStrategy[dict[str, Any]]:
    """Any record of the named schema."""
    strategy: st.SearchStrategy[dict[str, Any]] = for_type(
        default_catalog().schemas.json(record), {})
    return strategy


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """A framed message with bytes flipped, cut, repeated or a hostile header."""
    kind = draw(st.sampled_from(["flip", "cut", "extend", "header", "splice"]))
    out = bytearray(data)
    if kind == "flip" and out:
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(out) - 1))
            out[i] ^= draw(st.integers(1, 255))
    elif kind == "cut":
        out = out[:draw(st.integers(0, len(out)))]
    elif kind == "extend":
        out += draw(st.binary(min_size=1, max_size=64))
    elif kind == "header":
        out[:5] = struct.pack(">bI", draw(st.sampled_from([0, 1, -1])),
                              draw(st.sampled_from([0, 1, 2, 999, 2**31, 2**32 - 1])))
    else:
        at = draw(st.integers(0, len(out)))
        out[at:at] = draw(st.binary(max_size=32))
    return bytes(out)
