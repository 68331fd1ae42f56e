"""ClickHouse: one :class:`~.backend.Backend` interface over a server (:mod:`.server`) and the
embedded engine (:mod:`.embedded`); :func:`connect` opens the one a URL names. Tables come from
the catalog and the Avro schemas (:mod:`.schema`, :mod:`.views`, :mod:`.migrations`); the sink
is :mod:`.sink` over :mod:`.encoding` and :mod:`.ledger`."""

from __future__ import annotations

from sinks.clickhouse.backend import (
    Backend,
    ClickHouseError,
    PermanentError,
    QueryResult,
    SchemaError,
    StoreBusyError,
    TransientError,
)
from sinks.clickhouse.config import parse_url


def connect(url: str, create_database: bool = False) -> Backend:
    """Open a backend for ``url``; ``create_database`` creates the database first."""
    config = parse_url(url)
    if config.kind == "chdb":
        from sinks.clickhouse.embedded import ChdbBackend

        try:
            return ChdbBackend(config, create_database)
        except StoreBusyError:
            from sinks.clickhouse.remote import RemoteBackend

            remote = RemoteBackend.for_store(config)   # the owner answers read-only queries
            if remote is None:
                raise
            return remote
    from sinks.clickhouse.server import ServerBackend

    return ServerBackend(config, create_database)


__all__ = ["Backend", "ClickHouseError", "PermanentError", "QueryResult", "SchemaError",
           "StoreBusyError", "TransientError", "connect"]
