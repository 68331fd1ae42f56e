"""The agents' loop: batches of events, outputs sent, acknowledged, then state and acks.

For each batch (``noack_take``: faust acks nothing by itself) the runner decodes and
processes every message, hands the outputs to the producer and snapshots the state of every
key the batch touched. A follow-up task then waits until Kafka acknowledged every output of
the batch, writes the state snapshots to the tables (one changelog message per key) and only
then acks the batch's events, so faust can commit their offsets. The next batch is processed
while the previous one waits for its acknowledgements (at most ``max_inflight`` batches);
follow-ups finish in batch order.

Why this order matters: the state records the last message applied per key, and a message
found "already applied" after a restart is skipped (its outputs exist). So the state must
never be written before the outputs it stands for are acknowledged; and offsets are never
committed before both. Any failure here ends the process at once (no ack, no commit).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from streams.httpserver import Heartbeat
from streams.processors.common import Source
from streams.worker.outputs import OutputSender
from streams.worker.pipeline import STATE_OF, Pipeline, now_ms
from streams.worker.reference import ReferenceFeed
from streams.worker.state import StateCache

log = logging.getLogger(__name__)

EXIT_DELIVERY_FAILED = 70


def die(exc: BaseException) -> None:
    """End the process without acking or committing anything more."""
    log.critical("batch failed (%s: %s); exiting without committing it", type(exc).__name__,
                 exc, exc_info=not isinstance(exc, asyncio.CancelledError))
    logging.shutdown()
    os._exit(EXIT_DELIVERY_FAILED)


class OffsetGuard:
    """Every input offset must reach processing, in order.

    The input topics are written by idempotent, non-transactional producers, so their offsets
    have no holes; a jump means the consumer dropped messages on the way (faust does, around
    rebalances: see :mod:`.faust_fixes`). Processing past the hole would let the commit pass
    messages never processed and make "already applied" decisions unsound. So on a hole the
    runner seeks the partition back to the first missing offset and drops (without acking)
    whatever arrives for that partition until that offset comes round again.
    """

    OK, DROP, SEEK = "ok", "drop", "seek"

    def __init__(self, committed: Callable[[Any], int | None]) -> None:
        self.committed = committed
        self.next: dict[Any, int] = {}
        self.resync: dict[Any, int] = {}      # partition -> offset we are waiting for

    def reset(self) -> None:
        self.next.clear()
        self.resync.clear()

    def check(self, tp: Any, offset: int, current_generation: bool = True) -> tuple[str, int]:
        waiting = self.resync.get(tp)
        if waiting is not None:
            if offset != waiting:
                return self.DROP, waiting
            del self.resync[tp]
        expected = self.next.get(tp)
        if expected is None and current_generation:
            expected = self.committed(tp)
        if waiting is None and expected is not None and offset > expected:
            self.resync[tp] = expected
            return self.SEEK, expected
        self.next[tp] = max(self.next.get(tp, 0), offset + 1)
        return self.OK, offset


class BatchRunner:
    def __init__(self, pipeline: Pipeline, feed: ReferenceFeed, sender: OutputSender,
                 stores: dict[str, StateCache], logical: dict[str, str], heartbeat: Heartbeat,
                 guard: OffsetGuard, generation: Callable[[], int],
                 seek: Callable[[Any, int], Awaitable[None]],
                 forget: Callable[[Any], None], max_inflight: int = 3) -> None:
        self.pipeline = pipeline
        self.feed = feed
        self.sender = sender
        self.stores = stores
        self.logical = logical          # full topic name -> logical name
        self.heartbeat = heartbeat
        self.guard = guard
        self.generation = generation
        self.seek = seek              # (tp, offset): read the partition again from offset
        self.forget = forget          # (message): dropped, will be read again; never acked
        self.max_inflight = max_inflight

    async def process(self, events: list[Any]) -> tuple[
            list[Any], list[tuple[str, bytes, bytes | None, Any]], list[Any]]:
        """Decode, process and send one batch; returns the delivery futures, the state
        snapshots (store, key, snapshot, last event of the key) and the events to ack."""
        pipeline, now = self.pipeline, now_ms()
        pending: list[Any] = []
        touched: dict[tuple[str, bytes], Any] = {}
        replays = 0
        generation = self.generation()
        done: list[Any] = []
        for event in events:
            msg = event.message
            verdict, expected = self.guard.check(
                msg.tp, msg.offset, getattr(msg, "generation_id", generation) == generation)
            if verdict != OffsetGuard.OK:
                if verdict == OffsetGuard.SEEK:
                    log.warning("%s[%d]: offset %d arrived but %d..%d did not; reading the "
                                "partition again from %d", msg.topic, msg.partition, msg.offset,
                                expected, msg.offset - 1, expected)
                    await self.seek(msg.tp, expected)
                self.forget(msg)
                continue
            done.append(event)
            name = self.logical[msg.topic]
            ts = int(msg.timestamp * 1000) if msg.timestamp else 0
            source = Source(msg.topic, msg.partition, msg.offset, None, ts)
            record, source, out = pipeline.decode(name, source, msg.key, msg.value, now)
            if record is not None:
                if pipeline.missing_reference(name, record) and self.feed.may_sync():
                    await asyncio.get_running_loop().run_in_executor(None, self.feed.sync, 10.0)
                out, key = pipeline.apply(name, record, source, msg.key, msg.value, now)
                if key is not None:
                    touched[(STATE_OF[name][0], key)] = event
                replays += out.replay
            if out is not None:
                await self.sender.send(name, out, pending)
        if replays:
            log.info("skipped %d message(s) read again whose outputs were delivered before a "
                     "restart or rebalance", replays)
        snapshots = [(store, key, self.stores[store].snapshot(key), event)
                     for (store, key), event in touched.items()]
        return pending, snapshots, done

    async def finish(self, stream: Any, events: list[Any], pending: list[Any],
                     snapshots: list[tuple[str, bytes, bytes | None, Any]],
                     previous: asyncio.Future[None] | None) -> None:
        try:
            await self.sender.flush(pending)
            if previous is not None:
                await previous
            for store, key, snapshot, event in snapshots:
                self.stores[store].write(key, snapshot, event)
            for event in events:
                await stream.ack(event)
            self.heartbeat.beat()
        except BaseException as exc:
            die(exc)

    async def consume(self, stream: Any, batch: int, within: float) -> None:
        inflight: deque[asyncio.Future[None]] = deque()
        async for events in stream.noack_take(batch, within=within):
            try:
                pending, snapshots, done = await self.process(events)
            except BaseException as exc:
                die(exc)
            previous = inflight[-1] if inflight else None
            inflight.append(asyncio.ensure_future(
                self.finish(stream, done, pending, snapshots, previous)))
            while inflight and (len(inflight) > self.max_inflight or inflight[0].done()):
                await inflight.popleft()
