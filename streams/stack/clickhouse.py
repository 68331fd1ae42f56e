"""ClickHouse for the stack: embedded (chdb, nothing to start), the stack's own
clickhouse-server on loopback, or an existing server.

``EBI_CLICKHOUSE_URL`` decides: ``chdb:///path`` (the default, under ``var/chdb``) is
embedded; ``clickhouse://127.0.0.1:<EBI_CLICKHOUSE_TCP_PORT>/db`` is the stack's own server
(started here when the ``clickhouse-server`` binary is installed, e.g. Debian's package);
any other ``clickhouse://`` address is an existing server that the stack only checks.

Replicas (``clickhouse_replicas`` > 1, with :mod:`streams.stack.zookeeper`): replica i (from 0)
listens on the ports + i * ``clickhouse_port_step`` (native, HTTP and the interserver port the
replicas fetch parts from each other on), keeps its files in ``data_dir/clickhouse`` (i = 0) or
``data_dir/clickhouse-<i+1>`` (0700: the cluster definition holds ebi_admin's password, which
the servers use for each other's Distributed queries) and has the macros ``{shard}`` (01) and
``{replica}`` (replica-<i+1>); all form the cluster ``clickhouse_cluster_name`` (1 shard, N
replicas, ``internal_replication``) with ON CLUSTER DDL through ZooKeeper.

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


CLUSTER = """    <interserver_http_host>127.0.0.1</interserver_http_host>
    <interserver_http_port>{interserver_port}</interserver_http_port>
    <zookeeper>
        <node><host>127.0.0.1</host><port>{zookeeper_port}</port></node>
        <session_timeout_ms>30000</session_timeout_ms>
    </zookeeper>
    <macros><shard>01</shard><replica>{replica}</replica></macros>
    <remote_servers>
        <{cluster}>
            <shard>
                <internal_replication>true</internal_replication>
{replicas}            </shard>
        </{cluster}>
    </remote_servers>
    <distributed_ddl><path>/clickhouse/{cluster}/task_queue/ddl</path></distributed_ddl>
"""

REPLICA = """                <replica><host>127.0.0.1</host><port>{port}</port><user>{user}</user>\
<password>{password}</password></replica>
"""
MAX_REPLICAS = 16   # `ebi stack down` looks this far for replicas started with other settings


def cluster_xml(settings: Settings, index: int, password: str) -> str:
    """The cluster part of replica ``index``'s config.xml (18.16 and current servers)."""
    step = settings.clickhouse_port_step
    replicas = "".join(REPLICA.format(port=settings.clickhouse_tcp_port + i * step,
                                      user="ebi_admin", password=password)
                       for i in range(settings.clickhouse_replicas))
    return CLUSTER.format(interserver_port=settings.clickhouse_interserver_port + index * step,
                          zookeeper_port=settings.zookeeper_port, replica=f"replica-{index + 1}",
                          cluster=settings.clickhouse_cluster_name, replicas=replicas)


class ClickHouseServer:
    name = "clickhouse"

    def __init__(self, settings: Settings, index: int = 0) -> None:
        self.settings = settings
        self.index = index
        self.url = settings.clickhouse
        self.parts = urllib.parse.urlparse(self.url)
        step = index * settings.clickhouse_port_step
        self.tcp_port = settings.clickhouse_tcp_port + step
        self.http_port = settings.clickhouse_http_port + step
        name = "clickhouse" if index == 0 else f"clickhouse-{index + 1}"
        self.dir = settings.data_dir / name
        self.proc = ManagedProcess(name, settings.run_dir, settings.log_dir / f"{name}.log",
                                   marker=str(self.dir / "config.xml"))

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
                return http_query(self.http_port, "SELECT 1",
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
        self.start(binary)
        self.await_ready()
        database = self.parts.path.strip("/") or "default"
        http_query(self.http_port, f"CREATE DATABASE IF NOT EXISTS `{database}`",
                   login=self._admin_login())

    def start(self, binary: str | None = None) -> None:
        """Write the configuration and start the process (without waiting)."""
        binary = binary or server_binary()
        if binary is None:
            raise StackError("clickhouse-server is not installed")
        s = self.settings
        replica = f" (replica {self.index + 1})" if s.clickhouse_replicas > 1 else ""
        require_port(self.tcp_port, f"ClickHouse{replica} (native)", "EBI_CLICKHOUSE_TCP_PORT")
        require_port(self.http_port, f"ClickHouse{replica} (HTTP)", "EBI_CLICKHOUSE_HTTP_PORT")
        for sub in ("data", "tmp", "log", "user_files", "format_schemas"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        passwords = ensure_credentials(s.data_dir, ())["clickhouse"]
        config = CONFIG.format(dir=self.dir, http_port=self.http_port, tcp_port=self.tcp_port)
        if s.clickhouse_replicas > 1:
            require_port(s.clickhouse_interserver_port + self.index * s.clickhouse_port_step,
                         f"ClickHouse{replica} (interserver)", "EBI_CLICKHOUSE_INTERSERVER_PORT")
            self.dir.chmod(0o700)
            config = config.replace("</yandex>", cluster_xml(s, self.index,
                                                             passwords["ebi_admin"]) + "</yandex>")
        write_private(self.dir / "config.xml", config.encode())
        self.write_users(None, self.parts.path.strip("/") or "default")
        self.proc.start([binary, f"--config-file={self.dir / 'config.xml'}"], cwd=self.dir)

    def await_ready(self, timeout: float = 90.0) -> None:
        wait_until(self.healthy, timeout, f"ClickHouse server on 127.0.0.1:{self.tcp_port}",
                   self.proc)

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


class ClickHouseReplicas:
    """The local stack's ``clickhouse_replicas`` servers of one shard (see the module
    docstring); ZooKeeper must be up first."""

    name = "clickhouse"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.replicas = [ClickHouseServer(settings, i) for i in range(settings.clickhouse_replicas)]
        self.proc = _AnyRunning(self.replicas)

    @property
    def managed(self) -> bool:
        return self.replicas[0].managed

    @property
    def embedded(self) -> bool:
        return self.replicas[0].embedded

    @property
    def address(self) -> str:
        extra = len(self.replicas) - 1
        more = f" + {extra} replica(s) on +{self.settings.clickhouse_port_step}" if extra else ""
        return f"{self.replicas[0].address}{more}"

    def healthy(self) -> bool:
        return all(r.healthy() for r in self.replicas)

    def up(self) -> None:
        if self.embedded or not self.managed:
            return
        first = self.replicas[0]
        if server_binary() is None:
            first.up()   # raises with the message on how to install it
        starting = [r for r in self.replicas if not r.proc.running()]
        for replica in starting:
            replica.start()
        for replica in starting:
            replica.await_ready()
        database = first.parts.path.strip("/") or "default"
        for replica in self.replicas:
            http_query(replica.http_port, f"CREATE DATABASE IF NOT EXISTS `{database}`",
                       login=first._admin_login())

    def stop(self, index: int) -> bool:
        """Stop replica ``index`` (SIGTERM, as a shutdown for maintenance)."""
        return self.replicas[index].down()

    def start(self, index: int) -> None:
        """Start replica ``index`` again and wait until it answers."""
        replica = self.replicas[index]
        if not replica.proc.running():
            replica.start()
        replica.await_ready()

    def down(self) -> bool:
        extra = [ClickHouseServer(self.settings, i)
                 for i in range(len(self.replicas), MAX_REPLICAS)
                 if (self.settings.run_dir / f"clickhouse-{i + 1}.pid").exists()]
        return any([r.down() for r in reversed([*self.replicas, *extra])])


class _AnyRunning:
    def __init__(self, replicas: list[ClickHouseServer]) -> None:
        self.replicas = replicas

    def running(self) -> bool:
        return any(r.proc.running() for r in self.replicas)
