"""Local Avro schema-resolution checks that name the field and the rule.

``problems(reader, writer)`` lists why data written with ``writer`` cannot be read with
``reader`` (Avro spec, "Schema Resolution"), each as ``(path, what)`` with paths like
``TelemetryBatch.readings.value``. ``check(new, versions, mode)`` applies a compatibility
mode against every registered version and returns messages such as::

    TelemetryBatch.readings.value: type changed from double to string (BACKWARD_TRANSITIVE:
    a reader with the new schema cannot read data written with version 1)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def _index(schema: Any, named: dict[str, Any], namespace: str = "") -> None:
    """Collect named types (full and short names) so references can be resolved."""
    if isinstance(schema, list):
        for branch in schema:
            _index(branch, named, namespace)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "enum", "fixed"):
            ns = schema.get("namespace", namespace)
            name = schema["name"]
            named[name.rsplit(".", 1)[-1]] = schema
            named[name if "." in name else f"{ns}.{name}"] = schema
            namespace = ns
        if kind == "record":
            for field in schema["fields"]:
                _index(field["type"], named, namespace)
        elif kind == "array":
            _index(schema["items"], named, namespace)
        elif kind == "map":
            _index(schema["values"], named, namespace)
        elif isinstance(kind, dict | list):
            _index(kind, named, namespace)


class _Checker:
    def __init__(self, reader: Any, writer: Any, forward: bool = False) -> None:
        self.forward = forward   # the reader is the old schema: word changes old -> new
        self.rnamed: dict[str, Any] = {}
        self.wnamed: dict[str, Any] = {}
        _index(reader, self.rnamed)
        _index(writer, self.wnamed)
        self.seen: set[tuple[int, int]] = set()

    def resolve(self, schema: Any, named: dict[str, Any]) -> Any:
        while True:
            if isinstance(schema, str) and schema not in PRIMITIVES:
                schema = named.get(schema, named.get(schema.rsplit(".", 1)[-1], schema))
            elif isinstance(schema, dict) and (
                    isinstance(schema.get("type"), dict | list)
                    or (schema.get("type") in PRIMITIVES and len(schema) == 1)):
                schema = schema["type"]
            else:
                return schema

    def kind(self, schema: Any) -> str:
        if isinstance(schema, list):
            return "union"
        if isinstance(schema, dict):
            return str(schema["type"])
        return str(schema)

    def describe(self, schema: Any) -> str:
        if isinstance(schema, list):
            return "[" + ", ".join(self.describe(b) for b in schema) + "]"
        if isinstance(schema, dict):
            if schema["type"] in ("record", "enum", "fixed"):
                return f"{schema['type']} {schema['name'].rsplit('.', 1)[-1]}"
            if schema["type"] == "array":
                return f"array of {self.describe(schema['items'])}"
            if schema["type"] == "map":
                return f"map of {self.describe(schema['values'])}"
            return str(schema["type"])
        return str(schema)

    def changed(self, r: Any, w: Any) -> str:
        old, new = (r, w) if self.forward else (w, r)
        return f"type changed from {self.describe(old)} to {self.describe(new)}"

    def check(self, reader: Any, writer: Any, path: str) -> list[tuple[str, str]]:
        r, w = self.resolve(reader, self.rnamed), self.resolve(writer, self.wnamed)
        rk, wk = self.kind(r), self.kind(w)
        if wk == "union":
            out = []
            for branch in w:
                out += self.check(r, branch, path)
            return out
        if rk == "union":
            for branch in r:
                if not self.check(branch, w, path):
                    return []
            return [(path, f"{self.changed(r, w)} (no branch of the union can read it)")]
        if wk in PRIMITIVES or rk in PRIMITIVES:
            if rk in PROMOTIONS.get(wk, {wk}):
                return []
            return [(path, self.changed(r, w))]
        if rk != wk:
            return [(path, self.changed(r, w))]
        if rk in ("record", "enum", "fixed"):
            rname, wname = r["name"].rsplit(".", 1)[-1], w["name"].rsplit(".", 1)[-1]
            aliases = {a.rsplit(".", 1)[-1] for a in r.get("aliases", [])}
            if rname != wname and wname not in aliases:
                old, new = (rname, wname) if self.forward else (wname, rname)
                return [(path, f"named type changed from {old} to {new}")]
        if rk == "record":
            key = (id(r), id(w))
            if key in self.seen:
                return []
            self.seen.add(key)
            return self.record(r, w, path)
        if rk == "enum":
            missing = [s for s in w["symbols"] if s not in r["symbols"]]
            if missing and "default" not in r:
                what = "added" if self.forward else "removed"
                return [(path, f"enum symbol(s) {', '.join(missing)} {what} without an enum "
                         "default")]
            return []
        if rk == "fixed":
            return [] if r["size"] == w["size"] else [
                (path, f"fixed size changed from {w['size']} to {r['size']}")]
        if rk == "array":
            return self.check(r["items"], w["items"], path)
        if rk == "map":
            return self.check(r["values"], w["values"], path)
        return []

    def record(self, r: dict[str, Any], w: dict[str, Any], path: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        wfields = {f["name"]: f for f in w["fields"]}
        for field in r["fields"]:
            names = [field["name"], *field.get("aliases", [])]
            match = next((wfields[n] for n in names if n in wfields), None)
            where = f"{path}.{field['name']}"
            if match is None:
                if "default" not in field:
                    out.append((where, "field removed, and it has no default" if self.forward
                                else "field added without a default"))
                continue
            out += self.check(field["type"], match["type"], where)
        return out


def problems(reader: Any, writer: Any, forward: bool = False) -> list[tuple[str, str]]:
    """Why data written with ``writer`` cannot be read with ``reader`` (empty: compatible).

    Both are JSON schemas (dicts), not fastavro-parsed ones. ``forward`` words the messages
    for a reader that is the older schema ("field removed", changes from reader to writer)."""
    root = reader.get("name", "") if isinstance(reader, dict) else ""
    return _Checker(reader, writer, forward).check(reader, writer, root.rsplit(".", 1)[-1])


MODES = ("BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL",
         "FULL_TRANSITIVE")


def check(new: str | dict[str, Any], versions: Sequence[tuple[int, str | dict[str, Any]]],
          mode: str = "BACKWARD_TRANSITIVE") -> list[str]:
    """Messages for every incompatibility of ``new`` with the registered ``versions``
    (``(version number, schema)``, oldest first) under ``mode``; empty when compatible."""
    if mode not in MODES and mode != "NONE":
        raise ValueError(f"unknown compatibility mode {mode!r}; known: {', '.join(MODES)}")
    if mode == "NONE" or not versions:
        return []
    new_schema = json.loads(new) if isinstance(new, str) else new
    transitive = mode.endswith("_TRANSITIVE")
    targets = versions if transitive else versions[-1:]
    backward = mode.startswith(("BACKWARD", "FULL"))
    forward = mode.startswith(("FORWARD", "FULL"))
    suffix = "_TRANSITIVE" if transitive else ""   # FULL: each direction names its half
    out = []
    for number, old in targets:
        old_schema = json.loads(old) if isinstance(old, str) else old
        if backward:
            for where, what in problems(new_schema, old_schema):
                out.append(f"{where}: {what} (BACKWARD{suffix}: a reader with the new schema "
                           f"cannot read data written with version {number})")
        if forward:
            for where, what in problems(old_schema, new_schema, forward=True):
                out.append(f"{where}: {what} (FORWARD{suffix}: a reader with version {number} "
                           "cannot read data written with the new schema)")
    return out
