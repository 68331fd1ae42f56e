"""A ClickHouse server over the native protocol (clickhouse-driver).

With ``alt_hosts`` the driver tries the other replicas in turn when the current one does not
answer (the next statement after a failure reconnects). With a ``cluster`` the database is
created ON CLUSTER and inserts (into the Distributed tables) are synchronous
(``insert_distributed_sync``): a statement returns when every shard has its block, so a
failed insert is retried as the same block and the replicas deduplicate it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sinks.clickhouse.backend import (
    DENIED_CODES,
    Features,
    QueryResult,
    classify,
    parse_version,
    plain,
)
from sinks.clickhouse.config import ClickHouseConfig


class ServerBackend:
    """A ClickHouse server over the native protocol."""

    def __init__(self, config: ClickHouseConfig, create_database: bool = False) -> None:
        from clickhouse_driver import Client

        self.config = config
        alt = ",".join(f"{h}:{p}" for h, p in config.alt_hosts) or None
        if create_database:
            admin = Client(config.host, port=config.port, user=config.user,
                           password=config.password, connect_timeout=config.connect_timeout,
                           alt_hosts=alt)
            on_cluster = f" ON CLUSTER {config.cluster}" if config.cluster else ""
            try:
                # ON CLUSTER waits for every replica: only when the database is missing here
                if not on_cluster or not admin.execute(
                        "SELECT 1 FROM system.databases WHERE name = %(db)s",
                        {"db": config.database}):
                    admin.execute(f"CREATE DATABASE IF NOT EXISTS {config.database}{on_cluster}")
            except Exception as exc:
                error = classify(exc, f"create database {config.database}")
                if error.code not in DENIED_CODES:   # a user without DDL: it must exist
                    raise error from exc
            finally:
                admin.disconnect()
        self.client = Client(config.host, port=config.port, database=config.database,
                             user=config.user, password=config.password,
                             connect_timeout=config.connect_timeout,
                             send_receive_timeout=config.send_receive_timeout, alt_hosts=alt)
        self._insert_settings = {"insert_distributed_sync": 1} if config.cluster else {}
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
                                [columns[n] for n in names], columnar=True,
                                settings=self._insert_settings)
        except Exception as exc:
            raise classify(exc, f"insert into {table}") from exc

    def close(self) -> None:
        self.client.disconnect()
