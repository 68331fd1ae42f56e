"""ClickHouse for the stack: embedded (chdb, nothing to start), the stack's own
clickhouse-server on loopback, or an existing server.

``EBI_CLICKHOUSE_URL`` decides: ``chdb:///path`` (the default, under ``var/chdb``) is
embedded; ``clickhouse://127.0.0.1:<EBI_CLICKHOUSE_TCP_PORT>/db`` is the stack's own server
(started here when the ``clickhouse-server`` binary is installed, e.g. Debian's package);
any other ``clickhouse://`` address is an existing server that the stack only checks.

The stack's own server listens on loopback only and has no open user: ``default`` has a
generated password (nobody uses it); the users of ``[clickhouse.users]`` in
deploy/access/local.toml have theirs from data_dir/secrets/credentials.toml, stored in
users.xml as ``password_sha256_hex`` with their rights (``ebi_admin`` everything,
``ebi_sink`` the base database without DDL, each reader its scope database, read-only:
:func:`streams.access.clickhouse_roles.users_xml`). Both the native and the HTTP port ask
for them. Processes find their user through ``clickhouse_user``/``clickhouse_password`` or
their ``identity`` (admin -> ebi_admin, sink -> ebi_sink).
"""

from __future__ import annotations

import base64
import shutil
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from streams.credentials import Login, clickhouse_login
from streams.settings import Secret, Settings
from streams.stack.pki import ensure_credentials, write_private
from streams.stack.process import ManagedProcess, StackError, require_port, wait_until

if TYPE_CHECKING:
    from streams.access.declaration import Declaration

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

def server_binary() -> str | None:
    return shutil.which("clickhouse-server") or next(
        (p for p in ("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server")
         if Path(p).exists()), None)


def http_query(port: int, sql: str, timeout: float = 5.0, login: Login | None = None) -> str:
    headers = {}
    if login is not None:
        token = base64.b64encode(f"{login.username}:{login.password.reveal()}".encode())
        headers["Authorization"] = f"Basic {token.decode()}"
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=sql.encode(),
                                     method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as rsp:
        return str(rsp.read().decode())


def native_ping(url: str, timeout: float = 2.0, login: Login | None = None) -> bool:
    from clickhouse_driver import Client

    parts = urllib.parse.urlparse(url)
    user = login.username if login else urllib.parse.unquote(parts.username or "default")
    password = login.password.reveal() if login else urllib.parse.unquote(parts.password or "")
    try:
        client = Client(host=parts.hostname or "127.0.0.1", port=parts.port or 9000,
                        user=user, password=password,
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
        from streams.settings import redact_url

        return redact_url(self.url)

    def _login(self) -> Login | None:
        login = clickhouse_login(self.settings)
        if login is None and self.parts.username:
            login = Login(urllib.parse.unquote(self.parts.username),
                          Secret(urllib.parse.unquote(self.parts.password or "")))
        return login

    def _admin_login(self) -> Login:
        """The stack's own login for its own server (ebi_admin)."""
        table = ensure_credentials(self.settings.data_dir, ())["clickhouse"]
        return Login("ebi_admin", Secret(table["ebi_admin"]))

    def healthy(self) -> bool:
        if self.embedded:
            return True  # opened in-process by whoever uses it
        if self.managed:
            try:
                return http_query(self.settings.clickhouse_http_port, "SELECT 1",
                                  login=self._admin_login()).strip() == "1"
            except OSError:
                return False
        return native_ping(self.url, login=self._login())

    def up(self) -> None:
        if self.embedded or not self.managed or self.proc.running():
            return
        binary = server_binary()
        if binary is None:
            raise StackError(
                f"EBI_CLICKHOUSE_URL={self.address} asks for the stack's own ClickHouse server, "
                "but "
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
        database = self.parts.path.strip("/") or "default"
        self.write_users(None, database)
        self.proc.start([binary, f"--config-file={self.dir / 'config.xml'}"], cwd=self.dir)
        wait_until(self.healthy, 60, f"ClickHouse server on 127.0.0.1:{s.clickhouse_tcp_port}",
                   self.proc)
        http_query(s.clickhouse_http_port, f"CREATE DATABASE IF NOT EXISTS `{database}`",
                   login=self._admin_login())

    def write_users(self, declaration: Declaration | None, database: str) -> Path:
        """users.xml from the access declaration (deploy/access/local.toml unless given),
        with a generated password for each user; a running server reloads it by itself.
        Returns its path."""
        from streams.access.clickhouse_roles import data_users, users_xml
        from streams.access.declaration import load_declaration

        declaration = declaration or load_declaration()
        users = data_users(declaration)
        passwords = ensure_credentials(self.settings.data_dir, (), users)["clickhouse"]
        path = self.dir / "users.xml"
        text = users_xml(users.values(), passwords, database)
        if not path.exists() or path.read_text() != text:
            self.dir.mkdir(parents=True, exist_ok=True)
            write_private(path, text.encode())
        return path

    def down(self) -> bool:
        return self.proc.stop(timeout=30)
