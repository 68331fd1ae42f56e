"""Apache Kafka in KRaft mode from Maven Central jars: one node, or ``kafka_brokers`` nodes
each with the broker and controller roles (a quorum of all of them).

Secure by default (``kafka_security = "sasl_ssl"``), three listeners on loopback:

- ``CLIENT`` on ``kafka_port``: SASL_SSL with SCRAM-SHA-512, TLS with the local CA's
  ``kafka`` certificate (PEM keystore): every client, each with its own principal;
- ``INTERNAL`` on ``kafka_broker_port``: inter-broker traffic, SSL with mutual TLS (client
  certificate required, the broker's own: principal ``User:CN=ebi-broker``, a super user);
  the stack uses it to create the SCRAM users, so no password is ever on a command line or
  in a configuration file;
- ``CONTROLLER`` on ``kafka_controller_port``: KRaft controller traffic, also mutual TLS
  (SCRAM is not supported between controllers).

``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``; super users: ``admin``
and the broker. ``kafka_security = "plaintext"`` (development only) starts the broker as it
was before: PLAINTEXT, no authentication, no authorizer.

Several brokers: node i (from 0) has the ports + i * ``kafka_port_step`` and its own data
directory (``data_dir/kafka`` for node 0, ``data_dir/kafka-<i+1>``), all on loopback, all
with the one broker certificate. Every node is formatted with the same cluster id and the
SCRAM credentials of every principal (``--add-scram`` in an argument file readable by the
owner only, salted: no password on a command line), so the users exist from the first
controller election on; the internal topics get ``min(3, brokers)`` replicas. A data
directory formatted for another number of brokers is refused (its quorum is fixed).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams import clients
from streams.credentials import scrub
from streams.settings import PROJECT_ROOT, Settings
from streams.stack.java import java_binary, resolve_classpath
from streams.stack.pki import BROKER_PRINCIPAL, Pki, ensure_credentials, ensure_pki, write_private
from streams.stack.process import ManagedProcess, StackError, require_port, wait_until

POM = PROJECT_ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J = PROJECT_ROOT / "deploy" / "kafka" / "log4j.properties"
ADMIN = "admin"
SCRAM_ITERATIONS = 8192
MAX_NODES = 16   # `ebi stack down` looks this far for nodes of a larger cluster


def kafka_ready(settings: Settings, timeout: float = 2.0,
                config: dict[str, Any] | None = None) -> bool:
    """A real metadata request with this process's credentials, not a port probe."""
    from confluent_kafka.admin import AdminClient

    try:
        base = config if config is not None else clients.kafka_config(settings)
        quiet: dict[str, Any] = {"log_level": 0, "socket.timeout.ms": int(timeout * 1000),
                                 "logger": _quiet}
        admin = AdminClient({**base, **quiet})
        metadata = admin.list_topics(timeout=timeout)
        return bool(metadata.brokers)
    except Exception:   # CredentialsError (no login yet), KafkaException, ...
        return False


def broker_admin_config(settings: Settings, pki: Pki, node: int = 0) -> dict[str, Any]:
    """An admin client on a local broker's INTERNAL listener, authenticated by the
    broker's own certificate (for the stack's bootstrap steps only)."""
    port = settings.kafka_broker_port + node * settings.kafka_port_step
    return {"bootstrap.servers": f"127.0.0.1:{port}",
            "security.protocol": "SSL", "ssl.ca.location": str(pki.ca),
            "ssl.certificate.location": str(pki.cert("kafka")),
            "ssl.key.location": str(pki.key("kafka")),
            "logger": clients.kafka_logger(), "log.connection.close": False}


def upsert_scram_users(config: dict[str, Any], passwords: dict[str, str],
                       mechanism: str = "SCRAM-SHA-512", timeout: float = 30.0) -> list[str]:
    """Create or update the SCRAM credentials of ``passwords`` (user -> password) through
    the Admin API; returns the users set. Needs ALTER on the cluster (a super user)."""
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    kind = ScramMechanism.SCRAM_SHA_512 if mechanism == "SCRAM-SHA-512" \
        else ScramMechanism.SCRAM_SHA_256
    admin = AdminClient(config)
    alterations: list[Any] = [UserScramCredentialUpsertion(user, ScramCredentialInfo(kind,
                                                SCRAM_ITERATIONS), password.encode())
                   for user, password in sorted(passwords.items())]
    done = []
    for user, future in admin.alter_user_scram_credentials(
            alterations, request_timeout=timeout).items():
        try:
            future.result()
        except Exception as exc:
            raise StackError(f"Kafka: cannot set the SCRAM credentials of {user!r}: "
                             f"{scrub(str(exc), list(passwords.values()))}") from None
        done.append(user)
    return done


class _Quiet:
    def log(self, *args: object, **kwargs: object) -> None:
        pass

    def __getattr__(self, name: str) -> object:
        return self.log


_quiet = _Quiet()


def scram_argument(user: str, password: str, mechanism: str = "SCRAM-SHA-512",
                   iterations: int = SCRAM_ITERATIONS, salt: bytes | None = None) -> str:
    """``kafka-storage format --add-scram`` value for ``user``: the salted password (RFC 5802
    Hi(), i.e. PBKDF2-HMAC), never the password itself."""
    salt = salt if salt is not None else secrets.token_bytes(32)
    digest = "sha512" if mechanism == "SCRAM-SHA-512" else "sha256"
    salted = hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations)
    return (f"{mechanism}=[name={user},iterations={iterations},"
            f'salt="{base64.b64encode(salt).decode()}",'
            f'saltedpassword="{base64.b64encode(salted).decode()}"]')


@dataclass(frozen=True)
class Ports:
    client: int
    internal: int
    controller: int


def node_ports(settings: Settings, node: int) -> Ports:
    step = node * settings.kafka_port_step
    return Ports(settings.kafka_port + step, settings.kafka_broker_port + step,
                 settings.kafka_controller_port + step)


class KafkaNode:
    """One node of the local cluster (broker and controller): its files and its process."""

    def __init__(self, settings: Settings, index: int) -> None:
        self.settings = settings
        self.index = index
        self.node_id = index + 1
        self.ports = node_ports(settings, index)
        self.dir = settings.data_dir / ("kafka" if index == 0 else f"kafka-{index + 1}")
        name = "kafka" if index == 0 else f"kafka-{index + 1}"
        self.config = self.dir / "server.properties"
        self.proc = ManagedProcess(name, settings.run_dir, settings.log_dir / f"{name}.log",
                                   marker=str(self.config))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.ports.client}"

    @property
    def formatted(self) -> bool:
        return (self.dir / "data" / "meta.properties").exists()

    def cluster_id(self) -> str | None:
        try:
            for line in (self.dir / "data" / "meta.properties").read_text().splitlines():
                if line.startswith("cluster.id="):
                    return line.split("=", 1)[1].strip()
        except OSError:
            return None
        return None

    def require_ports(self, secure: bool) -> None:
        what = "Kafka" if self.index == 0 else f"Kafka broker {self.node_id}"
        require_port(self.ports.client, what, "EBI_KAFKA_PORT")
        require_port(self.ports.controller, f"{what} controller", "EBI_KAFKA_CONTROLLER_PORT")
        if secure:
            require_port(self.ports.internal, f"{what} inter-broker listener",
                         "EBI_KAFKA_BROKER_PORT")

    def listeners(self, pki: Pki | None) -> list[str]:
        p = self.ports
        if pki is None:
            return [
                f"listeners=PLAINTEXT://127.0.0.1:{p.client},CONTROLLER://127.0.0.1:{p.controller}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{p.client}",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                "controller.listener.names=CONTROLLER",
            ]
        return [
            f"listeners=CLIENT://127.0.0.1:{p.client},INTERNAL://127.0.0.1:{p.internal},"
            f"CONTROLLER://127.0.0.1:{p.controller}",
            f"advertised.listeners=CLIENT://127.0.0.1:{p.client},"
            f"INTERNAL://127.0.0.1:{p.internal}",
            "listener.security.protocol.map=CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL",
            "inter.broker.listener.name=INTERNAL",
            "controller.listener.names=CONTROLLER",
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512",
            "listener.name.client.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.client.ssl.client.auth=none",
            "listener.name.internal.ssl.client.auth=required",
            "listener.name.controller.ssl.client.auth=required",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={pki.keystore('kafka')}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={pki.ca}",
            "ssl.endpoint.identification.algorithm=https",
            "ssl.enabled.protocols=TLSv1.3,TLSv1.2",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=false",
            f"super.users=User:{ADMIN};{BROKER_PRINCIPAL}",
        ]

    def properties(self, pki: Pki | None = None) -> str:
        s = self.settings
        brokers = s.kafka_brokers
        voters = ",".join(f"{i + 1}@127.0.0.1:{node_ports(s, i).controller}"
                          for i in range(brokers))
        internal_rf = min(3, brokers)
        replication = [
            f"offsets.topic.replication.factor={internal_rf}",
            "offsets.topic.num.partitions=4",
            f"transaction.state.log.replication.factor={internal_rf}",
            f"transaction.state.log.min.isr={min(2, internal_rf)}",
        ]
        if brokers > 1:   # a single node keeps the broker defaults it always had
            replication += [
                f"default.replication.factor={s.topic_replication_factor}",
                f"min.insync.replicas={s.topic_min_insync_replicas}",
                "unclean.leader.election.enable=false",
            ]
        return "\n".join([
            "process.roles=broker,controller",
            f"node.id={self.node_id}",
            f"controller.quorum.voters={voters}",
            *self.listeners(pki),
            f"log.dirs={self.dir / 'data'}",
            f"num.partitions={s.topic_partitions}",
            *replication,
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "message.max.bytes=8388608",
            "log.retention.hours=168",
            # a stack on a small machine: few threads, little context switching
            "num.network.threads=2",
            "num.io.threads=2",
            "background.threads=2",
            "",
        ])

    def format(self, base: list[str], cluster_id: str, scram: dict[str, str] | None) -> None:
        """``kafka-storage format`` with the SCRAM credentials in an argument file (0600,
        deleted afterwards): nothing secret on the command line."""
        argv = [*base, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                "-c", str(self.config), "--ignore-formatted"]
        args_file: Path | None = None
        if scram:
            args_file = self.settings.data_dir / "secrets" / f".kafka-format-{self.node_id}"
            lines = [line for user, password in sorted(scram.items())
                     for line in ("--add-scram", scram_argument(user, password))]
            write_private(args_file, ("\n".join(lines) + "\n").encode())
            argv.append(f"@{args_file}")
        try:
            formatted = subprocess.run(argv, capture_output=True, text=True)
        finally:
            if args_file is not None:
                args_file.unlink(missing_ok=True)
        if formatted.returncode != 0:
            secrets_ = list(scram.values()) if scram else []
            raise StackError(f"formatting Kafka storage in {self.dir} failed:\n"
                             f"{scrub(formatted.stdout + formatted.stderr, secrets_)}")

    def start(self, base: list[str]) -> None:
        self.proc.start([
            *base[:1], "-Xms256m", "-Xmx1g", "-XX:+UseG1GC",
            f"-Djava.io.tmpdir={self.dir}", *base[1:], "kafka.Kafka", str(self.config),
        ])

    def kill(self) -> bool:
        """SIGKILL (a crash: no controlled shutdown, no flush)."""
        return self.proc.kill()

    def down(self) -> bool:
        return self.proc.stop(timeout=30)


class Kafka:
    """The local Kafka: ``kafka_brokers`` nodes (see the module docstring), or an external
    cluster (``kafka_bootstrap``) that the stack only checks."""

    name = "kafka"

    def __init__(self, settings: Settings, principals: list[str] | None = None) -> None:
        self.settings = settings
        self.principals = principals
        self.nodes = [KafkaNode(settings, i) for i in range(settings.kafka_brokers)]
        self.dir = self.nodes[0].dir
        self.proc = self.nodes[0].proc if len(self.nodes) == 1 else _AnyRunning(self.nodes)

    @property
    def managed(self) -> bool:
        return not self.settings.kafka_bootstrap

    @property
    def address(self) -> str:
        return self.settings.bootstrap

    @property
    def secure(self) -> bool:
        return self.settings.kafka_security != "plaintext"

    def healthy(self) -> bool:
        return kafka_ready(self.settings)

    def _principals(self) -> list[str]:
        if self.principals is not None:
            return self.principals
        from streams.access.declaration import load_declaration

        return sorted(load_declaration().principals)

    def _quorum_file(self) -> Path:
        return self.dir / "quorum"

    def _check_quorum(self) -> None:
        """A data directory formatted for another number of brokers cannot join this one."""
        path = self._quorum_file()
        if not self.nodes[0].formatted:
            return
        recorded = path.read_text().strip() if path.exists() else "1"
        if recorded != str(len(self.nodes)):
            raise StackError(
                f"Kafka: the data in {self.dir} belongs to a cluster of {recorded} broker(s), "
                f"not kafka_brokers = {len(self.nodes)}; use that number, or remove "
                f"{self.settings.data_dir}/kafka* (all topics are lost) to start afresh")

    def up(self) -> None:
        if not self.managed:
            return
        nodes = [n for n in self.nodes if not n.proc.running()]
        if not nodes:
            return
        s = self.settings
        self._check_quorum()
        for node in nodes:
            node.require_ports(self.secure)
        pki = None
        scram: dict[str, str] | None = None
        if self.secure:
            pki = ensure_pki(s.data_dir)
            scram = ensure_credentials(s.data_dir, self._principals())["principals"]
        java = java_binary()
        classpath = resolve_classpath(POM, s.data_dir / "lib")
        base = [java, "-cp", classpath, f"-Dlog4j.configuration=file:{LOG4J}"]
        cluster_id = next((c for n in self.nodes if (c := n.cluster_id())), None) \
            or _cluster_id()
        for node in nodes:
            node.dir.mkdir(parents=True, exist_ok=True)
            node.config.write_text(node.properties(pki))
            if not node.formatted:
                node.format(base, cluster_id, scram)
        self._quorum_file().write_text(f"{len(self.nodes)}\n")
        for node in nodes:
            node.start(base)
        for node in nodes:
            self._await(node, pki)
        if pki is not None:
            self.sync_users(pki)
            wait_until(self.healthy, 60, f"Kafka on {self.address} (SASL_SSL as "
                       f"{s.identity if not s.kafka_username else s.kafka_username})",
                       self.nodes[0].proc)

    def _await(self, node: KafkaNode, pki: Pki | None) -> None:
        s = self.settings
        if pki is None:
            one = s.replace(kafka_bootstrap=node.address)
            wait_until(lambda: kafka_ready(one), 120, f"Kafka on {node.address}", node.proc)
            return
        internal = broker_admin_config(s, pki, node.index)
        wait_until(lambda: kafka_ready(s, config=internal), 120,
                   f"Kafka (inter-broker listener 127.0.0.1:{node.ports.internal})", node.proc)

    def restart(self, index: int) -> None:
        """Start node ``index`` again (after :meth:`kill` or ``down``) and wait until it
        answers; its data directory is kept."""
        node = self.nodes[index]
        if node.proc.running():
            return
        pki = ensure_pki(self.settings.data_dir) if self.secure else None
        java = java_binary()
        classpath = resolve_classpath(POM, self.settings.data_dir / "lib")
        node.start([java, "-cp", classpath, f"-Dlog4j.configuration=file:{LOG4J}"])
        self._await(node, pki)

    def kill(self, index: int) -> bool:
        return self.nodes[index].kill()

    def sync_users(self, pki: Pki | None = None) -> list[str]:
        """Set the SCRAM credentials of every principal from credentials.toml (also for a
        storage formatted before they existed, and after a password was rotated)."""
        s = self.settings
        pki = pki or ensure_pki(s.data_dir)
        table = ensure_credentials(s.data_dir, self._principals())["principals"]
        return upsert_scram_users(broker_admin_config(s, pki), table)

    def down(self) -> bool:
        """Stop every node, also those of a larger cluster started with other settings
        (found by their pid files)."""
        extra = [KafkaNode(self.settings, i) for i in range(len(self.nodes), MAX_NODES)
                 if (self.settings.run_dir / f"kafka-{i + 1}.pid").exists()]
        stopped = [node.down() for node in reversed([*self.nodes, *extra])]
        return any(stopped)


class _AnyRunning:
    """What ``ebi stack status`` asks of a cluster's processes."""

    def __init__(self, nodes: list[KafkaNode]) -> None:
        self.nodes = nodes

    def running(self) -> bool:
        return any(n.proc.running() for n in self.nodes)


def _cluster_id() -> str:
    # Kafka wants a base64url-encoded 16-byte UUID, as `StorageTool random-uuid` prints.
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
