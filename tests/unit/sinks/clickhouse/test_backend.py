from __future__ import annotations

import pytest

from sinks.clickhouse.backend import (
    PermanentError,
    SchemaError,
    StoreBusyError,
    TransientError,
    classify,
    json_rows,
    parse_version,
    plain,
)


class ServerException(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class NetworkError(Exception):
    pass


@pytest.mark.parametrize(("exc", "kind"), [
    (ConnectionResetError(104, "Connection reset by peer"), TransientError),
    (NetworkError("Code: 210. Connection refused (127.0.0.1:19000)"), TransientError),
    (ServerException("Code: 252. Too many parts", 252), TransientError),
    (ServerException("Code: 241. Memory limit exceeded", 241), TransientError),
    (RuntimeError("Code: 60. DB::Exception: Unknown table expression identifier 'x'"),
     SchemaError),
    (ServerException("Code: 62. Syntax error", 62), PermanentError),
    (TypeError("Type mismatch in VALUES section"), PermanentError),
    (RuntimeError("Code: 76. Cannot lock file /x/status. Another server instance"),
     StoreBusyError),
])
def test_classify(exc: Exception, kind: type) -> None:
    err = classify(exc, "insert into readings_raw")
    assert type(err) is kind
    assert err.args[0].startswith("insert into readings_raw: ")


def test_parse_version() -> None:
    assert parse_version("18.16.1") == (18, 16, 1)
    assert parse_version("26.9.2.1") == (26, 9, 2)


def test_json_rows_and_plain_values() -> None:
    import datetime as dt

    result = json_rows('{"meta": [{"name": "n", "type": "UInt64"}], "data": [[3]]}')
    assert result.columns == ["n"] and result.scalar() == 3
    assert plain(dt.datetime(2026, 1, 1, 8, 30, 0, 125000)) == "2026-01-01 08:30:00.125"
    assert plain(dt.date(2026, 1, 1)) == "2026-01-01"
