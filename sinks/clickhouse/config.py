"""Where ClickHouse is: ``clickhouse://[user[:password]@]host[:port]/database`` (native
protocol, clickhouse-driver) or ``chdb:///path/to/dir[?database=name]`` (embedded chdb).

A server URL may name more servers and a cluster: ``?alt_hosts=host:port,host:port`` (the
other replicas, tried in turn when the first does not answer) and ``?cluster=name`` (the
tables are replicated across that cluster of the servers' ``remote_servers``:
:mod:`sinks.clickhouse.migrations`). :func:`login_url` adds both from the settings
(``clickhouse_cluster``, the local stack's replicas)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

from streams.settings import redact_url

if TYPE_CHECKING:
    from streams.settings import Settings

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
    password: str = field(default="", repr=False)
    path: Path | None = None  # chdb data directory
    connect_timeout: float = 3.0
    send_receive_timeout: float = 60.0
    alt_hosts: tuple[tuple[str, int], ...] = ()   # other replicas to fail over to
    cluster: str = ""         # tables replicated ON CLUSTER (empty: one server)

    @property
    def display(self) -> str:
        """The URL without a password (for messages and logs)."""
        if self.kind == "chdb":
            return f"chdb://{self.path}?database={self.database}"
        more = ",".join(f"{h}:{p}" for h, p in self.alt_hosts)
        query = "&".join(q for q in (f"alt_hosts={more}" if more else "",
                                     f"cluster={self.cluster}" if self.cluster else "") if q)
        return f"clickhouse://{self.host}:{self.port}/{self.database}" + (
            f"?{query}" if query else "")


def display_url(url: str) -> str:
    """``url`` without its password, for messages and logs (never raises)."""
    return redact_url(url)


def login_url(settings: Settings) -> str:
    """``settings.clickhouse`` with the login of this process merged in: the
    ``clickhouse_user``/``clickhouse_password`` settings, or the local stack's generated
    user for ``settings.identity``; a URL that names its own user keeps it. The result
    carries a password: pass it to ``connect`` only, print :func:`display_url` of it."""
    from streams.credentials import clickhouse_login

    url = cluster_url(settings)
    parts = urlsplit(url)
    if parts.scheme not in ("clickhouse", "tcp") or (parts.username and
                                                      not settings.clickhouse_user):
        return url
    login = clickhouse_login(settings)
    if login is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    userinfo = f"{quote(login.username, safe='')}:{quote(login.password.reveal(), safe='')}"
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query,
                       parts.fragment))


def cluster_url(settings: Settings) -> str:
    """``settings.clickhouse`` with ``cluster=`` (``clickhouse_cluster_name``) and, for the
    local stack's own replicas, ``alt_hosts=`` (the other replicas) when it has none."""
    url = settings.clickhouse
    parts = urlsplit(url)
    cluster = settings.clickhouse_cluster_name
    if parts.scheme not in ("clickhouse", "tcp") or not cluster:
        return url
    query = parse_qs(parts.query)
    query.setdefault("cluster", [cluster])
    local = parts.hostname in ("127.0.0.1", "localhost") and \
        (parts.port or DEFAULT_PORT) == settings.clickhouse_tcp_port
    if local and settings.clickhouse_replicas > 1 and "alt_hosts" not in query:
        step = settings.clickhouse_port_step
        query["alt_hosts"] = [",".join(
            f"{parts.hostname}:{settings.clickhouse_tcp_port + i * step}"
            for i in range(1, settings.clickhouse_replicas))]
    text = "&".join(f"{k}={v[-1]}" for k, v in query.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, text, parts.fragment))


def _hosts(text: str, url: str) -> tuple[tuple[str, int], ...]:
    out = []
    for item in filter(None, (h.strip() for h in text.split(","))):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"{url!r}: alt_hosts entry {item!r} is not host:port")
        out.append((host, int(port)))
    return tuple(out)


def parse_url(url: str) -> ClickHouseConfig:
    try:
        return _parse_url(url)
    except ConfigError as exc:   # messages name the URL: never with its password
        raise ConfigError(str(exc).replace(repr(url), repr(display_url(url)))) from None


def _parse_url(url: str) -> ClickHouseConfig:
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
        cluster = query.get("cluster", "")
        if cluster and not cluster.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"{url!r}: cluster name {cluster!r} must be letters, digits, _, -")
        return ClickHouseConfig(
            "server", database, host=parts.hostname, port=port,
            user=unquote(parts.username or "default"), password=unquote(parts.password or ""),
            connect_timeout=float(query.get("connect_timeout", 3.0)),
            send_receive_timeout=float(query.get("send_receive_timeout", 60.0)),
            alt_hosts=_hosts(query.get("alt_hosts", ""), url), cluster=cluster,
        )
    raise ConfigError(f"{url!r}: unknown scheme {parts.scheme!r}; expected "
                      "clickhouse://host:port/database or chdb:///path")
