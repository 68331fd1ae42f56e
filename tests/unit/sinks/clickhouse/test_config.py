from __future__ import annotations

from pathlib import Path

import pytest

from sinks.clickhouse.config import ConfigError, parse_url


def test_server_url() -> None:
    config = parse_url("clickhouse://bob:s3cret@ch.example:9440/analytics")
    assert (config.kind, config.host, config.port, config.database) == (
        "server", "ch.example", 9440, "analytics")
    assert (config.user, config.password) == ("bob", "s3cret")
    assert "s3cret" not in config.display


def test_server_url_defaults() -> None:
    config = parse_url("clickhouse://127.0.0.1")
    assert (config.port, config.database, config.user) == (9000, "ebi", "default")


def test_chdb_url() -> None:
    config = parse_url("chdb:///var/lib/ebi/chdb?database=it_1")
    assert config.kind == "chdb"
    assert config.path == Path("/var/lib/ebi/chdb")
    assert config.database == "it_1"


@pytest.mark.parametrize("url", ["mysql://x/y", "chdb://", "clickhouse:///db",
                                 "clickhouse://h/bad-name"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_url(url)
