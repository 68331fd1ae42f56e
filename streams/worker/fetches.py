"""Whole fetches of the input topics, from faust's consumer straight to the agents' batches.

faust hands every fetched message on by itself: through the conductor, the topic's queue
and the stream's iterator, each step a coroutine or a task (the drain loop waits for each
message's delivery with ``wait_first``, which makes two tasks per message). And while an
agent works on a batch taken with ``noack_take``, the stream adds nothing to the next one:
fetching and processing take turns. At small envelopes both cost more than the processing.

:class:`FetchTap` takes the input topics' messages out of faust's drain loop a whole fetch
at a time (:func:`apply` patches ``Consumer._drain_messages``; the app sets ``app.ebi_tap``,
other apps and the changelog topics keep faust's own path). Each agent's messages wait in
its own queue, at most ``max_queued`` of them (then the drain loop waits, as it does for a
full stream buffer), and the agent takes what is there at once, up to its batch size in
messages and in bytes: a batch of big envelopes is a short one, so a message does not wait
behind seconds of others (its outputs, state and ack come with its batch).

What faust's stream does on the way is done here too: a message fetched before the latest
rebalance, or while flow control is suspended, is dropped (never tracked, so never acked:
the commit cannot pass it, and the seek to the committed offset after the assignment reads
it again); a message that goes to an agent is tracked as unacked (so a revocation waits for
its ack) and acked with ``consumer.ack`` once its batch is done. faust's sensors (its
monitor's per-message statistics, which nothing of ebi reads) are not called.

``worker_input = "stream"`` keeps faust's path (``noack_take``), for comparison.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import Any

_APPLIED = "_ebi_fetch_tap"


class Delivered:
    """What the batch runner and faust's table need of an event: its message."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, message: Any) -> None:
        self.message = message


class _Queue:
    """One agent's fetched messages, in fetch order."""

    def __init__(self, max_queued: int) -> None:
        self.max_queued = max_queued
        self.chunks: deque[list[Any]] = deque()
        self.queued = 0
        self.ready = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()

    async def put(self, messages: list[Any]) -> None:
        while self.queued >= self.max_queued:
            self.room.clear()
            await self.room.wait()
        self.chunks.append(messages)
        self.queued += len(messages)
        self.ready.set()

    async def take(self, most: int, most_bytes: int) -> list[Any]:
        """What is queued, up to ``most`` messages and about ``most_bytes`` of values (at
        least one message); waits when nothing is."""
        while not self.chunks:
            self.ready.clear()
            await self.ready.wait()
        out: list[Any] = []
        size = 0
        while self.chunks and len(out) < most and size < most_bytes:
            chunk = self.chunks.popleft()
            room = most - len(out)
            for i, message in enumerate(chunk[:room]):
                size += len(message.value or b"")
                if size >= most_bytes:
                    room = i + 1
                    break
            if len(chunk) > room:
                self.chunks.appendleft(chunk[room:])
                chunk = chunk[:room]
            out.extend(chunk)
        self.queued -= len(out)
        if not self.chunks:
            self.ready.clear()
        self.room.set()
        return out


class FetchTap:
    """The input topics' messages per agent (``agents``: agent name -> its full topic
    names)."""

    def __init__(self, agents: dict[str, Iterable[str]], max_queued: int = 8000) -> None:
        self.agent_of = {topic: name for name, topics in agents.items() for topic in topics}
        self.topics = frozenset(self.agent_of)
        self.max_queued = max_queued
        self._queues: dict[str, _Queue] = {}

    def queue(self, agent: str) -> _Queue:
        # made on the event loop (asyncio.Event binds to it on first use)
        if agent not in self._queues:
            self._queues[agent] = _Queue(self.max_queued)
        return self._queues[agent]

    async def put(self, messages: list[Any]) -> None:
        """One fetch's messages of the tapped topics (the drain loop)."""
        per: dict[str, list[Any]] = {}
        agent_of = self.agent_of
        for message in messages:
            per.setdefault(agent_of[message.topic], []).append(message)
        for agent, mine in per.items():
            await self.queue(agent).put(mine)


class FetchInput:
    """An agent's input as the batch runner takes it: ``batches()`` and ``ack(event)``."""

    def __init__(self, app: Any, tap: FetchTap, agent: str, most: int,
                 most_bytes: int = 512 * 1024) -> None:
        self.app = app
        self.tap = tap
        self.agent = agent
        self.most = most
        self.most_bytes = most_bytes

    async def batches(self) -> AsyncIterator[list[Any]]:
        app, queue = self.app, self.tap.queue(self.agent)
        while True:
            messages = await queue.take(self.most, self.most_bytes)
            unacked = app.consumer.unacked
            generation = app.consumer_generation_id
            active = app.flow_control.is_active()
            events = []
            for message in messages:
                if not active or message.generation_id != generation:
                    continue      # fetched before the rebalance: read again after the seek
                message.tracked = True
                unacked.add(message)      # as faust's stream does (without its sensors)
                events.append(Delivered(message))
            if events:
                yield events

    async def ack(self, event: Any) -> None:
        self.app.consumer.ack(event.message)


class StreamInput:
    """faust's own path: ``noack_take`` on the agent's stream, acked through the stream."""

    def __init__(self, stream: Any, most: int, within: float) -> None:
        self.stream = stream
        self.most = most
        self.within = within

    async def batches(self) -> AsyncIterator[list[Any]]:
        async for events in self.stream.noack_take(self.most, within=self.within):
            yield list(events)

    async def ack(self, event: Any) -> None:
        await self.stream.ack(event)


def apply() -> None:
    """Let an app with ``ebi_tap`` take its tapped topics a fetch at a time (idempotent)."""
    from faust.transport.consumer import Consumer

    if getattr(Consumer, _APPLIED, False):
        return
    original = Consumer._drain_messages

    async def drain_messages(self: Any, fetcher: Any) -> None:
        tap: FetchTap | None = getattr(self.app, "ebi_tap", None)
        if tap is None:
            await original(self, fetcher)
            return
        await _drain(self, fetcher, tap)

    drain_messages.__doc__ = original.__doc__
    Consumer._drain_messages = drain_messages  # type: ignore[method-assign]
    setattr(Consumer, _APPLIED, True)


async def _drain(self: Any, fetcher: Any, tap: FetchTap) -> None:  # pragma: no cover
    """faust 0.15.3's ``Consumer._drain_messages`` (the same offset and gap checks), with the
    tapped topics' messages handed on a fetch at a time."""
    from faust.transport.consumer import CONSUMER_FETCHING

    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for
    tapped_topics = tap.topics

    async def commit_if_due() -> None:
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            ait = getmany(timeout=1.0)
            await self.sleep(0)
            if self.should_stop:
                continue
            tapped: list[Any] = []
            async for tp, message in ait:
                offset = message.offset
                r_offset = get_read_offset(tp)
                if r_offset is not None and offset < r_offset:
                    continue             # faust drops these too ("DROPPED MESSAGE ROFF")
                gap = offset - (r_offset or 0)
                if gap > 1 and r_offset and acks_enabled_for(message.topic):
                    await self._add_gap(tp, r_offset + 1, offset)
                if message.topic in tapped_topics:
                    tapped.append(message)
                else:
                    await commit_if_due()
                    await self.wait_first(callback(message), self.suspend_flow.wait())
                set_read_offset(tp, offset)
            if tapped:
                await commit_if_due()
                await self.wait_first(tap.put(tapped), self.suspend_flow.wait())
            unset_flag(CONSUMER_FETCHING)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(CONSUMER_FETCHING)
