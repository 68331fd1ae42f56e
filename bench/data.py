"""Benchmark data: clean simulator traffic pre-published into a scenario's own topic prefix.

Registrations (enterprises, sensors) go first and are flushed, then telemetry envelopes (and
the few heartbeats, incidents and hazards the generator interleaves) until the wanted number
of readings is out. Publishing is not measured: it happens before any consumer starts.
Event times follow the wall clock (the simulated rate is close to the publishing speed), so
readings are neither "late" nor "in the future" for the worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bench.procs import run_step
from schemas.catalog import default_catalog
from schemas.codec import AvroSerializer, SerializationContext
from streams.settings import Settings

ENTERPRISES = 50          # x 2 gateways x 8 sensors = 800 sensors, 100 gateways
SIM_RATE = 100_000.0      # simulated readings/s: about the publishing speed at batch 100


@dataclass(frozen=True)
class Published:
    prefix: str
    batch: int
    readings: int
    envelopes: int
    messages: int
    seconds: float


def prepare_topics(settings: Settings, env: dict[str, str]) -> None:
    """Create the prefix's topics (with settings.topic_partitions) and register its schemas."""
    from streams.access.topics import create_topics

    create_topics(settings)   # as the admin, with the worker's changelogs
    run_step(["schemas", "register"], env)


def simulator(settings: Settings, serializer: AvroSerializer, batch: int, readings: int,
              seed: int, rate: float = SIM_RATE, enterprises: int = ENTERPRISES,
              tag: str = "") -> Any:
    """A clean simulator whose reading ids are unique to the prefix, ``tag`` and start time
    (the topology, hence the sensor registrations, depends on ``seed`` only)."""
    from streams.policy import load_policy
    from streams.simulate import SimConfig, Simulator

    start_ms = int(time.time() * 1000)
    config = SimConfig(seed=seed, rate=rate, duration_s=readings / rate * 1.5 + 5,
                       enterprises=enterprises, batch_size=batch, start_ms=start_ms,
                       run_id=f"{settings.topic_prefix.strip('.')}{tag}-{start_ms:x}").clean()
    return Simulator(config, load_policy(settings.policy_file or None),
                     header=lambda t: serializer.header(settings.topic(t),
                                                        default_catalog().topic(t).record))


class Publisher:
    """A batching producer (not idempotent: the bench wants speed, delivery is checked);
    ``signed``: each message signed by its gateway's key from the dev keyring (registered
    on first use), as ebi's producers do."""

    def __init__(self, settings: Settings, serializer: AvroSerializer, linger_ms: int = 50,
                 signed: bool = True) -> None:
        from streams.publisher.producer import make_producer
        from streams.signing.signer import signer_for

        self.settings = settings
        self.serializer = serializer
        self.signer = signer_for(settings, serializer.registry) if signed else None
        self.failures: list[str] = []
        self.producer = make_producer(settings, **{"linger.ms": linger_ms,
                                                   "enable.idempotence": False, "acks": 1})

    def _report(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failures.append(str(err))

    def send(self, topic: str, key: str, value: dict[str, Any] | bytes) -> None:
        record = value if isinstance(value, dict) else None
        data = value if isinstance(value, bytes) else self.serializer(
            value, SerializationContext(self.settings.topic(topic),
                                        default_catalog().topic(topic).record))
        raw_key = key.encode()
        headers = self.signer.sign(topic, raw_key, data, record) if self.signer else None
        while True:
            try:
                self.producer.produce(self.settings.topic(topic), value=data, key=raw_key,
                                      headers=headers or None, on_delivery=self._report)
                break
            except BufferError:
                self.producer.poll(0.05)
        self.producer.poll(0)

    def flush(self, timeout: float = 60.0) -> None:
        left = self.producer.flush(timeout)
        if left or self.failures:
            raise RuntimeError(f"{left + len(self.failures)} messages not delivered "
                               f"(last error: {self.failures[-1] if self.failures else 'timeout'})")


def registry_serializer(settings: Settings) -> AvroSerializer:
    from streams import clients

    return AvroSerializer(clients.registry(settings))


def events_until(sim: Any, readings: int, on_registered: Callable[[], None]
                 ) -> Iterator[tuple[str, str, Any]]:
    """The simulator's events, registrations first, until ``readings`` readings are out."""
    sent = 0
    registered = False
    for topic, key, value, _ in sim:
        if not registered and topic not in ("enterprises", "sensors"):
            on_registered()
            registered = True
        if topic == "telemetry" and not isinstance(value, bytes):
            if sent >= readings:
                break
            sent += len(value["readings"])
        yield topic, key, value


def publish(settings: Settings, batch: int, readings: int, seed: int = 1,
            signed: bool = True) -> Published:
    """Pre-publish about ``readings`` clean readings in envelopes of ``batch`` (signed by
    their gateways, unless ``signed`` is False)."""
    serializer = registry_serializer(settings)
    sim = simulator(settings, serializer, batch, readings, seed)
    out = Publisher(settings, serializer, signed=signed)
    started = time.perf_counter()
    count = envelopes = messages = 0
    for topic, key, value in events_until(sim, readings, out.flush):
        out.send(topic, key, value)
        messages += 1
        if topic == "telemetry":
            envelopes += 1
            count += len(value["readings"])
    out.flush()
    return Published(settings.topic_prefix, batch, count, envelopes, messages,
                     time.perf_counter() - started)
