"""Topic configuration from the catalog: the input topics carry the broker's receipt time."""

from __future__ import annotations

from schemas.catalog import default_catalog
from schemas.records import CREATE_TIME, LOG_APPEND_TIME, kafka_timestamp_type
from streams.policy import load_policy
from streams.worker.topics import topic_config


def test_input_topics_are_stamped_with_the_brokers_receipt_time() -> None:
    catalog = default_catalog()
    configs = topic_config(catalog, load_policy().limits)
    inputs = set(catalog.input_topics())
    for name, config in configs.items():
        expected = "LogAppendTime" if name in inputs else None
        assert config.get("message.timestamp.type") == expected, name


def test_timestamp_types_of_consumed_messages() -> None:
    assert kafka_timestamp_type(1, 5) == LOG_APPEND_TIME
    assert kafka_timestamp_type(0, 5) == CREATE_TIME
    assert kafka_timestamp_type(None, 5) == "" and kafka_timestamp_type(1, 0) == ""
