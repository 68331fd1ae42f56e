"""The agents' loop: batches of events, outputs sent, acknowledged, then state and acks.

For each batch (whole fetches, :mod:`.fetches`; or faust's ``noack_take``: faust acks
nothing by itself) the runner decodes and
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
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from schemas.records import Source, kafka_timestamp_type
from streams.httpserver import Heartbeat
from streams.processors.common import Outputs
from streams.signing.verify import Rejected, Signed
from streams.worker.delivery import Deliveries
from streams.worker.outputs import OutputSender
from streams.worker.pipeline import Pipeline, now_ms
from streams.worker.reference import ReferenceFeed
from streams.worker.state import StateCache

log = logging.getLogger(__name__)

EXIT_DELIVERY_FAILED = 70
EXIT_RESTART = 75        # EX_TEMPFAIL: a supervisor should start the worker again


class InputHole(RuntimeError):
    """Input offsets were skipped on the way to processing."""


class InputStalled(InputHole):
    """A partition has messages waiting but none reaches processing."""


class StallWatch:
    """Finds partitions that have messages waiting while nothing of them is processed.

    faust 0.15.3 can leave a partition without deliveries after it was assigned again to the
    same worker (seen after a SIGKILLed member left the group: the lag of one partition stayed
    put while the others flowed). ``observe`` is called periodically with each assigned
    partition's next offset to process and its high watermark; a partition with a backlog whose
    position has not moved for ``stall_after`` seconds is reported, and the worker restarts.
    """

    def __init__(self, stall_after: float = 30.0) -> None:
        self.stall_after = stall_after
        self.since: dict[Any, tuple[int, float]] = {}
        self.armed_at: float | None = None

    def reset(self) -> None:
        self.since.clear()
        self.armed_at = None

    def arm(self, now: float) -> None:
        """Processing (re)started after an assignment: stalls count from here."""
        if self.armed_at is None:
            self.armed_at = now

    def observe(self, tp: Any, position: int, highwater: int, now: float) -> float:
        """Seconds the partition has had a backlog without progress (0 when fine)."""
        if self.armed_at is None or highwater <= position:
            self.since.pop(tp, None)
            return 0.0
        last = self.since.get(tp)
        if last is None or last[0] != position:
            self.since[tp] = (position, max(now, self.armed_at))
            return 0.0
        return now - last[1]


def die(exc: BaseException) -> None:
    """End the process without acking or committing anything more."""
    hole = isinstance(exc, InputHole)
    log.critical("%s (%s: %s); exiting without committing it",
                 "input not flowing" if hole else "batch failed", type(exc).__name__, exc,
                 exc_info=not hole and not isinstance(exc, asyncio.CancelledError))
    logging.shutdown()
    os._exit(EXIT_RESTART if hole else EXIT_DELIVERY_FAILED)


class OffsetGuard:
    """Every input offset must reach processing, in order.

    The input topics are written by idempotent, non-transactional producers, so their offsets
    have no holes; a jump means the consumer dropped messages on the way (faust does, around
    rebalances: see :mod:`.faust_fixes`). Processing past the hole would let the commit pass
    messages never processed and make "already applied" decisions unsound, so the worker
    stops at once (exit code 75, "restart me") and its successor reads again from the
    committed offset. ``ebi worker`` must run under a supervisor that restarts it.
    """

    def __init__(self) -> None:
        self.next: dict[Any, int] = {}

    def reset(self) -> None:
        self.next.clear()

    def knows(self, tp: Any) -> bool:
        return tp in self.next

    def begin(self, tp: Any, offset: int | None) -> None:
        """Where the partition starts after an assignment (committed offset, or the log start
        when nothing was committed)."""
        if offset is not None and tp not in self.next:
            self.next[tp] = offset

    def check(self, tp: Any, offset: int) -> str | None:
        """None when ``offset`` may be processed, else what is missing."""
        expected = self.next.get(tp)
        if expected is not None and offset > expected:
            return (f"{tp.topic}[{tp.partition}]: offset {offset} arrived but "
                    f"{expected}..{offset - 1} did not")
        self.next[tp] = max(self.next.get(tp, 0), offset + 1)
        return None


class BatchRunner:
    def __init__(self, pipeline: Pipeline, feed: ReferenceFeed, sender: OutputSender,
                 stores: dict[str, StateCache], logical: dict[str, str], heartbeat: Heartbeat,
                 guard: OffsetGuard, generation: Callable[[], int],
                 start: Callable[[list[Any]], Awaitable[list[int | None]]],
                 stalls: StallWatch | None = None, max_inflight: int = 3) -> None:
        self.pipeline = pipeline
        self.feed = feed
        self.sender = sender
        self.stores = stores
        self.logical = logical          # full topic name -> logical name
        self.heartbeat = heartbeat
        self.guard = guard
        self.generation = generation
        self.start = start    # ([tp, ...]): committed offsets, else the log start offsets
        self.stalls = stalls or StallWatch()
        self.max_inflight = max_inflight

    async def process(self, events: list[Any]) -> tuple[
            Deliveries, list[tuple[str, bytes, bytes | None, Any]], list[Any]]:
        """Decode, process and send one batch; returns the delivery futures, the state
        snapshots (store, key, snapshot, last event of the key) and the events to ack."""
        pipeline, now = self.pipeline, now_ms()
        pending = self.sender.batch()
        touched: dict[tuple[str, bytes], Any] = {}
        replays = 0
        generation = self.generation()
        self.stalls.arm(time.monotonic())
        done: list[Any] = []
        stores_of = {name: route.kind.state.name for name, route in pipeline.routes.items()
                     if route.kind.state is not None}   # input -> the state table it keeps
        await self._begin_partitions(events, generation)
        for event in events:
            msg = event.message
            # (a message fetched before the last rebalance is processed unchecked: it is real
            # and in order; the checks start with the current generation)
            if getattr(msg, "generation_id", generation) == generation:
                hole = self.guard.check(msg.tp, msg.offset)
                if hole is not None:
                    raise InputHole(hole)
            done.append(event)
            name = self.logical[msg.topic]
            ts = int(msg.timestamp * 1000) if msg.timestamp else 0
            source = Source(msg.topic, msg.partition, msg.offset, None, ts,
                            kafka_timestamp_type(getattr(msg, "timestamp_type", None), ts))
            key: bytes | None = None
            staged: list[tuple[str, bytes]] = []
            try:
                headers = getattr(msg, "headers", None)
                signed = pipeline.verify(name, source, msg.key, msg.value, headers, now)
                if isinstance(signed, Rejected) and signed.unknown_key and \
                        self.feed.may_sync_key(signed.key_id, ts):   # registered just now?
                    await asyncio.get_running_loop().run_in_executor(
                        None, self.feed.catch_up, ts)
                    signed = pipeline.verify(name, source, msg.key, msg.value, headers, now)
                out: Outputs | None
                if isinstance(signed, Rejected):
                    record, out = None, pipeline.rejected(name, source, msg.key, msg.value,
                                                          signed, now)
                else:
                    record, source, out = pipeline.decode(name, source, msg.key, msg.value,
                                                          now)
                if record is not None:
                    if pipeline.missing_reference(name, record) and self.feed.may_sync(ts):
                        await asyncio.get_running_loop().run_in_executor(
                            None, self.feed.catch_up, ts)
                    out, key = pipeline.apply(name, record, source, msg.key, msg.value, now,
                                              signed if isinstance(signed, Signed) else None)
                    staged = pipeline.take_touched()   # stage states (the alarm book)
                    if key is not None:
                        touched[(stores_of[name], key)] = event
                    for store_key in staged:
                        touched[store_key] = event
                    replays += out.replay
                messages = self.sender.encode(name, out) if out is not None else []
            except Exception as exc:  # an output that cannot be written, or a bug: set aside
                log.exception("message %s set aside", source.where())
                if key is not None:      # its state change goes with its outputs
                    self.stores[stores_of[name]].forget(key)
                    pipeline.forgot(stores_of[name], key)
                    touched.pop((stores_of[name], key), None)
                for store, staged_key in staged:
                    self.stores[store].forget(staged_key)
                    touched.pop((store, staged_key), None)
                messages = self.sender.encode(name, pipeline.quarantine(
                    name, source, msg.key, msg.value or b"", exc, now))
            self.sender.produce(name, messages, pending)
        if replays:
            log.info("skipped %d message(s) read again whose outputs were delivered before a "
                     "restart or rebalance", replays)
        snapshots = [(store, key, self.stores[store].snapshot(key), event)
                     for (store, key), event in touched.items()]
        return pending, snapshots, done

    async def _begin_partitions(self, events: list[Any], generation: int) -> None:
        """Where each partition of the batch that is new to the guard starts, asked for all of
        them at once (one at a time, each lookup waits for the consumer thread's next turn,
        ~1.5 s: a worker owning 16 partitions stalled 24 s after every rebalance)."""
        new = list(dict.fromkeys(
            e.message.tp for e in events
            if getattr(e.message, "generation_id", generation) == generation
            and not self.guard.knows(e.message.tp)))
        if not new:
            return
        for tp, offset in zip(new, await self.start(new), strict=True):
            self.guard.begin(tp, offset)

    async def finish(self, intake: Any, events: list[Any], pending: Deliveries,
                     snapshots: list[tuple[str, bytes, bytes | None, Any]],
                     previous: asyncio.Future[None] | None) -> None:
        try:
            await self.sender.flush(pending)
            if previous is not None:
                await previous
            for store, key, snapshot, event in snapshots:
                self.stores[store].write(key, snapshot, event)
            for event in events:
                await intake.ack(event)
            self.heartbeat.beat()
        except BaseException as exc:
            die(exc)

    async def consume(self, intake: Any) -> None:
        """Process ``intake``'s batches (``batches()``, ``ack(event)``: see
        :mod:`.fetches`) until the app stops."""
        inflight: deque[asyncio.Future[None]] = deque()
        async for events in intake.batches():
            try:
                pending, snapshots, done = await self.process(events)
            except BaseException as exc:
                die(exc)
            previous = inflight[-1] if inflight else None
            inflight.append(asyncio.ensure_future(
                self.finish(intake, done, pending, snapshots, previous)))
            while inflight and (len(inflight) > self.max_inflight or inflight[0].done()):
                await inflight.popleft()
