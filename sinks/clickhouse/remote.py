"""A read-only backend over the sink's query server (see :mod:`.serve`): what ``connect``
hands out for an embedded store another process (the sink) holds. Queries work; commands
and inserts are refused with the reason."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from sinks.clickhouse.backend import (
    Features,
    PermanentError,
    QueryResult,
    TransientError,
    json_rows,
    parse_version,
)
from sinks.clickhouse.config import ClickHouseConfig
from sinks.clickhouse.serve import endpoint_path


class RemoteBackend:
    read_only = True

    def __init__(self, config: ClickHouseConfig, url: str, key: str, pid: int,
                 timeout: float = 60.0) -> None:
        self.config = config
        self.url = url
        self.key = key
        self.pid = pid
        self.timeout = timeout
        self.features = Features.for_version(parse_version(str(
            self.query("SELECT version()").scalar())))

    @classmethod
    def for_store(cls, config: ClickHouseConfig) -> RemoteBackend | None:
        """The backend for the store's query server, if its owner serves one."""
        assert config.path is not None
        try:
            found = json.loads(endpoint_path(config.path).read_text())
            os.kill(int(found["pid"]), 0)     # the owner still runs
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return cls(config, str(found["url"]), str(found["key"]), int(found["pid"]))

    def query(self, sql: str) -> QueryResult:
        request = urllib.request.Request(
            self.url, data=sql.encode(), method="POST",
            headers={"X-ClickHouse-Key": self.key, "Content-Type": "text/plain"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as rsp:
                return json_rows(rsp.read().decode())
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace").strip()
            raise PermanentError(f"query (through the sink, pid {self.pid}): {text}") from None
        except OSError as exc:
            raise TransientError(f"query (through the sink, pid {self.pid}): {exc}") from None

    def _refuse(self, what: str) -> PermanentError:
        return PermanentError(f"{what}: the embedded store {self.config.path} is in use by the "
                              f"sink (pid {self.pid}), which answers read-only queries only; "
                              "stop it (end the run) to change the store")

    def command(self, sql: str) -> None:
        raise self._refuse(sql.split("(")[0][:60])

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]],
               types: Mapping[str, str]) -> None:
        raise self._refuse(f"insert into {table}")

    def close(self) -> None:
        pass
