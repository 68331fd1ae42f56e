"""JSON or CSV rows -> Avro-ready dicts, driven by the record's .avsc, with per-field errors.

``convert(record, data, from_text=False)`` returns ``(record_or_None, violations)``. Errors
name the field by path (``readings[2].metric``) and use the dead-letter codes MISSING_FIELD,
WRONG_TYPE, UNKNOWN_SYMBOL, UNKNOWN_FIELD, BAD_TIMESTAMP and INVALID_UTF8. Timestamps become
int epoch millis; they are accepted as ISO-8601 strings with a timezone or as epoch millis.
``from_text`` (CSV) parses numbers and booleans from strings and treats empty cells as absent.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

from schemas.catalog import default_catalog
from streams.records.rules import Violation

MIN_MILLIS = 946_684_800_000      # 2000-01-01: smaller values are seconds or garbage
MAX_MILLIS = 4_102_444_800_000    # 2100-01-01
_BAD = object()
_INT_LIMITS = {"int": 2**31, "long": 2**63}


@cache
def _schema(record: str) -> Any:
    return default_catalog().schemas.json(record)


def record_fields(record: str) -> list[dict[str, Any]]:
    """The top-level fields of a record's schema (JSON, as in its .avsc)."""
    fields: list[dict[str, Any]] = _schema(record)["fields"]
    return fields


def convert(record: str, data: Any, from_text: bool = False) -> tuple[dict[str, Any] | None,
                                                                        list[Violation]]:
    """Convert ``data`` to the Avro-ready dict of ``record`` (e.g. "IncidentReport")."""
    conv = _Converter(from_text)
    out = conv.value(_schema(record), data, "")
    if conv.errors or out is _BAD:
        return None, conv.errors or [Violation("", "WRONG_TYPE", "not a record")]
    return out, []


def parse_timestamp(value: Any, from_text: bool = False) -> int | str:
    """Epoch millis, or a message saying why ``value`` is not a time."""
    if isinstance(value, bool):
        return f"{_shown(value)} is not a time"
    if isinstance(value, str):
        digits = value.strip().lstrip("-")
        if digits.isascii() and digits.isdigit():
            if len(digits) > 19:
                return f"{value[:30]!r}... is not epoch milliseconds (too many digits)"
            value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        if not MIN_MILLIS <= value < MAX_MILLIS:
            return (f"{_shown(value)} is not epoch milliseconds between 2000 and 2100 "
                    "(seconds instead of milliseconds?)")
        return value
    if not isinstance(value, str):
        return f"{_shown(value)} is not a time (use ISO-8601 with a timezone or epoch millis)"
    if len(value) > 64:
        return f"{value[:30]!r}... is not a time (too long)"
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return f"{_shown(value)} is not an ISO-8601 time"
    if parsed.tzinfo is None:
        return f"{_shown(value)} has no timezone (add Z or +08:00)"
    ms = int(parsed.timestamp() * 1000)
    if not MIN_MILLIS <= ms < MAX_MILLIS:
        return f"{_shown(value)} is not between 2000 and 2100"
    return ms


def _shown(value: Any, width: int = 60) -> str:
    """``repr(value)`` cut to ``width`` characters for messages (a reject of a 5,000-digit
    number must not print it)."""
    text = repr(value)
    return text if len(text) <= width else f"{text[:width]}... ({len(text)} characters)"


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


class _Converter:
    def __init__(self, from_text: bool) -> None:
        self.from_text = from_text
        self.errors: list[Violation] = []
        self.named: dict[str, Any] = {}

    def fail(self, path: str, code: str, message: str) -> object:
        self.errors.append(Violation(path, code, message))
        return _BAD

    def absent(self, value: Any) -> bool:
        return value is None or (self.from_text and value == "")

    def value(self, schema: Any, value: Any, path: str) -> Any:
        if isinstance(schema, str):
            schema = self.named.get(schema, schema)
        if isinstance(schema, list):
            return self.union(schema, value, path)
        if isinstance(schema, dict):
            kind = schema["type"]
            if kind in ("record", "enum", "fixed"):
                name = schema["name"]
                namespace = schema.get("namespace", "")
                self.named[name] = schema
                self.named[f"{namespace}.{name}" if namespace else name] = schema
            if kind == "record":
                return self.record(schema, value, path)
            if kind == "enum":
                return self.enum(schema, value, path)
            if kind == "array":
                if not isinstance(value, list):
                    return self.fail(path, "WRONG_TYPE", f"expected an array, got "
                                     f"{_type_name(value)}")
                items = [self.value(schema["items"], v, f"{path}[{i}]")
                         for i, v in enumerate(value)]
                return _BAD if _BAD in items else items
            if kind == "map":
                if not isinstance(value, dict):
                    return self.fail(path, "WRONG_TYPE", f"expected an object, got "
                                     f"{_type_name(value)}")
                vals = {k: self.value(schema["values"], v, f"{path}.{k}")
                        for k, v in value.items()}
                return _BAD if _BAD in vals.values() else vals
            if schema.get("logicalType") == "timestamp-millis":
                return self.timestamp(value, path)
            return self.primitive(kind, value, path)
        return self.primitive(schema, value, path)

    def record(self, schema: dict[str, Any], value: Any, path: str) -> Any:
        if not isinstance(value, Mapping):
            return self.fail(path or schema["name"], "WRONG_TYPE",
                             f"expected an object, got {_type_name(value)}")
        prefix = f"{path}." if path else ""
        names = [f["name"] for f in schema["fields"]]
        for key in value:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.fail(prefix + str(key), "UNKNOWN_FIELD",
                          f"{schema['name']} has no field {key!r}{hint}")
        out: dict[str, Any] = {}
        for field in schema["fields"]:
            name = field["name"]
            raw = value.get(name)
            if name not in value or (self.from_text and raw == ""):
                if "default" in field:
                    out[name] = copy.deepcopy(field["default"])
                    continue
                out[name] = self.fail(prefix + name, "MISSING_FIELD",
                                      f"required field of {schema['name']} is missing")
                continue
            out[name] = self.value(field["type"], raw, prefix + name)
        return _BAD if _BAD in out.values() else out

    def enum(self, schema: dict[str, Any], value: Any, path: str) -> Any:
        symbols = schema["symbols"]
        if not isinstance(value, str):
            return self.fail(path, "WRONG_TYPE", f"expected one of {', '.join(symbols)} as a "
                             f"string, got {_type_name(value)}")
        if value not in symbols:
            close = difflib.get_close_matches(value.upper(), symbols, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return self.fail(path, "UNKNOWN_SYMBOL", f"{_shown(value)} is not one of "
                             f"{', '.join(symbols)}{hint}")
        return value

    def union(self, branches: list[Any], value: Any, path: str) -> Any:
        if self.absent(value) and "null" in branches:
            return None
        candidates = [b for b in branches if b != "null"]
        first_errors: list[Violation] = []
        for branch in candidates:
            trial = _Converter(self.from_text)
            trial.named = self.named
            out = trial.value(branch, value, path)
            if not trial.errors and out is not _BAD:
                return out
            first_errors = first_errors or trial.errors
        if len(candidates) == 1:
            self.errors += first_errors
            return _BAD
        return self.fail(path, "WRONG_TYPE", f"{_type_name(value)} matches none of the "
                         f"union's types {branches}")

    def timestamp(self, value: Any, path: str) -> Any:
        if self.absent(value):
            return self.fail(path, "MISSING_FIELD", "a time is required")
        result = parse_timestamp(value, self.from_text)
        if isinstance(result, str):
            return self.fail(path, "BAD_TIMESTAMP", result)
        return result

    def primitive(self, kind: str, value: Any, path: str) -> Any:
        if kind == "null":
            return None if self.absent(value) else self.fail(
                path, "WRONG_TYPE", f"expected null, got {_type_name(value)}")
        if self.absent(value):
            return self.fail(path, "MISSING_FIELD" if value is None else "WRONG_TYPE",
                             f"expected {kind}, got null")
        if kind == "string":
            if not isinstance(value, str):
                return self.fail(path, "WRONG_TYPE", f"expected a string, got "
                                 f"{_type_name(value)} {_shown(value)}")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                return self.fail(path, "INVALID_UTF8", f"bytes at position {exc.start} are not "
                                 "valid UTF-8")
            return value
        if kind in ("int", "long"):
            return self.integer(kind, value, path)
        if kind in ("float", "double"):
            if self.from_text and isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    return self.fail(path, "WRONG_TYPE", f"{_shown(value)} is not a number")
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            return self.fail(path, "WRONG_TYPE", f"expected a number, got {_type_name(value)} "
                             f"{_shown(value)}")
        if kind == "boolean":
            if self.from_text and isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if isinstance(value, bool):
                return value
            return self.fail(path, "WRONG_TYPE", f"expected true or false, got {_shown(value)}")
        if kind == "bytes" and isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        return self.fail(path, "WRONG_TYPE", f"unsupported Avro type {kind}")

    def integer(self, kind: str, value: Any, path: str) -> Any:
        if self.from_text and isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                return self.fail(path, "WRONG_TYPE", f"{_shown(value)} is not an integer")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            return self.fail(path, "WRONG_TYPE", f"expected an integer, got {_type_name(value)} "
                             f"{_shown(value)}")
        limit = _INT_LIMITS[kind]
        if not -limit <= value < limit:
            return self.fail(path, "WRONG_TYPE", f"{_shown(value)} does not fit in an Avro {kind}")
        return value
