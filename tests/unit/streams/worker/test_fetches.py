"""The fetch tap: whole fetches per agent, dropped when fetched before a rebalance."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

from streams.worker.fetches import FetchInput, FetchTap


class Message:
    def __init__(self, topic: str, offset: int, generation: int) -> None:
        self.topic, self.partition, self.offset = topic, 0, offset
        self.generation_id = generation
        self.tracked = False
        self.value = b"v" * 100


def message(topic: str, offset: int, generation: int = 1) -> Any:
    return Message(topic, offset, generation)


class FakeConsumer:
    def __init__(self) -> None:
        self.unacked: set[Any] = set()
        self.acked: list[int] = []

    def ack(self, msg: Any) -> bool:
        self.unacked.discard(msg)
        self.acked.append(msg.offset)
        return True


class FakeApp:
    def __init__(self) -> None:
        self.consumer = FakeConsumer()
        self.consumer_generation_id = 1
        self.active = True
        self.flow_control = SimpleNamespace(is_active=lambda: self.active)


def test_a_fetch_goes_to_the_agent_of_each_topic_in_order() -> None:
    tap = FetchTap({"ebi.gateways": {"p.telemetry", "p.heartbeats"},
                    "ebi.incidents": {"p.incidents"}})

    async def run() -> tuple[list[int], list[int]]:
        await tap.put([message("p.telemetry", 1), message("p.incidents", 7),
                       message("p.heartbeats", 2), message("p.telemetry", 3)])
        gateways = await tap.queue("ebi.gateways").take(100, 1 << 20)
        incidents = await tap.queue("ebi.incidents").take(100, 1 << 20)
        return [m.offset for m in gateways], [m.offset for m in incidents]

    assert asyncio.run(run()) == ([1, 2, 3], [7])


def test_take_gives_what_is_there_up_to_its_most_and_keeps_the_rest() -> None:
    tap = FetchTap({"a": {"t"}})

    async def run() -> list[list[int]]:
        queue = tap.queue("a")
        await queue.put([message("t", i) for i in range(3)])
        await queue.put([message("t", i) for i in range(3, 8)])
        out = []
        for _ in range(3):
            out.append([m.offset for m in await queue.take(3, 1 << 20)])
        return out

    assert asyncio.run(run()) == [[0, 1, 2], [3, 4, 5], [6, 7]]


def test_a_batch_ends_at_its_bytes_with_at_least_one_message() -> None:
    tap = FetchTap({"a": {"t"}})

    async def run() -> list[list[int]]:
        queue = tap.queue("a")
        await queue.put([message("t", i) for i in range(5)])     # 100 bytes each
        return [[m.offset for m in await queue.take(10, size)] for size in (250, 50, 1000)]

    assert asyncio.run(run()) == [[0, 1, 2], [3], [4]]


def test_a_full_queue_makes_the_drain_loop_wait() -> None:
    tap = FetchTap({"a": {"t"}}, max_queued=2)

    async def run() -> list[str]:
        queue, seen = tap.queue("a"), []

        async def put() -> None:
            await tap.put([message("t", 0), message("t", 1)])
            seen.append("first in")
            await tap.put([message("t", 2)])
            seen.append("second in")

        task = asyncio.ensure_future(put())
        await asyncio.sleep(0.01)
        seen.append("taking")
        assert [m.offset for m in await queue.take(10, 1 << 20)] == [0, 1]
        await asyncio.wait_for(task, 1)
        return seen

    assert asyncio.run(run()) == ["first in", "taking", "second in"]


def test_messages_fetched_before_a_rebalance_are_dropped_untracked() -> None:
    app = FakeApp()
    tap = FetchTap({"a": {"t"}})
    intake = FetchInput(app, tap, "a", 100)

    async def run() -> list[list[int]]:
        batches = intake.batches()
        await tap.put([message("t", 0, generation=1), message("t", 1, generation=1)])
        app.consumer_generation_id = 2                 # a rebalance since that fetch
        await tap.put([message("t", 0, generation=2)])
        first = await batches.__anext__()
        app.active = False                             # flow control suspended
        await tap.put([message("t", 1, generation=2)])
        with contextlib.suppress(TimeoutError):        # dropped: nothing to process
            await asyncio.wait_for(batches.__anext__(), 0.05)
        app.active = True
        await tap.put([message("t", 1, generation=2)])
        second = await intake.batches().__anext__()
        for event in [*first, *second]:
            await intake.ack(event)
        return [[e.message.offset for e in first], [e.message.offset for e in second]]

    assert asyncio.run(run()) == [[0], [1]]
    assert app.consumer.acked == [0, 1]
    assert not app.consumer.unacked


def test_taken_messages_are_tracked_until_acked() -> None:
    app = FakeApp()
    tap = FetchTap({"a": {"t"}})
    intake = FetchInput(app, tap, "a", 100)

    async def run() -> None:
        await tap.put([message("t", 5)])
        events = await intake.batches().__anext__()
        assert events[0].message.tracked
        assert events[0].message in app.consumer.unacked
        await intake.ack(events[0])

    asyncio.run(run())
    assert app.consumer.acked == [5] and not app.consumer.unacked


def test_the_patch_is_applied_once_and_leaves_apps_without_a_tap_to_faust() -> None:
    from faust.transport.consumer import Consumer

    from streams.worker import fetches

    fetches.apply()
    patched = Consumer._drain_messages
    fetches.apply()
    assert Consumer._drain_messages is patched
