"""Apache Kafka, single node in KRaft mode, from Maven Central jars."""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

from streams.settings import PROJECT_ROOT, Settings
from streams.stack.java import java_binary, resolve_classpath
from streams.stack.process import ManagedProcess, StackError, require_port, wait_until

POM = PROJECT_ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J = PROJECT_ROOT / "deploy" / "kafka" / "log4j.properties"


def kafka_ready(bootstrap: str, timeout: float = 2.0) -> bool:
    """A real metadata request, not a port probe."""
    from confluent_kafka.admin import AdminClient

    try:
        config: dict[str, Any] = {"bootstrap.servers": bootstrap, "log_level": 0,
                                  "socket.timeout.ms": int(timeout * 1000), "logger": _quiet}
        admin = AdminClient(config)
        metadata = admin.list_topics(timeout=timeout)
        return bool(metadata.brokers)
    except Exception:
        return False


class _Quiet:
    def log(self, *args: object, **kwargs: object) -> None:
        pass

    def __getattr__(self, name: str) -> object:
        return self.log


_quiet = _Quiet()


class Kafka:
    name = "kafka"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.data_dir / "kafka"
        self.proc = ManagedProcess(
            "kafka", settings.run_dir, settings.log_dir / "kafka.log", marker=str(self.dir)
        )

    @property
    def managed(self) -> bool:
        return not self.settings.kafka_bootstrap

    @property
    def address(self) -> str:
        return self.settings.bootstrap

    def healthy(self) -> bool:
        return kafka_ready(self.address)

    def _properties(self) -> str:
        s = self.settings
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{s.kafka_controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},"
            f"CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{s.kafka_port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={self.dir / 'data'}",
            f"num.partitions={s.topic_partitions}",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "message.max.bytes=8388608",
            "log.retention.hours=168",
            # a single-node stack on a small machine: few threads, little context switching
            "num.network.threads=2",
            "num.io.threads=2",
            "background.threads=2",
            "",
        ])

    def up(self) -> None:
        if not self.managed or self.proc.running():
            return
        s = self.settings
        require_port(s.kafka_port, "Kafka", "EBI_KAFKA_PORT")
        require_port(s.kafka_controller_port, "Kafka controller", "EBI_KAFKA_CONTROLLER_PORT")
        java = java_binary()
        classpath = resolve_classpath(POM, s.data_dir / "lib")
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "server.properties"
        config.write_text(self._properties())
        base = [java, "-cp", classpath, f"-Dlog4j.configuration=file:{LOG4J}"]
        if not (self.dir / "data" / "meta.properties").exists():
            cluster_id = _cluster_id()
            formatted = subprocess.run(
                [*base, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                 "-c", str(config),
                 "--ignore-formatted"],
                capture_output=True, text=True,
            )
            if formatted.returncode != 0:
                raise StackError(f"formatting Kafka storage in {self.dir} failed:\n"
                                 f"{formatted.stdout}{formatted.stderr}")
        self.proc.start([
            *base[:1], "-Xms256m", "-Xmx1g", "-XX:+UseG1GC",
            f"-Djava.io.tmpdir={self.dir}", *base[1:], "kafka.Kafka", str(config),
        ])
        wait_until(self.healthy, 90, f"Kafka on {self.address}", self.proc)

    def down(self) -> bool:
        return self.proc.stop(timeout=30)


def _cluster_id() -> str:
    # Kafka wants a base64url-encoded 16-byte UUID, as `StorageTool random-uuid` prints.
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
