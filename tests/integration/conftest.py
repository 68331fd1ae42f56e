"""Real services for integration tests, each started once per test session.

Every session gets its own data directory, free loopback ports, a unique topic prefix and a
fresh ClickHouse database. A service that cannot start fails the tests that need it: it is
never skipped (CI sets EBI_REQUIRE_SERVICES=1 and expects exactly that).

The stack is the secured one (docs/security.md): Kafka SASL_SSL with SCRAM users and ACLs,
the registry over HTTPS with basic auth, ClickHouse with passwords. The fixtures provision
topics, users and ACLs as the admin; ``settings`` is the admin identity with its login given
explicitly (so a test may move ``data_dir``), and :func:`as_principal` gives the settings of
another principal of deploy/access/local.toml. Subprocesses get their login through EBI_*
variables (:func:`security_env`; passwords as ``*_FILE``). At the end of the session no
generated password may appear in any log under the data dir.

Records are signed (docs/security.md, *Record signing*): ``provisioned`` makes the session's
dev keyring under the data dir, so every publishing helper (``streams.kafkaio.publish``,
the gateway publisher, ``ebi publish``, ``ebi simulate``) signs with the sender's dev key
and registers it, and every worker started by a test verifies against its trust file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.credentials import all_passwords, read_credentials
from streams.settings import Secret, Settings
from streams.stack.process import StackError, free_port
from tests.integration.webhook import WebhookReceiver

RUN_ID = uuid.uuid4().hex[:8]


def _start(service: object, what: str) -> None:
    try:
        service.up()  # type: ignore[attr-defined]
    except StackError as exc:
        pytest.fail(f"{what} could not start: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for a private local stack: temp data dir, free ports, unique topic prefix."""
    data_dir = Path(tmp_path_factory.mktemp(f"ebi-{RUN_ID}"))
    return Settings(
        data_dir=data_dir,
        kafka_port=free_port(), kafka_controller_port=free_port(),
        kafka_broker_port=free_port(), registry_port=free_port(), clickhouse_tcp_port=free_port(),
        clickhouse_http_port=free_port(), topic_prefix=f"it{RUN_ID}.",
        topic_partitions=4, worker_id=f"ebi-it-{RUN_ID}", sink_group=f"ebi-it-sink-{RUN_ID}",
        clickhouse_url=f"chdb://{data_dir / 'chdb'}",
    )


@pytest.fixture(scope="session")
def kafka_bootstrap(stack_settings: Settings) -> Iterator[str]:
    from streams.stack.kafka import Kafka

    kafka = Kafka(stack_settings)
    _start(kafka, "Kafka")
    yield kafka.address
    kafka.down()
    leaked = leaked_passwords(stack_settings.data_dir)
    assert not leaked, f"generated passwords appear in logs: {leaked}"


@pytest.fixture(scope="session")
def registry_url(stack_settings: Settings, kafka_bootstrap: str) -> Iterator[str]:
    from streams.stack.registry import Registry

    registry = Registry(stack_settings)
    _start(registry, "Apicurio Registry")
    yield registry.address
    registry.down()


@pytest.fixture(scope="session")
def clickhouse_server_url(stack_settings: Settings) -> Iterator[str]:
    """A real clickhouse-server (Debian's package) with a fresh database for this session."""
    from sinks.clickhouse.config import login_url
    from streams.stack.clickhouse import ClickHouseServer

    port = stack_settings.clickhouse_tcp_port
    url = f"clickhouse://127.0.0.1:{port}/it_{RUN_ID}"
    server = ClickHouseServer(stack_settings.replace(clickhouse_url=url))
    _start(server, "ClickHouse server")
    # the URL carries ebi_admin's login (never printed: messages use display_url)
    yield login_url(stack_settings.replace(clickhouse_url=url))
    server.down()


@pytest.fixture(scope="session")
def chdb_url(stack_settings: Settings) -> str:
    return f"chdb://{stack_settings.data_dir / f'chdb-{RUN_ID}'}"


@pytest.fixture(scope="session", params=["server", "chdb"])
def clickhouse_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes this runs against both backends."""
    name = "clickhouse_server_url" if request.param == "server" else "chdb_url"
    return str(request.getfixturevalue(name))


@pytest.fixture(scope="session")
def provisioned(stack_settings: Settings, kafka_bootstrap: str, registry_url: str) -> Settings:
    """The session's topics and ACLs, created as the admin; returns the admin's settings."""
    from streams.access.provision import provision

    admin = as_principal(stack_settings.replace(kafka_bootstrap=kafka_bootstrap,
                                                schema_registry_url=registry_url), "admin")
    try:
        provision(admin)
    except Exception as exc:
        pytest.fail(f"provisioning topics and ACLs as admin failed: {exc}", pytrace=False)
    from streams.signing.devkeys import ensure

    ensure(admin)   # the session's dev signing keyring: every publishing helper signs with it
    return admin


@pytest.fixture(scope="session")
def settings(provisioned: Settings) -> Settings:
    """Settings for code under test: Kafka and the registry as running external services,
    as the admin (a super user: tests create their own topics), and the worker and the sink
    started by tests create what they need (``create_topics``)."""
    return provisioned.replace(create_topics=True)


def as_principal(settings: Settings, principal: str) -> Settings:
    """``settings`` with the explicit login of ``principal`` (the session's generated
    password, the local CA) for Kafka and the registry."""
    table = read_credentials(settings.data_dir).get("principals", {})
    assert principal in table, f"no generated credentials for {principal!r}"
    ca = str(settings.data_dir / "secrets" / "ca.pem")
    return settings.replace(identity=principal, kafka_username=principal,
                            kafka_password=Secret(table[principal]), kafka_ca_file=ca,
                            registry_username=principal,
                            registry_password=Secret(table[principal]), registry_ca_file=ca)


def security_env(settings: Settings) -> dict[str, str]:
    """EBI_* variables that hand a subprocess the login of ``settings`` (passwords in files
    readable by the owner only, as a deployment would mount them)."""
    env = {"EBI_KAFKA_SECURITY": settings.kafka_security, "EBI_IDENTITY": settings.identity,
           "EBI_CREATE_TOPICS": "1" if settings.create_topics else "0"}
    secrets = settings.data_dir / "secrets"
    secrets.mkdir(mode=0o700, exist_ok=True)
    for name in ("kafka", "registry"):
        user = getattr(settings, f"{name}_username")
        if not user:
            continue
        path = secrets / f"{name}-{user}.password"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(getattr(settings, f"{name}_password").reveal())
        env.update({f"EBI_{name.upper()}_USERNAME": user,
                    f"EBI_{name.upper()}_PASSWORD_FILE": str(path),
                    f"EBI_{name.upper()}_CA_FILE": getattr(settings, f"{name}_ca_file")})
    return env


def leaked_passwords(data_dir: Path) -> list[str]:
    """Files under ``data_dir`` other than the secrets that contain a generated password."""
    passwords = [p for p in all_passwords(data_dir) if p]
    found = []
    for path in data_dir.rglob("*"):
        if not path.is_file() or "secrets" in path.relative_to(data_dir).parts:
            continue
        if path.suffix not in (".log", ".txt", ".out", ".err", ".jsonl") and \
                "log" not in path.relative_to(data_dir).parts[:1]:
            continue
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        found += [f"{path}" for p in passwords if p in text]
    return sorted(set(found))


def unique(name: str) -> str:
    """A topic/table name unique to this run and call."""
    return f"{name}_{uuid.uuid4().hex[:6]}"


# -- alarm delivery: a real Alertmanager and a webhook receiver ------------------------------
FAST_TIMINGS = {"group_wait": "1s", "group_interval": "1s"}


def fast_alertmanager_config(text: str) -> str:
    """deploy/alertmanager/alertmanager.yml with every group_wait and group_interval at 1 s
    (repeat intervals stay as they are: hours, so a test sees no repeats)."""
    import re

    for key, value in FAST_TIMINGS.items():
        text = re.sub(rf"(?m)^(\s+){key}:\s*\S+", rf"\g<1>{key}: {value}", text)
    return text


@pytest.fixture(scope="session")
def alarm_webhook() -> Iterator[WebhookReceiver]:
    """The notification gateway of the tests: every receiver of the config posts here."""
    hook = WebhookReceiver.start()
    yield hook
    hook.stop()


@pytest.fixture(scope="session")
def alertmanager_url(stack_settings: Settings, alarm_webhook: WebhookReceiver) -> Iterator[str]:
    """The real Alertmanager (Debian's prometheus-alertmanager), started once on a free port
    with the repo's routing, fast group timings and the receivers rebased on the webhook."""
    from streams.stack.alertmanager import CONFIG, Alertmanager

    config = stack_settings.data_dir / "alertmanager-fast.yml"
    config.write_text(fast_alertmanager_config(CONFIG.read_text("utf-8")), "utf-8")
    settings = stack_settings.replace(
        alertmanager=True, alertmanager_port=free_port(),
        alertmanager_receiver_url=alarm_webhook.url)
    manager = Alertmanager(settings, config=config)
    _start(manager, "Alertmanager")
    yield manager.address
    manager.down()
