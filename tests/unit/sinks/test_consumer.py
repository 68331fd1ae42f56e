from __future__ import annotations

from typing import Any

from schemas.catalog import default_catalog
from schemas.codec import AvroSerializer, SerializationContext
from schemas.registry import InMemoryRegistry
from sinks.clickhouse import TransientError
from sinks.clickhouse.encoding import EnvelopeDecoder
from sinks.clickhouse.sink import ClickHouseSink, RetryPolicy
from sinks.consumer import SinkLoop
from streams.metrics import Metrics
from tests.unit.sinks import factories as f
from tests.unit.sinks.fakes import FakeBackend


class Msg:
    def __init__(self, topic: str, partition: int, offset: int, value: bytes) -> None:
        self._t, self._p, self._o, self._v = topic, partition, offset, value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def value(self) -> bytes:
        return self._v

    def key(self) -> None:
        return None


class TP:
    def __init__(self, topic: str, partition: int, offset: int = -1001) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset


class FakeConsumer:
    def __init__(self, messages: list[Msg]) -> None:
        self.queue = messages
        self.paused: set[tuple[str, int]] = set()
        self.commits: list[dict[tuple[str, int], int]] = []

    def subscribe(self, topics: list[str], on_assign: Any, on_revoke: Any) -> None:
        on_assign(self, [TP("p.alerts", 0)])

    def consume(self, n: int, timeout: float) -> list[Msg]:
        out = [m for m in self.queue if (m.topic(), m.partition()) not in self.paused][:n]
        for m in out:
            self.queue.remove(m)
        return out

    def poll(self, timeout: float) -> Msg | None:
        batch = self.consume(1, timeout)
        return batch[0] if batch else None

    def pause(self, tps: list[TP]) -> None:
        self.paused |= {(t.topic, t.partition) for t in tps}

    def resume(self, tps: list[TP]) -> None:
        self.paused -= {(t.topic, t.partition) for t in tps}

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        self.commits.append({(o.topic, o.partition): o.offset for o in offsets})

    def position(self, tps: list[TP]) -> list[TP]:
        return [TP(t.topic, t.partition, 5) for t in tps]

    def get_watermark_offsets(self, tp: TP, cached: bool) -> tuple[int, int]:
        return 0, 12

    def close(self) -> None:
        pass


def make(n: int, backend: FakeBackend) -> tuple[SinkLoop, FakeConsumer, Metrics]:
    registry = InMemoryRegistry()
    ser = AvroSerializer(registry)
    msgs = [Msg("p.alerts", 0, i, ser(f.alert(i), SerializationContext("p.alerts", "Alert")))
            for i in range(n)]
    consumer = FakeConsumer(msgs)
    metrics = Metrics.create()
    now = [0.0]
    sink = ClickHouseSink(backend, metrics, max_rows=4, max_seconds=1.0,
                          retry=RetryPolicy(attempts=1, delay=0.0), sleep=lambda s: None)
    sink.clock = lambda: now[0]
    decoder = EnvelopeDecoder(default_catalog(), registry, lambda name: f"p.{name}")
    loop = SinkLoop(consumer, sink, decoder, metrics, "g", ["p.alerts"], max_buffered_rows=6,
                    poll_messages=3, clock=lambda: now[0])
    loop.tick = now  # type: ignore[attr-defined]
    consumer.subscribe(["p.alerts"], loop._on_assign, loop._on_revoke)
    return loop, consumer, metrics


def test_commits_only_after_the_write() -> None:
    backend = FakeBackend()
    loop, consumer, metrics = make(5, backend)
    loop.step()  # 3 buffered, not due
    assert consumer.commits == [] and backend.inserts == []
    loop.step()  # the 4th row fills a batch: written and committed at once
    assert consumer.commits == [{("p.alerts", 0): 4}]
    assert len(backend.rows("alerts_raw")) == 4
    loop.tick[0] += 1.0  # type: ignore[attr-defined]
    loop.step()  # the 5th goes out when its batch is old enough
    assert consumer.commits[-1] == {("p.alerts", 0): 5}
    assert metrics.registry.get_sample_value(
        "ebi_consumer_lag_messages", {"group": "g", "topic": "p.alerts", "partition": "0"}) == 7


def test_outage_pauses_with_bounded_buffer_and_resumes_without_loss() -> None:
    backend = FakeBackend()
    loop, consumer, metrics = make(12, backend)
    backend.failures = [TransientError("Connection refused")] * 50
    for _ in range(6):
        loop.step()
        loop.tick[0] += 0.3  # type: ignore[attr-defined]
    assert loop.paused and consumer.commits == []
    assert loop.sink.buffered_rows <= 6 + 3  # the cap plus one poll
    assert metrics.registry.get_sample_value("ebi_sink_paused") == 1
    backend.failures = []
    for _ in range(20):
        loop.tick[0] += 5.0  # type: ignore[attr-defined]
        loop.step()
    loop.finish()
    assert not loop.paused
    assert sorted(r["alert_id"] for r in backend.rows("alerts_raw")) == sorted(
        f"al-{i}" for i in range(12))
    assert consumer.commits[-1] == {("p.alerts", 0): 12}
