"""ClickHouse for the stack: embedded (chdb, nothing to start), the stack's own
clickhouse-server on loopback, or an existing server.

``EBI_CLICKHOUSE_URL`` decides: ``chdb:///path`` (the default, under ``var/chdb``) is
embedded; ``clickhouse://127.0.0.1:<EBI_CLICKHOUSE_TCP_PORT>/db`` is the stack's own server
(started here when the ``clickhouse-server`` binary is installed, e.g. Debian's package);
any other ``clickhouse://`` address is an existing server that the stack only checks.
"""

from __future__ import annotations

import shutil
import urllib.parse
import urllib.request
from pathlib import Path

from streams.settings import Settings
from streams.stack.process import ManagedProcess, StackError, require_port, wait_until

LOOPBACK = {"127.0.0.1", "localhost", "::1"}

CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>{dir}/log/clickhouse-server.log</log>
        <errorlog>{dir}/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <path>{dir}/data/</path>
    <tmp_path>{dir}/tmp/</tmp_path>
    <user_files_path>{dir}/user_files/</user_files_path>
    <format_schema_path>{dir}/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
"""

USERS = """<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
    </interval></default></quotas>
</yandex>
"""


def server_binary() -> str | None:
    return shutil.which("clickhouse-server") or next(
        (p for p in ("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server")
         if Path(p).exists()), None)


def http_query(port: int, sql: str, timeout: float = 5.0) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=sql.encode(),
                                     method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as rsp:
        return str(rsp.read().decode())


def native_ping(url: str, timeout: float = 2.0) -> bool:
    from clickhouse_driver import Client

    parts = urllib.parse.urlparse(url)
    try:
        client = Client(host=parts.hostname or "127.0.0.1", port=parts.port or 9000,
                        connect_timeout=timeout, send_receive_timeout=timeout)
        client.execute("SELECT 1")
        client.disconnect()
        return True
    except Exception:
        return False


class ClickHouseServer:
    name = "clickhouse"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.clickhouse
        self.parts = urllib.parse.urlparse(self.url)
        self.dir = settings.data_dir / "clickhouse"
        self.proc = ManagedProcess("clickhouse", settings.run_dir,
                                   settings.log_dir / "clickhouse.log", marker=str(self.dir))

    @property
    def embedded(self) -> bool:
        return self.parts.scheme == "chdb"

    @property
    def managed(self) -> bool:
        return (self.parts.scheme == "clickhouse" and self.parts.hostname in LOOPBACK
                and self.parts.port == self.settings.clickhouse_tcp_port)

    @property
    def address(self) -> str:
        return self.url

    def healthy(self) -> bool:
        if self.embedded:
            return True  # opened in-process by whoever uses it
        if self.managed:
            try:
                return http_query(self.settings.clickhouse_http_port, "SELECT 1").strip() == "1"
            except OSError:
                return False
        return native_ping(self.url)

    def up(self) -> None:
        if self.embedded or not self.managed or self.proc.running():
            return
        binary = server_binary()
        if binary is None:
            raise StackError(
                f"EBI_CLICKHOUSE_URL={self.url} asks for the stack's own ClickHouse server, but "
                "clickhouse-server is not installed (Debian: apt-get install clickhouse-server, "
                "or `make system-deps`); or use the embedded engine: EBI_CLICKHOUSE_URL="
                "chdb:///path"
            )
        s = self.settings
        require_port(s.clickhouse_tcp_port, "ClickHouse (native)", "EBI_CLICKHOUSE_TCP_PORT")
        require_port(s.clickhouse_http_port, "ClickHouse (HTTP)", "EBI_CLICKHOUSE_HTTP_PORT")
        for sub in ("data", "tmp", "log", "user_files", "format_schemas"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "config.xml").write_text(CONFIG.format(
            dir=self.dir, http_port=s.clickhouse_http_port, tcp_port=s.clickhouse_tcp_port))
        (self.dir / "users.xml").write_text(USERS)
        self.proc.start([binary, f"--config-file={self.dir / 'config.xml'}"], cwd=self.dir)
        wait_until(self.healthy, 60, f"ClickHouse server on 127.0.0.1:{s.clickhouse_tcp_port}",
                   self.proc)
        database = self.parts.path.strip("/") or "default"
        http_query(s.clickhouse_http_port, f"CREATE DATABASE IF NOT EXISTS `{database}`")

    def down(self) -> bool:
        return self.proc.stop(timeout=30)
