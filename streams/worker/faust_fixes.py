"""A guard against a loss in faust-streaming 0.15.3 around rebalances (applied by the app
factory, idempotent; nothing happens at import time).

During a rebalance faust suspends its flow control. Messages fetched in that window reach the
stream, are skipped there ("stale generation" / flow control inactive) and -- in
``Stream._py_aiter``'s ``finally`` -- ACKED, although no agent ever saw them. Their offsets go
into ``Consumer._acked`` and the next commit moves the group past them; after the seek to the
committed offset they are never read again. Measured with two workers and a rebalance: 1-6
input messages per rebalance without any output.

Fixes:

1. A message the stream never handed to an agent (it was never marked ``tracked``) is not
   acknowledged, so the commit cannot pass it.
2. After an assignment faust seeks each partition to its committed offset, but aiokafka's
   ``seek_to_committed`` skips partitions whose committed offset is None or 0: a partition
   never committed keeps the position the fetcher reached during the suspended window, and
   the skipped messages are never read again (seen: the only message of a hazards partition
   was never processed). Such partitions are now sought to their beginning.
3. :class:`streams.worker.batches.OffsetGuard` (in the agent) stops the worker (exit 75) when
   a hole still reaches processing; its successor reads again from the committed offset.
   Together: nothing is committed that was not processed.
"""

from __future__ import annotations

from typing import Any

_APPLIED = "_ebi_untracked_acks_ignored"


def apply() -> None:
    from faust.transport.consumer import Consumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    if getattr(Consumer, _APPLIED, False):
        return
    original = Consumer.ack

    def ack(self: Any, message: Any) -> bool:
        if not getattr(message, "tracked", False):
            return False      # skipped by the stream, never processed: leave it uncommitted
        return bool(original(self, message))

    ack.__doc__ = original.__doc__
    Consumer.ack = ack  # type: ignore[method-assign]

    async def seek_to_committed(self: Any) -> Any:
        consumer = self._ensure_consumer()

        async def seek() -> Any:
            committed = await consumer.seek_to_committed()
            never = [tp for tp, offset in committed.items() if not offset or offset <= 0]
            if never:
                await consumer.seek_to_beginning(*never)
            return committed

        return await self.call_thread(seek)

    AIOKafkaConsumerThread.seek_to_committed = seek_to_committed  # type: ignore[method-assign]
    setattr(Consumer, _APPLIED, True)
