"""Real services for integration tests, each started once per test session.

Every session gets its own data directory, free loopback ports, a unique topic prefix and a
fresh ClickHouse database. A service that cannot start fails the tests that need it: it is
never skipped (CI sets EBI_REQUIRE_SERVICES=1 and expects exactly that).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.settings import Settings
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
        registry_port=free_port(), clickhouse_tcp_port=free_port(),
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
    from streams.stack.clickhouse import ClickHouseServer

    port = stack_settings.clickhouse_tcp_port
    url = f"clickhouse://127.0.0.1:{port}/it_{RUN_ID}"
    server = ClickHouseServer(stack_settings.replace(clickhouse_url=url))
    _start(server, "ClickHouse server")
    yield url
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
def settings(stack_settings: Settings, kafka_bootstrap: str, registry_url: str) -> Settings:
    """Settings for code under test: Kafka and the registry as running external services."""
    return stack_settings.replace(kafka_bootstrap=kafka_bootstrap,
                                  schema_registry_url=registry_url)


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
