"""Sinks: batched writers from the clean Kafka topics to stores (ClickHouse)."""
