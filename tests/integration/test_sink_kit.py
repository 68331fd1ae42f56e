"""Helpers for the sink's integration tests (no tests here): produce clean-topic records the
way the worker does, run `ebi sink` as a process, load records in-process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from itertools import count
from typing import Any

from schemas.catalog import default_catalog
from schemas.codec import AvroSerializer, SerializationContext
from schemas.registry import InMemoryRegistry
from sinks.clickhouse import Backend
from sinks.clickhouse.encoding import Envelope, EnvelopeDecoder, TableEncoder
from sinks.clickhouse.schema import table_specs
from sinks.clickhouse.sink import ClickHouseSink
from streams import clients
from streams.metrics import Metrics
from streams.settings import Settings
from tests.integration.conftest import security_env

CATALOG = default_catalog()
SCHEMAS = CATALOG.schemas

_clean_offsets = count()


def with_database(url: str, database: str) -> str:
    """The same ClickHouse with another database (each test gets its own)."""
    if url.startswith("chdb://"):
        return f"{url.split('?', 1)[0]}?database={database}"
    return f"{url.rsplit('/', 1)[0]}/{database}"


def load_in_process(backend: Backend, records: dict[str, list[dict[str, Any]]],
                    skip_ledger: bool = False) -> None:
    """Write records (logical clean topic -> records) through the sink's own write path;
    ``skip_ledger`` writes the data tables only, as if the ledger check had been bypassed
    (a crash between the data insert and the ledger insert)."""
    registry = InMemoryRegistry()
    serializer = AvroSerializer(registry)
    if skip_ledger:
        for logical, items in records.items():
            table = CATALOG.routes()[logical][1].name
            encoder = TableEncoder(table_specs(CATALOG)[table], backend.features)
            envelopes = [Envelope(r, f"it.{logical}", 0, next(_clean_offsets), table)
                         for r in items]
            backend.insert(table, encoder.encode(envelopes, time.time_ns() // 10**6,
                                                 int(time.time())), encoder.types)
        return
    decoder = EnvelopeDecoder(CATALOG, registry, lambda name: f"it.{name}")
    sink = ClickHouseSink(backend, Metrics.create(), 10**6, 60.0, catalog=CATALOG)
    for logical, items in records.items():
        topic = f"it.{logical}"
        for r in items:
            data = serializer(r, SerializationContext(topic, CATALOG.topic(logical).record))
            offset = next(_clean_offsets)
            envelope, rows = decoder(data, None, topic, 0, offset)
            sink.add(envelope, topic, 0, offset, max(rows, 1))
    sink.flush()


def produce(settings: Settings, logical: str, records: list[dict[str, Any]],
            partition_of: Callable[[dict[str, Any]], int] | None = None) -> None:
    """Publish records to the clean topic ``logical`` (Avro, Confluent framing)."""
    serializer = AvroSerializer(clients.registry(settings))
    producer = clients.producer(settings, **{"linger.ms": 20, "enable.idempotence": True})
    topic = settings.topic(logical)
    spec = CATALOG.topic(logical)
    for r in records:
        key = str(r.get(spec.key, "")).encode() if spec.key else None
        kwargs: dict[str, Any] = {}
        if partition_of is not None:
            kwargs["partition"] = partition_of(r)
        producer.produce(topic, serializer(r, SerializationContext(topic, spec.record)),
                         key=key, **kwargs)
        producer.poll(0)
    assert producer.flush(30) == 0


def produce_raw(settings: Settings, logical: str, values: list[bytes],
                partition: int = 0) -> list[int]:
    """Publish opaque messages to an input topic; returns their offsets."""
    offsets: list[int] = []
    producer = clients.producer(settings)
    for value in values:
        producer.produce(settings.topic(logical), value, partition=partition,
                         on_delivery=lambda err, msg: offsets.append(int(msg.offset() or 0)))
    assert producer.flush(30) == 0
    return sorted(offsets)


def ensure_topics(settings: Settings) -> None:
    from streams.worker.topics import ensure_topics as create

    create(settings)


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBI_")}
    env.update({
        "EBI_DATA_DIR": str(settings.data_dir), "EBI_KAFKA_BOOTSTRAP": settings.bootstrap,
        "EBI_SCHEMA_REGISTRY_URL": settings.registry_url,
        "EBI_CLICKHOUSE_URL": settings.clickhouse, "EBI_TOPIC_PREFIX": settings.topic_prefix,
        "EBI_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "EBI_SINK_GROUP": settings.sink_group,
        "EBI_SINK_BATCH_ROWS": str(settings.sink_batch_rows),
        "EBI_SINK_BATCH_SECONDS": str(settings.sink_batch_seconds),
        "EBI_LOG_LEVEL": "INFO", "EBI_CATALOG": settings.catalog,
        **security_env(settings),
    })
    env.update(extra)
    return env


def ebi(settings: Settings, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams", *args], env=env_for(settings),
                          capture_output=True, text=True, timeout=timeout)


def start_sink(settings: Settings, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "streams", "sink", *args],
                            env=env_for(settings, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_exit(proc: subprocess.Popen[str], timeout: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"sink did not finish in {timeout} s:\n{out[-3000:]}") from None
    assert proc.returncode == 0, f"sink exited {proc.returncode}:\n{out[-3000:]}"
    return out


def committed(settings: Settings, logical: str) -> int:
    """Sum of the sink group's committed offsets on a clean topic."""
    from confluent_kafka import TopicPartition

    consumer = clients.consumer(settings, settings.sink_group)
    try:
        topic = settings.topic(logical)
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        tps = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=10)
        return sum(max(tp.offset, 0) for tp in tps)
    finally:
        consumer.close()
