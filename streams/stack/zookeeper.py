"""Apache ZooKeeper for the replicated ClickHouse of the local stack: one standalone server
from Debian's ``zookeeper`` package (3.8: ClickHouse 18.16's client protocol; 3.9.0-3.9.2 do
not speak it), on loopback, data under ``data_dir/zookeeper``.

Started only when the stack runs ClickHouse replicas (``clickhouse_replicas`` > 1); the
replicas keep their replication log, block ids (deduplication) and the ON CLUSTER DDL
queue in it. No admin server, only the ``ruok``/``srvr``/``mntr`` four-letter words.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from streams.settings import Settings
from streams.stack.java import java_binary
from streams.stack.process import ManagedProcess, StackError, require_port, wait_until

JAR = Path("/usr/share/java/zookeeper.jar")   # its manifest names the other jars
SLF4J = Path("/usr/share/java/slf4j-simple.jar")
MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


def four_letter(port: int, word: str, timeout: float = 2.0) -> str:
    """A ZooKeeper four-letter-word command's answer ("" when it does not answer)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(word.encode())
            chunks = []
            while True:
                data = sock.recv(4096)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


class ZooKeeper:
    name = "zookeeper"

    def __init__(self, settings: Settings, wanted: bool = True) -> None:
        self.settings = settings
        self.wanted = wanted     # False: only here so that `ebi stack down` stops it
        self.dir = settings.data_dir / "zookeeper"
        self.config = self.dir / "zoo.cfg"
        self.proc = ManagedProcess("zookeeper", settings.run_dir,
                                   settings.log_dir / "zookeeper.log", marker=str(self.config))

    @property
    def managed(self) -> bool:
        return True

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.settings.zookeeper_port}"

    def healthy(self) -> bool:
        """Serving sessions: ``srvr`` names its mode (``ruok`` says imok before the server
        takes sessions, and ClickHouse 18.16 crashes on a handshake that fails)."""
        return "Mode: " in four_letter(self.settings.zookeeper_port, "srvr")

    def properties(self) -> str:
        return "\n".join([
            "tickTime=2000",
            "initLimit=10",
            "syncLimit=5",
            f"dataDir={self.dir / 'data'}",
            f"clientPort={self.settings.zookeeper_port}",
            "clientPortAddress=127.0.0.1",
            "maxClientCnxns=200",
            "admin.enableServer=false",
            "4lw.commands.whitelist=ruok,srvr,mntr",
            "autopurge.snapRetainCount=3",
            "autopurge.purgeInterval=1",
            "",
        ])

    def up(self) -> None:
        if not self.wanted or self.proc.running():
            return
        if not JAR.exists():
            raise StackError(
                f"ZooKeeper is needed for ClickHouse replicas (clickhouse_replicas = "
                f"{self.settings.clickhouse_replicas}) and {JAR} is missing; install Debian's "
                "zookeeper package (apt-get install zookeeper, or `make system-deps`)")
        require_port(self.settings.zookeeper_port, "ZooKeeper", "EBI_ZOOKEEPER_PORT")
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self.config.write_text(self.properties())
        classpath = ":".join(str(p) for p in (JAR, SLF4J) if p.exists())
        self.proc.start([java_binary(), "-Xms64m", "-Xmx256m",
                         "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                         "-Dzookeeper.admin.enableServer=false",
                         f"-Djava.io.tmpdir={self.dir}", "-cp", classpath, MAIN,
                         str(self.config)], cwd=self.dir)
        wait_until(self.healthy, 60, f"ZooKeeper on {self.address}", self.proc)

    def down(self) -> bool:
        return self.proc.stop(timeout=30)


def installed() -> bool:
    return JAR.exists() and shutil.which("java") is not None
