"""The settings for more than one machine: replication, brokers, ClickHouse replicas."""

from __future__ import annotations

import pytest

from streams.settings import Settings, SettingsError, load


def test_single_node_defaults_are_unchanged() -> None:
    s = Settings()
    assert (s.topic_replication_factor, s.topic_min_insync_replicas, s.kafka_brokers) == (1, 1, 1)
    assert s.bootstrap == "127.0.0.1:19092"
    assert s.clickhouse_cluster_name == ""


def test_bootstrap_names_every_local_broker() -> None:
    s = load(environ={"EBI_KAFKA_BROKERS": "3", "EBI_KAFKA_PORT": "30000",
                      "EBI_KAFKA_PORT_STEP": "10", "EBI_TOPIC_REPLICATION_FACTOR": "3",
                      "EBI_TOPIC_MIN_INSYNC_REPLICAS": "2"})
    assert s.bootstrap == "127.0.0.1:30000,127.0.0.1:30010,127.0.0.1:30020"
    assert s.replace(kafka_bootstrap="k:9092").bootstrap == "k:9092"


@pytest.mark.parametrize("env, why", [
    ({"EBI_TOPIC_MIN_INSYNC_REPLICAS": "2"}, "between 1 and topic_replication_factor"),
    ({"EBI_TOPIC_REPLICATION_FACTOR": "3"}, "more than the local stack's kafka_brokers"),
    ({"EBI_TOPIC_REPLICATION_FACTOR": "0"}, "topic_replication_factor must be >= 1"),
    ({"EBI_KAFKA_BROKERS": "0"}, "kafka_brokers must be >= 1"),
    ({"EBI_CLICKHOUSE_REPLICAS": "0"}, "clickhouse_replicas must be >= 1"),
])
def test_impossible_replication_is_refused_with_the_reason(env: dict[str, str],
                                                           why: str) -> None:
    with pytest.raises(SettingsError, match=why):
        load(environ=env)


def test_an_external_cluster_may_have_any_replication() -> None:
    s = load(environ={"EBI_KAFKA_BOOTSTRAP": "a:9092,b:9092,c:9092",
                      "EBI_TOPIC_REPLICATION_FACTOR": "3", "EBI_TOPIC_MIN_INSYNC_REPLICAS": "2"})
    assert s.topic_replication_factor == 3


def test_local_replicas_form_a_cluster_named_ebi_unless_named() -> None:
    assert Settings(clickhouse_replicas=2).clickhouse_cluster_name == "ebi"
    assert Settings(clickhouse_cluster="prod").clickhouse_cluster_name == "prod"


def test_stack_up_with_brokers_replicates_unless_told_otherwise() -> None:
    from streams.cli.stack import cluster_settings

    three = cluster_settings(Settings(), 3, 2)
    assert (three.kafka_brokers, three.topic_replication_factor,
            three.topic_min_insync_replicas, three.clickhouse_replicas) == (3, 3, 2, 2)
    five = cluster_settings(Settings(), 5)
    assert (five.topic_replication_factor, five.topic_min_insync_replicas) == (3, 2)
    told = Settings(kafka_bootstrap="x:1", topic_replication_factor=2)
    assert cluster_settings(told, 3).topic_replication_factor == 2
    assert cluster_settings(Settings(), None) == Settings()
