"""The interface every ClickHouse backend implements, its errors and shared helpers.

Backends: :mod:`.server` (a server over the native protocol, clickhouse-driver) and
:mod:`.embedded` (chdb, in process, one process per data directory);
:func:`sinks.clickhouse.connect` opens the one a URL names.

``query(sql) -> QueryResult`` (column names, types, rows), ``command(sql)``,
``insert(table, columns, types)`` (columnar: one list per column) and ``features`` (what the
server supports, from its version). Errors are sorted into :class:`TransientError` (retry
later), :class:`PermanentError` (the data or the SQL is wrong), :class:`SchemaError` (a table
or database is missing: run ``ebi migrate``) and :class:`StoreBusyError` (another process
owns the chdb directory).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sinks.clickhouse.config import ClickHouseConfig

# Server error codes worth retrying: timeouts, overload, network, memory, too many parts.
TRANSIENT_CODES = frozenset({3, 32, 159, 160, 164, 202, 203, 209, 210, 236, 241, 242, 252, 285,
                             319, 394, 425, 439, 999})
# Missing database/table/column: the schema is not there (run `ebi migrate`).
SCHEMA_CODES = frozenset({16, 47, 60, 81})
# The user may not do that: readonly (164), DDL prohibited (392, 18.16's allow_ddl = 0),
# database access denied (291), not enough privileges (497, access control).
DENIED_CODES = frozenset({164, 291, 392, 497})
_CODE = re.compile(r"Code:\s*(\d+)")


class ClickHouseError(RuntimeError):
    """Base class; ``code`` is ClickHouse's error code when there is one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientError(ClickHouseError):
    """ClickHouse is unreachable or overloaded: retry with backoff."""


class PermanentError(ClickHouseError):
    """ClickHouse rejected the statement or the data: retrying will not help."""


class SchemaError(PermanentError):
    """A database, table or column is missing."""


class StoreBusyError(ClickHouseError):
    """Another process holds the embedded store (chdb allows one process per directory)."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None


@dataclass(frozen=True)
class Features:
    """What the connected ClickHouse supports."""

    version: tuple[int, ...]
    datetime64: bool
    low_cardinality: bool

    @classmethod
    def for_version(cls, version: tuple[int, ...]) -> Features:
        # DateTime64 arrived in 20.1; LowCardinality was experimental until 19.x, so both
        # are used from 20.1 on and the 18.16/19.x servers get DateTime + millis and String.
        modern = version >= (20, 1)
        return cls(version=version, datetime64=modern, low_cardinality=modern)

    @property
    def replicated_comments(self) -> bool:
        """``ALTER ... COMMENT COLUMN`` on a Replicated*MergeTree table (18.16: "Unsupported
        type of ALTER query"; current servers replicate it)."""
        return self.datetime64

    @property
    def version_text(self) -> str:
        return ".".join(str(v) for v in self.version)


class Backend(Protocol):
    config: ClickHouseConfig
    features: Features

    def query(self, sql: str) -> QueryResult: ...
    def command(self, sql: str) -> None: ...
    def insert(self, table: str, columns: Mapping[str, Sequence[Any]],
               types: Mapping[str, str]) -> None: ...
    def close(self) -> None: ...


def parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def classify(exc: BaseException, what: str) -> ClickHouseError:
    """Sort a driver/chdb exception into our error types."""
    if isinstance(exc, ClickHouseError):
        return exc
    text = str(exc).strip()
    code = getattr(exc, "code", None)
    if not isinstance(code, int):
        found = _CODE.search(text)
        code = int(found.group(1)) if found else None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    if len(lines) > 1 and re.fullmatch(r"Code: \d+\.", first):   # the driver's "Code: 193."
        first = re.sub(r"\s*Stack trace:?$", "", f"{first} {lines[1]}")
    message = f"{what}: {first}"
    if "Cannot lock file" in text or "is locked by another" in text:
        return StoreBusyError(message, code)
    name = type(exc).__name__
    if isinstance(exc, OSError | EOFError | TimeoutError) or name in (
            "NetworkError", "SocketTimeoutError", "UnexpectedPacketFromServerError"):
        return TransientError(message, code)
    if isinstance(exc, TypeError | ValueError | OverflowError | struct.error | AttributeError):
        return PermanentError(message, code)
    if code in SCHEMA_CODES:
        return SchemaError(message, code)
    if code in TRANSIENT_CODES:
        return TransientError(message, code)
    return PermanentError(message, code)


def plain(value: Any) -> Any:
    """A query result value as JSON-friendly Python (same shape from both backends)."""
    if isinstance(value, dt.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        return f"{text}.{value.microsecond // 1000:03d}" if value.microsecond else text
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def json_rows(text: str) -> QueryResult:
    """Parse ClickHouse's JSONCompact output."""
    if not text.strip():
        return QueryResult([], [], [])
    doc = json.loads(text)
    meta = doc.get("meta", [])
    return QueryResult([m["name"] for m in meta], [m["type"] for m in meta],
                       [tuple(row) for row in doc.get("data", [])])
