"""Every topic ebi or faust creates gets the settings' replication; the worker's producer is
idempotent with acks=all."""

from __future__ import annotations

import dataclasses
from typing import Any

from schemas.catalog import default_catalog
from schemas.catalog.model import catalog_from
from streams.policy import load_policy
from streams.settings import Settings
from streams.worker import topics
from streams.worker.app import changelog_config

CATALOG = default_catalog()


class FakeAdmin:
    def __init__(self) -> None:
        self.created: list[Any] = []

    def list_topics(self, timeout: float = 0) -> Any:
        import types

        return types.SimpleNamespace(topics={})

    def create_topics(self, wanted: list[Any], operation_timeout: float = 0) -> dict[str, Any]:
        self.created += wanted

        class Done:
            def result(self, timeout: float = 0) -> None:
                return None
        return {t.topic: Done() for t in wanted}


def _create(monkeypatch: Any, settings: Settings, **kwargs: Any) -> FakeAdmin:
    admin = FakeAdmin()
    monkeypatch.setattr(topics.clients, "admin", lambda s: admin)
    monkeypatch.setattr(topics, "_await_metadata", lambda *a: None)
    topics.ensure_topics(settings, **kwargs)
    return admin


def test_topics_get_the_replication_and_min_isr_of_the_settings(monkeypatch: Any) -> None:
    s = Settings(kafka_bootstrap="a:1,b:1,c:1", topic_replication_factor=3,
                 topic_min_insync_replicas=2, topic_partitions=12)
    admin = _create(monkeypatch, s, changelogs=["ebi-worker-gateways-changelog"])
    assert {t.replication_factor for t in admin.created} == {3}
    assert {t.num_partitions for t in admin.created} == {12}
    assert {t.config["min.insync.replicas"] for t in admin.created} == {"2"}
    changelog = next(t for t in admin.created if t.topic.endswith("changelog"))
    assert changelog.config["cleanup.policy"] == "compact"
    assert changelog_config(s) == {"min.insync.replicas": "2"}


def test_one_broker_creates_topics_as_before(monkeypatch: Any) -> None:
    admin = _create(monkeypatch, Settings())
    assert {t.replication_factor for t in admin.created} == {1}
    assert not any("min.insync.replicas" in t.config for t in admin.created)
    limits = load_policy().limits
    assert topics.topic_config(CATALOG, limits)["telemetry"] == {
        "max.message.bytes": str(limits.max_message_bytes + topics.BATCH_OVERHEAD),
        "message.timestamp.type": "LogAppendTime"}


def test_a_topic_may_declare_its_own_partitions(monkeypatch: Any) -> None:
    sensor = CATALOG.type("sensor")
    few = dataclasses.replace(sensor, input=dataclasses.replace(sensor.input, partitions=1))
    types = [few if t.name == "sensor" else t for t in CATALOG.types]
    catalog = catalog_from(types, CATALOG.outputs, CATALOG.schemas.dirs)
    admin = _create(monkeypatch, Settings(topic_partitions=12), catalog=catalog)
    counts = {t.topic: t.num_partitions for t in admin.created}
    assert counts["ebi.sensors"] == 1 and counts["ebi.telemetry"] == 12


def test_the_worker_producer_is_idempotent_with_acks_all() -> None:
    from faust.transport.drivers.aiokafka import Producer

    from streams.worker import idempotence

    idempotence.apply()
    idempotence.apply()   # once only
    assert idempotence.applied()

    class App:
        in_transaction = False

    producer = Producer.__new__(Producer)
    producer.app = App()  # type: ignore[assignment]
    assert producer._settings_extra() == {"acks": "all", "enable_idempotence": True}
