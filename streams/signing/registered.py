"""The registered signing keys as a tool reads them: the keys topic from its beginning to its
end (``ebi keys list``, ``ebi keys revoke``, ``ebi verify``), each registration checked
against the trust anchors as the worker does."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from schemas.catalog.model import Catalog
from schemas.codec import AvroDeserializer, DecodeError, SchemaSource, SerializationContext
from streams import clients
from streams.settings import Settings
from streams.signing.keys import KeyRef, SigningError, key_ref
from streams.signing.verify import Rejected, Verifier


@dataclass
class Registered:
    keys: dict[str, KeyRef] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)   # registrations not applied, and why


def read_keys(settings: Settings, registry: SchemaSource, catalog: Catalog,
              anchors: dict[str, KeyRef] | None, timeout: float = 30.0) -> Registered:
    """Every registration on the keys topic, the latest per key id (tombstones remove
    one); with ``anchors`` only those the registration authority signed."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    kind = catalog.signing_keys
    if kind is None or kind.signed is None:
        raise SigningError("the catalog has no signing-key reference type")
    topic = settings.topic(kind.input.name)
    decode = AvroDeserializer(registry, catalog.schemas, millis=True)
    verifier = Verifier({}, anchors or {})
    out = Registered()
    consumer = clients.consumer(settings, f"{settings.worker_id}-keys-reader")
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            raise SigningError(f"the keys topic {topic} does not exist")
        ends: dict[int, int] = {}
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        deadline = time.monotonic() + timeout
        done: dict[int, int] = {}
        while any(done.get(p, 0) < end for p, end in ends.items()):
            if time.monotonic() > deadline:
                raise SigningError(f"reading {topic} took over {timeout:.0f} s")
            for msg in consumer.consume(500, 0.5):
                if msg.error():
                    continue
                done[msg.partition()] = msg.offset() + 1
                _apply(out, msg, kind, decode, verifier if anchors is not None else None)
    finally:
        consumer.close()
    return out


def _apply(out: Registered, msg: Any, kind: Any, decode: AvroDeserializer,
           verifier: Verifier | None) -> None:
    where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
    key_id = (msg.key() or b"").decode("utf-8", "replace")
    if verifier is not None:
        stamp = msg.timestamp()[1] if msg.timestamp() else 0
        verdict = verifier.verify(kind.signed, kind.input.name, msg.key(), msg.value(),
                                  msg.headers(), stamp)
        if isinstance(verdict, Rejected):
            out.rejected.append(f"{where}: {verdict.code}: {verdict.message}")
            return
    if msg.value() is None:
        out.keys.pop(key_id, None)
        out.records.pop(key_id, None)
        return
    try:
        record, _ = decode(msg.value(), SerializationContext(msg.topic(), kind.input.record))
        ref = key_ref(None, record)
    except (DecodeError, KeyError, TypeError, ValueError) as exc:
        out.rejected.append(f"{where}: not a key registration: {exc}")
        return
    out.keys[ref.key_id] = ref
    out.records[ref.key_id] = record
