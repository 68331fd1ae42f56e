"""The worker's producer is idempotent (applied by the app factory; nothing happens at import
time).

faust-streaming 0.15.3 asks aiokafka for ``enable_idempotence`` only inside a transaction,
and ebi's worker uses none (outputs are acknowledged before offsets are committed). Without
idempotence a batch the broker wrote but whose acknowledgement was lost -- a leader change
while a broker dies is the common case -- is written again by aiokafka's retry, so a
table's changelog would hold the same change twice (the worker's outputs go through
librdkafka, :mod:`.delivery`, idempotent on its own). With it, the broker recognises the retry by
the producer id and sequence number and keeps one copy. ``acks=all`` (faust's
``producer_acks=-1``) is what idempotence requires anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_APPLIED = "_ebi_idempotent"


def apply() -> None:
    from faust.transport.drivers.aiokafka import Producer

    if getattr(Producer, _APPLIED, False):
        return
    original = Producer._settings_extra

    def settings_extra(self: Any) -> Mapping[str, Any]:
        return {**original(self), "acks": "all", "enable_idempotence": True}

    Producer._settings_extra = settings_extra  # type: ignore[method-assign]
    setattr(Producer, _APPLIED, True)


def applied() -> bool:
    from faust.transport.drivers.aiokafka import Producer

    return bool(getattr(Producer, _APPLIED, False))
