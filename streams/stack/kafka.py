"""Apache Kafka, single node in KRaft mode, from Maven Central jars.

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
"""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

from streams import clients
from streams.credentials import scrub
from streams.settings import PROJECT_ROOT, Settings
from streams.stack.java import java_binary, resolve_classpath
from streams.stack.pki import BROKER_PRINCIPAL, Pki, ensure_credentials, ensure_pki
from streams.stack.process import ManagedProcess, StackError, require_port, wait_until

POM = PROJECT_ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J = PROJECT_ROOT / "deploy" / "kafka" / "log4j.properties"
ADMIN = "admin"
SCRAM_ITERATIONS = 8192


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


def broker_admin_config(settings: Settings, pki: Pki) -> dict[str, Any]:
    """An admin client on the local broker's INTERNAL listener, authenticated by the
    broker's own certificate (for the stack's bootstrap steps only)."""
    return {"bootstrap.servers": f"127.0.0.1:{settings.kafka_broker_port}",
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


class Kafka:
    name = "kafka"

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

    def _listeners(self, pki: Pki | None) -> list[str]:
        s = self.settings
        if pki is None:
            return [
                f"listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},"
                f"CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{s.kafka_port}",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                "controller.listener.names=CONTROLLER",
            ]
        return [
            f"listeners=CLIENT://127.0.0.1:{s.kafka_port},"
            f"INTERNAL://127.0.0.1:{s.kafka_broker_port},"
            f"CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
            f"advertised.listeners=CLIENT://127.0.0.1:{s.kafka_port},"
            f"INTERNAL://127.0.0.1:{s.kafka_broker_port}",
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

    def _properties(self, pki: Pki | None = None) -> str:
        s = self.settings
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{s.kafka_controller_port}",
            *self._listeners(pki),
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

    def __init__(self, settings: Settings, principals: list[str] | None = None) -> None:
        self.settings = settings
        self.principals = principals
        self.dir = settings.data_dir / "kafka"
        self.proc = ManagedProcess(
            "kafka", settings.run_dir, settings.log_dir / "kafka.log", marker=str(self.dir)
        )

    def _principals(self) -> list[str]:
        if self.principals is not None:
            return self.principals
        from streams.access.declaration import load_declaration

        return sorted(load_declaration().principals)

    def up(self) -> None:
        if not self.managed or self.proc.running():
            return
        s = self.settings
        require_port(s.kafka_port, "Kafka", "EBI_KAFKA_PORT")
        require_port(s.kafka_controller_port, "Kafka controller", "EBI_KAFKA_CONTROLLER_PORT")
        pki = None
        if self.secure:
            require_port(s.kafka_broker_port, "Kafka inter-broker listener",
                         "EBI_KAFKA_BROKER_PORT")
            pki = ensure_pki(s.data_dir)
            ensure_credentials(s.data_dir, self._principals())
        java = java_binary()
        classpath = resolve_classpath(POM, s.data_dir / "lib")
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "server.properties"
        config.write_text(self._properties(pki))
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
        if pki is None:
            wait_until(self.healthy, 90, f"Kafka on {self.address}", self.proc)
            return
        internal = broker_admin_config(s, pki)
        wait_until(lambda: kafka_ready(s, config=internal), 90,
                   f"Kafka (inter-broker listener 127.0.0.1:{s.kafka_broker_port})", self.proc)
        self.sync_users(pki)
        wait_until(self.healthy, 60, f"Kafka on {self.address} (SASL_SSL as "
                   f"{s.identity if not s.kafka_username else s.kafka_username})", self.proc)

    def sync_users(self, pki: Pki | None = None) -> list[str]:
        """Set the SCRAM credentials of every principal from credentials.toml (also for a
        storage formatted before they existed, and after a password was rotated)."""
        s = self.settings
        pki = pki or ensure_pki(s.data_dir)
        table = ensure_credentials(s.data_dir, self._principals())["principals"]
        return upsert_scram_users(broker_admin_config(s, pki), table)

    def down(self) -> bool:
        return self.proc.stop(timeout=30)


def _cluster_id() -> str:
    # Kafka wants a base64url-encoded 16-byte UUID, as `StorageTool random-uuid` prints.
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
