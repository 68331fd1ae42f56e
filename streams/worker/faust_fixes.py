"""A guard against a loss in faust-streaming 0.15.3 around rebalances (applied by the app
factory, idempotent; nothing happens at import time).

During a rebalance faust suspends its flow control. Messages fetched in that window reach the
stream, are skipped there ("stale generation" / flow control inactive) and -- in
``Stream._py_aiter``'s ``finally`` -- ACKED, although no agent ever saw them. Their offsets go
into ``Consumer._acked`` and the next commit moves the group past them; after the seek to the
committed offset they are never read again. Measured with two workers and a rebalance: 1-6
input messages per rebalance without any output.

The fix: a message the stream never handed to an agent (it was never marked ``tracked``) is not
acknowledged. It stays uncommitted, so it is read again after the seek, and the commit cannot
pass it. Together with :class:`streams.worker.batches.OffsetGuard` (the agent refuses to
process past a missing offset) nothing is committed that was not processed.
"""

from __future__ import annotations

from typing import Any

_APPLIED = "_ebi_untracked_acks_ignored"


def apply() -> None:
    from faust.transport.consumer import Consumer

    if getattr(Consumer, _APPLIED, False):
        return
    original = Consumer.ack

    def ack(self: Any, message: Any) -> bool:
        if not getattr(message, "tracked", False):
            return False      # skipped by the stream, never processed: leave it uncommitted
        return bool(original(self, message))

    ack.__doc__ = original.__doc__
    Consumer.ack = ack  # type: ignore[method-assign]
    setattr(Consumer, _APPLIED, True)
