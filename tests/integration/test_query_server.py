"""Queries while the sink owns the embedded store: its read-only query server, and
``connect`` handing out a read-only backend over it when the store is busy."""

from __future__ import annotations

from pathlib import Path

import pytest

from sinks.clickhouse import PermanentError, connect
from sinks.clickhouse.embedded import ChdbBackend
from sinks.clickhouse.remote import RemoteBackend
from sinks.clickhouse.serve import QueryServer, endpoint_path, read_only

pytestmark = pytest.mark.integration


def test_read_only_statements() -> None:
    assert read_only("SELECT 1") and read_only("  with x as (select 1) select * from x;")
    assert read_only("SHOW TABLES") and read_only("DESCRIBE readings")
    for sql in ("INSERT INTO t VALUES (1)", "DROP TABLE t", "SELECT 1; DROP TABLE t",
                "SELECT 1 INTO OUTFILE '/tmp/x'", "ALTER TABLE t DELETE WHERE 1",
                "SET readonly = 0"):
        assert not read_only(sql), sql


def test_the_owner_serves_read_only_queries_to_other_clients(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'store'}?database=q"
    owner = connect(url, create_database=True)
    assert isinstance(owner, ChdbBackend)
    owner.command("CREATE TABLE q.t (x Int32) ENGINE = MergeTree ORDER BY x")
    owner.command("INSERT INTO q.t VALUES (1), (2), (3)")
    server = QueryServer(owner, tmp_path / "store")
    server.start()
    try:
        busy = connect(url)          # the store is taken: a read-only backend over the owner
        assert isinstance(busy, RemoteBackend)
        assert busy.query("SELECT sum(x) AS s FROM q.t").scalar() == 6
        assert busy.features.version >= (20, 1)
        with pytest.raises(PermanentError, match="read-only queries only"):
            busy.command("DROP TABLE q.t")
        with pytest.raises(PermanentError, match="only one statement that reads"):
            busy.query("INSERT INTO q.t VALUES (4)")
        with pytest.raises(PermanentError, match="key"):
            RemoteBackend(busy.config, busy.url, "wrong", busy.pid)
    finally:
        server.stop()
        owner.close()
    assert not endpoint_path(tmp_path / "store").exists()
