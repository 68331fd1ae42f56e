"""Everything the worker does between Kafka in and Kafka out, without faust.

:class:`Pipeline` decodes a message, routes it by its input topic to the processor the
catalog names for its record type, with the state of its key, and keeps that state in the
record type's store (the faust-table cache in the worker, a dict in tests). :meth:`Pipeline.tick`
is the periodic part: each state table's clock (silent gateways, incident deadlines, hazard
deadlines). A clock with ``next_due`` visits only its due keys (:mod:`.due`: the index is fed
here, on every state a processor writes, and after every tick). No exception escapes for
bad data: when a processor raises, the key's cached state is dropped (reloaded from the
table) and the message is tried again, ``poison_attempts`` times in all; then it is set aside
to the dead letters (``QUARANTINED``, with the exception) and the pipeline moves on.

The catalog's stages (``Output.stage``: the alarm book) then look at what the processor (or
a clock) produced and keep their own state, keyed like the record; the keys they changed
are handed to the batch by :meth:`Pipeline.take_touched`, so their state is written with the
record's.

Before anything else a signed record type's message is verified (:meth:`Pipeline.verify`,
:mod:`streams.signing`): an unknown, revoked or wrong key or a bad signature makes a dead
letter BAD_SIGNATURE, a record that is not its signer's (another gateway, enterprise or
region) IDENTITY_MISMATCH, both with the original bytes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from schemas.catalog.model import Catalog, RecordType, resolve
from schemas.codec import AvroDeserializer, DecodeError, SerializationContext
from schemas.records import Record, Source, dead_letter
from streams.processors.base import Clock, DueClock, Processor, StateStore, missing_reference
from streams.processors.common import Outputs, canary_tag
from streams.processors.context import ProcessorContext
from streams.processors.liveness import partition_caught_up
from streams.signing.senders import SenderCheck, rejected_fields
from streams.signing.verify import IDENTITY_MISMATCH, Rejected, Signed
from streams.worker.due import DueIndex, DueView, due_function

log = logging.getLogger(__name__)


@dataclass
class Route:
    """How the worker handles one input topic (derived from its record type)."""

    kind: RecordType
    processor: Processor
    store: StateStore
    key_field: str
    records_in: Any        # counter child
    lag: Any               # gauge child: now - the sender's time of the last record


@dataclass
class Changed:
    """A timer changed the state of ``key`` in ``store``; persist it when possible."""

    store: str
    key: bytes


class Pipeline:
    def __init__(self, catalog: Catalog, ctx: ProcessorContext,
                 deserializer: AvroDeserializer, stores: Mapping[str, StateStore],
                 poison_attempts: int = 3, senders: SenderCheck | None = None) -> None:
        self.catalog = catalog
        # signatures (None: not verified, the development opt-in) and publication
        self.senders = senders or SenderCheck(None, ctx.policy.raw)
        self.poison_attempts = max(1, poison_attempts)
        # the most of a message's bytes a dead letter carries (an input over the limit is
        # rejected as OVERSIZE and keeps only its beginning)
        self.max_value = ctx.policy.limits.max_message_bytes
        self.ctx = ctx
        self.metrics = ctx.metrics
        self.deserializer = deserializer
        self.stores = stores
        self.routes: dict[str, Route] = {}
        for kind in catalog.processed:
            assert kind.state is not None
            name = kind.input.name
            self.routes[name] = Route(
                kind, resolve(kind.processor)(ctx), stores[kind.state.name], kind.state.key,
                ctx.metrics.records_in.labels(name, kind.input.record),
                ctx.metrics.processing_lag.labels(name))
        self.clocks: dict[str, Clock] = {
            name: resolve(state.clock)(ctx) for name, state in catalog.states().items()
            if state.clock}
        # (output, stage, its store's name): e.g. the alarm book over every record's outputs
        self.stages: list[tuple[Any, Any, str]] = [
            (o, resolve(o.stage)(ctx), o.state.name) for o in catalog.stages
            if o.state is not None]
        self._touched: list[tuple[str, bytes]] = []
        # stage states a clock changed: written with the next record of their key
        self._ticked: set[tuple[str, bytes]] = set()
        # clocks with next_due: their due index (see .due); the others scan every key
        self.due: dict[str, DueIndex] = {
            name: DueIndex(due_function(clock), getattr(clock, "category", None))
            for name, clock in self.clocks.items() if isinstance(clock, DueClock)}
        self.assignments: dict[str, tuple[frozenset[int], int]] = {}
        self.visited: dict[str, int] = {}    # per state table: keys its last tick visited
        # per state table and partition: last arrival (ms) and when the worker last read one
        self._arrival: dict[tuple[str, int], int] = {}
        self._activity: dict[tuple[str, int], int] = {}

    def verify(self, logical: str, source: Source, key: bytes | None, value: bytes | None,
               headers: Any, now_ms: int) -> Signed | Rejected | None:
        """The message's signature, checked before it is decoded (None: not verified)."""
        arrival = source.timestamp_ms if source.timestamp_ms > 0 else now_ms
        return self.senders.verify(self.routes[logical].kind, logical, key, value, headers,
                                   arrival)

    def rejected(self, logical: str, source: Source, key: bytes | None, value: bytes | None,
                 why: Rejected, now_ms: int) -> Outputs:
        """The dead letter of a message whose signature did not verify."""
        self.routes[logical].records_in.inc()
        letter = dead_letter(source.with_schema(self.deserializer.schema_id(value)), key,
                             self._kept(value), why.code, why.message, "verify", now_ms,
                             tag=_key_tag(key))
        letter.update(rejected_fields(why))
        return Outputs(dead_letters=[letter])

    def decode(self, logical: str, source: Source, key: bytes | None, value: bytes | None,
               now_ms: int) -> tuple[Record | None, Source, Outputs | None]:
        """The record, or None with a dead letter (the decode error's code, the original
        bytes and the coordinates)."""
        route = self.routes[logical]
        route.records_in.inc()
        try:
            record, schema_id = self.deserializer(value, SerializationContext(
                source.topic, route.kind.input.record))
        except DecodeError as exc:
            src = source.with_schema(self.deserializer.schema_id(value))
            return None, src, Outputs(dead_letters=[dead_letter(
                src, key, self._kept(value), exc.code, exc.message, "decode", now_ms,
                tag=_key_tag(key))])
        return record, source.with_schema(schema_id), None

    def _kept(self, value: bytes | None) -> bytes:
        """The bytes a dead letter keeps of a message: all of it, up to the input limit."""
        if not value:
            return b""
        return value if len(value) <= self.max_value else value[:self.max_value]

    def missing_reference(self, logical: str, record: Record) -> bool:
        """The record names an enterprise or sensor this worker does not know (yet)."""
        return missing_reference(self.routes[logical].processor, record)

    def apply(self, logical: str, record: Record, source: Source, key: bytes | None,
              value: bytes, now_ms: int, signed: Signed | None = None
              ) -> tuple[Outputs, bytes | None]:
        """Process one decoded record (``signed``: who signed it, when verified); returns its
        outputs and the state key it changed."""
        route = self.routes[logical]
        store = route.store
        state_key = str(record[route.key_field]).encode()
        if signed is not None:
            why = self.senders.identity(route.kind, record, key, store.get(state_key), signed)
            if why is not None:
                letter = dead_letter(source, key, self._kept(value), IDENTITY_MISMATCH,
                                     f"{route.kind.name} message at {source.where()} signed by "
                                     f"{signed.key.owner()}: {why}", "verify", now_ms,
                                     record_id=str(record.get(route.key_field))[:200],
                                     tag=_key_tag(key))
                letter.update(key_id=signed.key.key_id, signature=signed.signature)
                return Outputs(dead_letters=[letter]), None
        group = (route.kind.state.name if route.kind.state else "", source.partition)
        arrival = source.timestamp_ms if source.timestamp_ms > 0 else now_ms
        if arrival > self._arrival.get(group, 0):
            self._arrival[group] = arrival
        self._activity[group] = now_ms
        for attempt in range(1, self.poison_attempts + 1):
            state = store.get(state_key)
            try:
                out, new = route.processor.process(record, source, key, value, state, now_ms)
                break
            except Exception as exc:  # a processor bug must not stop the pipeline
                log.exception("processing %s failed (attempt %d of %d)", source.where(),
                              attempt, self.poison_attempts)
                store.forget(state_key)
                self.forgot(route.kind.state.name if route.kind.state else "", state_key)
                if attempt == self.poison_attempts:
                    return self.quarantine(route.kind.name, source, key, value, exc, now_ms,
                                           str(record.get(route.key_field))[:200]), None
        if out.replay:
            self.metrics.replays_skipped.labels(logical).inc()
            return out, None
        # the signature's fields and the publication rule first: the stages (the alarm
        # book) see the outputs as they are sent
        self.senders.finish(route.kind, record, signed, value, out, now_ms)
        self._stages(route, state_key, out, now_ms)
        if new is None:
            return out, None
        if signed is not None:
            self.senders.remember_owner(route.kind, record, new)
        store.put(state_key, new)
        index = self.due.get(route.kind.state.name if route.kind.state else "")
        if index is not None:
            index.note(state_key, new)
        sent = record.get(route.kind.event_time) if route.kind.event_time else None
        if isinstance(sent, int):
            route.lag.set(max(0, now_ms - sent) / 1000)
        return out, state_key

    def _stages(self, route: Route, key: bytes, out: Outputs, now_ms: int) -> None:
        for _, stage, store in self.stages:
            if route.kind.state is not None and route.kind.state.name == store:
                continue                 # the stage's own input (alarm commands)
            try:
                if stage.observe(key, out, self.stores[store], now_ms) or \
                        (store, key) in self._ticked:
                    self._ticked.discard((store, key))
                    self._touched.append((store, key))
            except Exception:  # a stage's bug must not cost the record its processing
                log.exception("stage %s failed on key %r; its state is reloaded", store,
                              key[:80])
                self.stores[store].forget(key)

    def take_touched(self) -> list[tuple[str, bytes]]:
        """(store, key) of the stage states changed since the last call."""
        touched, self._touched = self._touched, []
        return touched

    def quarantine(self, kind: str, source: Source, key: bytes | None, value: bytes,
                   exc: BaseException, now_ms: int, record_id: str | None = None) -> Outputs:
        """The message set aside: one dead letter with its bytes and the exception."""
        self.metrics.quarantined.labels("worker").inc()
        return Outputs(dead_letters=[dead_letter(
            source, key, self._kept(value), "QUARANTINED",
            f"{kind} message at {source.where()} set aside after failing "
            f"{self.poison_attempts} times: {type(exc).__name__}: {str(exc)[:500]}",
            "validate", now_ms, record_id=record_id, tag=_key_tag(key))])

    def forgot(self, store: str, key: bytes) -> None:
        """The cached state of ``key`` was dropped (the table's copy stands): its due time is
        in doubt, so its clock looks at it at the next tick."""
        index = self.due.get(store)
        if index is not None:
            index.soon(key)

    def tick(self, now_ms: int, wall_ms: int | None = None) -> tuple[Outputs, list[Changed]]:
        """Every state table's clock over the locally owned state: the due keys of a clock
        with ``next_due``, every key of the others. A changed key whose state is gone was
        expired by its clock (the worker deletes it from the table)."""
        wall = now_ms if wall_ms is None else wall_ms
        out = Outputs()
        changed: list[Changed] = []
        staged = {store for _, _, store in self.stages}
        for name, clock in self.clocks.items():
            store = self.stores[name]
            # a stage's state follows every store's partitions: trust what all trust
            trust = self._trust_all(wall) if name in staged else self._trust(name, wall)
            index = self.due.get(name)
            if index is None:
                res, keys = clock.tick(store, now_ms, trust)
                self.visited[name] = -1        # every key (not counted)
            else:
                if index.stale:
                    index.rebuild(store)
                due = index.take(now_ms)
                self.visited[name] = len(due)
                res, keys = clock.tick(DueView(store, due, index, self.assignments.get(name)),
                                       now_ms, trust)
                for key in dict.fromkeys([*due, *keys]):
                    index.note(key, store.get(key))
            if index is not None:
                self.metrics.clock_keys.labels(name).set(self.visited[name])
            out.extend(res)
            changed += [Changed(name, key) for key in keys]
        for _, stage, stage_store in self.stages:
            try:
                changed += [Changed(stage_store, key) for key in
                            stage.observe_tick(out, self.stores[stage_store], now_ms)]
            except Exception:
                log.exception("stage %s failed on the clocks' outputs", stage_store)
        self._ticked.update((c.store, c.key) for c in changed if c.store in staged)
        return out, changed

    def _trust_all(self, wall_ms: int) -> Callable[[int | None], bool]:
        return lambda partition: all(self._trusted(s, partition, wall_ms) for s in self.stores)

    def assign(self, store: str, partitions: frozenset[int], total: int) -> None:
        """The partitions of ``store`` this worker owns now, of ``total`` (clocks that decide
        about keys nobody holds yet, e.g. gateways that never connected, need it)."""
        self.assignments[store] = (partitions, total)

    def reindex(self) -> None:
        """Rebuild every due index from its table at the next tick (partitions moved, or the
        tables finished recovering from their changelogs)."""
        for index in self.due.values():
            index.stale = True

    def _trust(self, store: str, wall_ms: int) -> Callable[[int | None], bool]:
        return lambda partition: self._trusted(store, partition, wall_ms)

    def _trusted(self, store: str, partition: int | None, wall_ms: int) -> bool:
        """Whether silence on a partition of ``store`` can be trusted (see
        :func:`partition_caught_up`); an unknown partition: all of the store's must be."""
        parts = [p for (s, p) in self._activity if s == store]
        if partition is not None:
            if partition not in parts:
                return True
            parts = [partition]
        return all(partition_caught_up(self._arrival.get((store, p), 0),
                                       self._activity[(store, p)], wall_ms) for p in parts)

    def reset_partitions(self) -> None:
        self._arrival.clear()
        self._activity.clear()
        self._ticked.clear()      # the caches are dropped too: the tables are the truth
        self.reindex()


def _key_tag(key: bytes | None) -> str | None:
    if not key:
        return None
    try:
        return canary_tag(key.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def now_ms() -> int:
    return int(time.time() * 1000)
