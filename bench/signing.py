"""The worker's CPU cost of verifying signatures, in process (no services): the pipeline
(decode, process) over the same signed simulator traffic with verification off and on,
alternating, best of ``rounds``. Steadier on a busy machine than the throughput pair
(nosig100/sig100), which also carries the sink, Kafka and ClickHouse."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from schemas.catalog import default_catalog
from schemas.codec import AvroDeserializer, AvroSerializer, SerializationContext
from schemas.records import Source
from schemas.registry import InMemoryRegistry
from streams.metrics import Metrics
from streams.policy import load_policy
from streams.processors.base import DictStore
from streams.processors.context import ProcessorContext
from streams.processors.reference import ReferenceData
from streams.signing.devkeys import DevKeyring, DevSigner
from streams.signing.senders import SenderCheck
from streams.signing.trust import load_trust
from streams.signing.verify import Rejected, Verifier
from streams.simulate import SimConfig, Simulator
from streams.worker.pipeline import Pipeline

CATALOG = default_catalog()


def _messages(batch: int, seconds: float, rate: float, data_dir: Path
              ) -> tuple[Pipeline, list[tuple[str, bytes, bytes, Any]], int, dict[str, Any]]:
    policy = load_policy()
    registry = InMemoryRegistry()
    serializer = AvroSerializer(registry)
    reference = ReferenceData(policy)
    keyring = DevKeyring.ensure(data_dir)
    verifier = Verifier(reference.keys, load_trust(data_dir / "signing" / "trust.toml"))
    stores = {name: DictStore() for name in CATALOG.state_groups()}
    pipeline = Pipeline(CATALOG, ProcessorContext(policy, reference,
                                                  Metrics.create(CollectorRegistry())),
                        AvroDeserializer(registry, millis=True), stores,
                        senders=SenderCheck(verifier, policy.raw))
    keys = CATALOG.signing_keys
    assert keys is not None

    def register(records: list[dict[str, Any]]) -> None:
        for record in records:
            reference.apply(keys, record["key_id"], record, 0)

    signer = DevSigner(keyring, CATALOG, register)
    now = int(time.time() * 1000)
    config = SimConfig(seed=4, duration_s=seconds, rate=rate, batch_size=batch,
                       start_ms=now - int(seconds * 1000) - 10_000).clean()
    sim = Simulator(config, policy, header=lambda t: serializer.header(
        f"b.{t}", CATALOG.topic(t).record))
    messages = []
    readings = 0
    for topic, key, value, _ in sim:
        assert isinstance(value, dict)
        kind = CATALOG.of_input(topic)
        if kind.reference is not None:
            reference.apply(kind, key, value, now)
            continue
        data = serializer(value, SerializationContext(f"b.{topic}", kind.input.record))
        messages.append((topic, key.encode(), data, signer.sign(topic, key.encode(), data,
                                                                value)))
        readings += len(value.get("readings", ()))
    return pipeline, messages, readings, stores


def _once(pipeline: Pipeline, messages: list[tuple[str, bytes, bytes, Any]],
          stores: dict[str, Any], verify: bool) -> float:
    for store in stores.values():
        store.data.clear()
    now = int(time.time() * 1000)
    started = time.process_time()
    for offset, (topic, key, data, headers) in enumerate(messages):
        source = Source(f"b.{topic}", 0, offset, None, now)
        signed = pipeline.verify(topic, source, key, data, headers, now) if verify else None
        if isinstance(signed, Rejected):
            raise RuntimeError(f"bench traffic failed verification: {signed.message}")
        record, source, _ = pipeline.decode(topic, source, key, data, now)
        if record is not None:
            pipeline.apply(topic, record, source, key, data, now, signed)
    return time.process_time() - started


def measure(batches: tuple[int, ...] = (100, 10), readings: int = 60_000,
            rounds: int = 3) -> dict[str, Any]:
    """Per batch size: CPU µs per message and per reading, off and on, and the ratio."""
    out: dict[str, Any] = {}
    for batch in batches:
        with tempfile.TemporaryDirectory() as tmp:
            rate = 2000.0
            pipeline, messages, count, stores = _messages(batch, readings / rate, rate,
                                                          Path(tmp))
            off, on = [], []
            for _ in range(rounds):
                off.append(_once(pipeline, messages, stores, verify=False))
                on.append(_once(pipeline, messages, stores, verify=True))
        best_off, best_on = min(off), min(on)
        out[f"batch{batch}"] = {
            "messages": len(messages), "readings": count,
            "us_per_message_unverified": round(best_off / len(messages) * 1e6, 1),
            "us_per_message_verified": round(best_on / len(messages) * 1e6, 1),
            "worker_cpu_ratio": round(best_on / best_off, 3) if best_off else None}
    return out
