"""One small interface over two ClickHouse backends.

* ``clickhouse://host:port/db``: a server over the native protocol (clickhouse-driver).
* ``chdb:///path``: embedded ClickHouse (chdb); one process per data directory.

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

from sinks.clickhouse.config import ClickHouseConfig, parse_url
from sinks.clickhouse.schema import Features

# Server error codes worth retrying: timeouts, overload, network, memory, too many parts.
TRANSIENT_CODES = frozenset({3, 32, 159, 160, 164, 202, 203, 209, 210, 236, 241, 242, 252, 285,
                             319, 394, 425, 439, 999})
# Missing database/table/column: the schema is not there (run `ebi migrate`).
SCHEMA_CODES = frozenset({16, 47, 60, 81})
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


def connect(url: str, create_database: bool = False) -> Backend:
    """Open a backend for ``url``; ``create_database`` creates the database first."""
    config = parse_url(url)
    if config.kind == "chdb":
        from sinks.clickhouse.embedded import ChdbBackend

        return ChdbBackend(config, create_database)
    return ServerBackend(config, create_database)


def classify(exc: BaseException, what: str) -> ClickHouseError:
    """Sort a driver/chdb exception into our error types."""
    if isinstance(exc, ClickHouseError):
        return exc
    text = str(exc).strip()
    code = getattr(exc, "code", None)
    if not isinstance(code, int):
        found = _CODE.search(text)
        code = int(found.group(1)) if found else None
    message = f"{what}: {text.splitlines()[0] if text else type(exc).__name__}"
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


class ServerBackend:
    """A ClickHouse server over the native protocol."""

    def __init__(self, config: ClickHouseConfig, create_database: bool = False) -> None:
        from clickhouse_driver import Client

        self.config = config
        if create_database:
            admin = Client(config.host, port=config.port, user=config.user,
                           password=config.password, connect_timeout=config.connect_timeout)
            try:
                admin.execute(f"CREATE DATABASE IF NOT EXISTS {config.database}")
            except Exception as exc:
                raise classify(exc, f"create database {config.database}") from exc
            finally:
                admin.disconnect()
        self.client = Client(config.host, port=config.port, database=config.database,
                             user=config.user, password=config.password,
                             connect_timeout=config.connect_timeout,
                             send_receive_timeout=config.send_receive_timeout)
        version = self.query("SELECT version()").scalar()
        self.features = Features.for_version(parse_version(str(version)))

    def query(self, sql: str) -> QueryResult:
        try:
            rows, meta = self.client.execute(sql, with_column_types=True)
        except Exception as exc:
            raise classify(exc, "query") from exc
        return QueryResult([m[0] for m in meta], [m[1] for m in meta],
                           [tuple(plain(v) for v in row) for row in rows])

    def command(self, sql: str) -> None:
        try:
            self.client.execute(sql)
        except Exception as exc:
            raise classify(exc, sql.split("(")[0][:120]) from exc

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]],
               types: Mapping[str, str]) -> None:
        names = list(columns)
        # The driver rewrites lists in place (NULL -> default value), but only the chunk
        # copies it makes itself (clickhouse_driver.util.helpers.column_chunks -> chunks ->
        # list(seq[i:i+n])): the caller's lists stay intact for a retry, no copy needed here.
        try:
            self.client.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES",
                                [columns[n] for n in names], columnar=True)
        except Exception as exc:
            raise classify(exc, f"insert into {table}") from exc

    def close(self) -> None:
        self.client.disconnect()


def json_rows(text: str) -> QueryResult:
    """Parse ClickHouse's JSONCompact output."""
    if not text.strip():
        return QueryResult([], [], [])
    doc = json.loads(text)
    meta = doc.get("meta", [])
    return QueryResult([m["name"] for m in meta], [m["type"] for m in meta],
                       [tuple(row) for row in doc.get("data", [])])
