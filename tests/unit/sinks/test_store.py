"""Opening the store: the sink waits while ClickHouse is unreachable, and says so."""

from __future__ import annotations

from typing import Any

import pytest

from sinks import store
from sinks.clickhouse import PermanentError, TransientError
from streams.settings import Settings


def test_wait_for_store_waits_out_an_unreachable_server(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    answers: list[Any] = [TransientError("Connection refused"),
                          TransientError("Connection refused"), "backend"]

    def connect(url: str, create_database: bool = False) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(store, "connect", connect)
    monkeypatch.setattr(store.time, "sleep", lambda s: None)
    settings = Settings(clickhouse_url="clickhouse://u:secret@127.0.0.1:9/db")
    assert store.wait_for_store(settings, "sink", lambda: False) == "backend"
    err = capsys.readouterr().err
    assert "waiting for ClickHouse" in err and "secret" not in err


def test_wait_for_store_gives_up_at_once_on_a_permanent_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def connect(url: str, create_database: bool = False) -> Any:
        raise PermanentError("Code: 516. Authentication failed")

    monkeypatch.setattr(store, "connect", connect)
    assert store.wait_for_store(Settings(clickhouse_url="clickhouse://127.0.0.1:9/db"), "sink",
                                lambda: False) is None


def test_wait_for_store_stops_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    def connect(url: str, create_database: bool = False) -> Any:
        raise TransientError("Connection refused")

    stops = iter([False, False, True])
    monkeypatch.setattr(store, "connect", connect)
    monkeypatch.setattr(store.time, "sleep", lambda s: None)
    assert store.wait_for_store(Settings(clickhouse_url="clickhouse://127.0.0.1:9/db"), "sink",
                                lambda: next(stops)) is None
