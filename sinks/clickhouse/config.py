"""Where ClickHouse is: ``clickhouse://[user[:password]@]host[:port]/database`` (native
protocol, clickhouse-driver) or ``chdb:///path/to/dir[?database=name]`` (embedded chdb)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_DATABASE = "ebi"
DEFAULT_PORT = 9000


class ConfigError(ValueError):
    """The ClickHouse URL cannot be understood."""


@dataclass(frozen=True)
class ClickHouseConfig:
    kind: str                 # "server" or "chdb"
    database: str
    host: str = ""
    port: int = DEFAULT_PORT
    user: str = "default"
    password: str = ""
    path: Path | None = None  # chdb data directory
    connect_timeout: float = 3.0
    send_receive_timeout: float = 60.0

    @property
    def display(self) -> str:
        """The URL without a password (for messages and logs)."""
        if self.kind == "chdb":
            return f"chdb://{self.path}?database={self.database}"
        return f"clickhouse://{self.host}:{self.port}/{self.database}"


def parse_url(url: str) -> ClickHouseConfig:
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    database = query.get("database", "")
    if parts.scheme == "chdb":
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ConfigError(f"{url!r}: chdb URL needs a directory, e.g. chdb:///var/ebi/chdb")
        return ClickHouseConfig("chdb", database or DEFAULT_DATABASE, path=Path(path))
    if parts.scheme in ("clickhouse", "tcp"):
        if not parts.hostname:
            raise ConfigError(f"{url!r}: no host; expected clickhouse://host:port/database")
        database = parts.path.strip("/") or database or DEFAULT_DATABASE
        if not database.replace("_", "").isalnum():
            raise ConfigError(f"{url!r}: database name {database!r} must be letters, digits, _")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError as exc:
            raise ConfigError(f"{url!r}: bad port ({exc})") from None
        return ClickHouseConfig(
            "server", database, host=parts.hostname, port=port,
            user=unquote(parts.username or "default"), password=unquote(parts.password or ""),
            connect_timeout=float(query.get("connect_timeout", 3.0)),
            send_receive_timeout=float(query.get("send_receive_timeout", 60.0)),
        )
    raise ConfigError(f"{url!r}: unknown scheme {parts.scheme!r}; expected "
                      "clickhouse://host:port/database or chdb:///path")
