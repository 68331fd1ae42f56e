"""Embedded ClickHouse through chdb: one session per process on a data directory.

chdb lets one process at a time open a directory; a second one fails with
"Cannot lock file .../status", which becomes :class:`StoreBusyError` with advice. Inserts send an
Arrow IPC stream through ``send_insert`` (columnar, no per-row text; the fastest chdb path).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sinks.clickhouse.backend import (
    Features,
    QueryResult,
    StoreBusyError,
    classify,
    json_rows,
    parse_version,
)
from sinks.clickhouse.config import ClickHouseConfig

BUSY_ADVICE = ("the embedded ClickHouse store {path} is in use by another process{owner} (chdb "
               "allows one process per data directory; during `make run` the sink owns it and "
               "answers read-only queries: `ebi query`, `ebi report`, `ebi reconcile` use it). "
               "For anything else stop that process (e.g. end the run), or run ClickHouse as "
               "a server and point EBI_CLICKHOUSE_URL at it (clickhouse://host:port/db).")


def store_owner(path: Path) -> str | None:
    """If another process holds the chdb directory, a description of it (else None)."""
    status = path / "status"
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        text = status.read_text(errors="replace")
        pid = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                    if line.startswith("PID:")), "")
        return f" (pid {pid})" if pid else ""
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def arrow_type(ch_type: str) -> Any:
    """The pyarrow type to hand ClickHouse for a column of ``ch_type``."""
    import pyarrow as pa

    t = ch_type
    for wrapper in ("LowCardinality(", "Nullable("):
        if t.startswith(wrapper):
            t = t[len(wrapper):-1]
            return arrow_type(t)
    if t.startswith("Array("):
        return pa.list_(arrow_type(t[6:-1]))
    if t.startswith("DateTime64"):
        return pa.timestamp("ms", tz="UTC")
    if t.startswith("DateTime"):
        return pa.timestamp("s", tz="UTC")
    return {"String": pa.string(), "Int32": pa.int32(), "Int64": pa.int64(),
            "UInt8": pa.uint8(), "UInt16": pa.uint16(), "UInt32": pa.uint32(),
            "UInt64": pa.uint64(), "Float32": pa.float32(), "Float64": pa.float64(),
            "Int8": pa.int8(), "Int16": pa.int16()}[t]


def _column_type(ch_type: str, values: Sequence[Any]) -> Any:
    """Arrow type for a column; Python bools and bytes keep their own Arrow types (ClickHouse
    converts them to UInt8 and String on insert)."""
    import pyarrow as pa

    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, bool):
        return pa.bool_()
    if isinstance(sample, bytes):
        return pa.binary()
    return arrow_type(ch_type)


class ChdbBackend:
    def __init__(self, config: ClickHouseConfig, create_database: bool = False) -> None:
        from chdb import session

        self.config = config
        assert config.path is not None
        config.path.mkdir(parents=True, exist_ok=True)
        self._check_free(config.path)
        try:
            self.session = session.Session(str(config.path))
        except Exception as exc:
            self._check_free(config.path)
            raise classify(exc, f"open {config.path}") from exc
        self._closed = False
        # one caller at a time: the sink's loop and the query server's threads share it
        self.lock = threading.RLock()
        if create_database:
            self.command(f"CREATE DATABASE IF NOT EXISTS {config.database}")
        self.command(f"USE {config.database}")
        version = self.query("SELECT version()").scalar()
        self.features = Features.for_version(parse_version(str(version)))

    @staticmethod
    def _check_free(path: Path) -> None:
        owner = store_owner(path)
        if owner is not None:
            raise StoreBusyError(BUSY_ADVICE.format(path=path, owner=owner))

    def query(self, sql: str) -> QueryResult:
        return json_rows(self.query_text(sql))

    def query_text(self, sql: str) -> str:
        """The result as ClickHouse's JSONCompact text (what the query server passes on)."""
        try:
            with self.lock:
                result = self.session.query(sql, "JSONCompact")
        except Exception as exc:
            raise classify(exc, "query") from exc
        return str(result.data())

    def command(self, sql: str) -> None:
        try:
            with self.lock:
                self.session.query(sql)
        except Exception as exc:
            raise classify(exc, sql.split("(")[0][:120]) from exc

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]],
               types: Mapping[str, str]) -> None:
        try:
            import pyarrow as pa

            batch = pa.table({n: pa.array(v, _column_type(types[n], v))
                              for n, v in columns.items()})
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, batch.schema) as writer:
                writer.write_table(batch)
            data = sink.getvalue().to_pybytes()
            # ArrowStream through send_insert: the fastest bulk path of chdb (no SQL text).
            with self.lock, self.session.send_insert(
                    f"INSERT INTO {table} ({', '.join(columns)})", "ArrowStream") as inserter:
                inserter.append(data)
                inserter.finish()
        except Exception as exc:
            raise classify(exc, f"insert into {table}") from exc

    def close(self) -> None:
        with self.lock:
            if not self._closed:
                self._closed = True
                self.session.close()
