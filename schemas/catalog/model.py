"""The vocabulary of the catalog: what a record type is, and the lookups derived from it.

A :class:`RecordType` is the one declaration of an input: its topic and key, its Avro
record, the checks a sender's record must pass, the processor that handles it, the state
table it keeps, the clean topic and ClickHouse table it ends in, how the ledger accounts for
it and whether the canary covers it. An :class:`Output` is a topic the worker writes for
every record type (alerts, gateway statuses, dead letters). A :class:`Catalog` holds both
and derives everything else: topic lists, routes, tables, state groups. Nothing here knows
faust, Kafka clients or ClickHouse; processors and checks are named by import path
(``"package.module:name"``) and resolved by whoever runs them, so this package stays at the
bottom of the import graph.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Literal

import fastavro


@dataclass(frozen=True)
class Topic:
    """A Kafka topic: logical name (the deployment adds its prefix), the Avro record it
    carries and the record field that keys it ("" for none). ``receipt_time``: the broker
    stamps each message with its own receipt time (``message.timestamp.type=LogAppendTime``),
    so a sender cannot set the time its message reached the platform. ``partitions``: its
    own partition count, 0 for the deployment's ``topic_partitions`` (inputs sharing a state
    table must agree)."""

    name: str
    record: str
    key: str = ""
    compacted: bool = False
    receipt_time: bool = False
    partitions: int = 0


@dataclass(frozen=True)
class View:
    """An analyst view over a table: every (deduplicated) row, or with ``latest_by`` the
    latest row per key, ``order`` deciding which is the latest (e.g. "version DESC");
    ``where`` keeps only the rows it holds for (before the latest is chosen).
    ``columns``: computed columns added to the table's, by name (the sink defines them)."""

    name: str
    latest_by: tuple[str, ...] = ()
    order: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    where: str = ""       # a condition on the rows (e.g. a view meant for publication)


@dataclass(frozen=True)
class Table:
    """The ClickHouse table a topic is written to (columns generated from the Avro record).

    ``columnar``: the record's top-level arrays are parallel per-row columns (one row per
    entry); ``row_id`` names the per-row id: of a record marked ``recheck`` (its rows may be
    stored already) the sink stores only rows whose id the table does not hold yet.
    ``skip``: fields not stored. ``event_time``: the field the end-to-end latency is
    measured from. ``views``: analyst views over the table. ``shard_by``: the columns whose
    hash picks a row's shard on a ClickHouse cluster (rows that replace each other, and the
    versions a ``latest_by`` view chooses from, must share one); () for the first order-by
    column."""

    name: str
    order_by: tuple[str, ...]
    partition_by: str = ""
    columnar: bool = False
    row_id: str = ""               # columnar: the per-row id (rows the sink rechecks by it)
    row_time: str = ""             # columnar: the per-row time (narrows that lookup)
    skip: frozenset[str] = frozenset()
    event_time: str = ""
    views: tuple[View, ...] = ()
    doc: str = ""
    shard_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ledger:
    """How the ledger (one row per input message) accounts for a clean record.

    ``label`` is the ledger's record_type; ``record_id`` the fields joined with "/".
    ``counts``: "record" (one record, possibly a duplicate) or "rows" (an envelope: the
    record's ``readings_in``, ``duplicates`` and ``rejected`` fields, its accepted rows are
    the table rows it makes, and ``ebi reconcile`` checks that the table holds them)."""

    label: str
    record_id: tuple[str, ...]
    counts: Literal["record", "rows"] = "record"


@dataclass(frozen=True)
class State:
    """A state table of the worker, keyed by a record field. Record types sharing one are
    read by one agent, so their input topics must be co-partitioned. ``clock``: what the
    worker's timer runs over the table (import path of a class built with the processor
    context), "" for none. ``upgrade``: import path of ``(decoded state) -> state``, which
    converts a state written in an earlier layout to the current one (and returns a
    current one unchanged); the worker runs it once per key, when it first reads the key
    from the table; "" for none."""

    name: str
    key: str
    clock: str = ""
    upgrade: str = ""


@dataclass(frozen=True)
class Reference:
    """Reference data (registrations) kept in memory by every worker: ``table`` names the
    map in :class:`streams.processors.reference.ReferenceData`, ``build`` turns a record into
    its entry (import path of ``(policy, record) -> entry``)."""

    table: str
    build: str


@dataclass(frozen=True)
class Signed:
    """How a record type's records are bound to their sender (:mod:`streams.signing`):
    every message carries an Ed25519 signature; ``kinds`` are the key owners that may sign
    them (GATEWAY, ENTERPRISE, REGIONAL; REGISTRAR: the registration authority's trust
    anchors). The record fields the key's owner must match: ``gateway`` (a GATEWAY key's
    gateway), ``enterprise`` (a GATEWAY or ENTERPRISE key's enterprise), ``region`` (inside
    a REGIONAL key's region). ``owner`` = (attribute, state field): the entity's state
    remembers its owner there, and a later record must come from a key that covers it too
    (a hidden danger stays its enterprise's). ``evidence``: the clean record keeps the
    signed bytes (``signed_value``). ``publication``: the field whose AUTHORISED value only a
    publisher named by the policy may set."""

    kinds: tuple[str, ...]
    gateway: str = ""
    enterprise: str = ""
    region: str = ""
    owner: tuple[str, str] | tuple[()] = ()
    evidence: bool = False
    publication: str = ""


@dataclass(frozen=True)
class RecordType:
    """One record type and everything derived from it (see the module docstring)."""

    name: str                       # `ebi publish --type` name
    input: Topic
    checks: str                     # import path of (record, policy, now_ms) -> [Violation]
    processor: str = ""             # import path of a class built with the processor context
    state: State | None = None
    clean: Topic | None = None
    table: Table | None = None      # where the clean records are stored
    ledger: Ledger | None = None
    reference: Reference | None = None
    event_time: str = ""            # sender's time field (processing-lag metric)
    flat_items: str = ""            # `ebi publish`: a flat row is one entry of this array
    canary: bool = False            # the canary scenario sends records of this type
    senders: tuple[str, ...] = ()   # roles that may write the input topic (Kafka ACLs)
    signed: Signed | None = None    # signed by its sender (None: not signed, not verified)

    def __post_init__(self) -> None:
        if self.processor and self.state is None:
            raise ValueError(f"record type {self.name}: a processor needs a state table")
        if self.clean is not None and self.table is not None and self.ledger is None:
            raise ValueError(f"record type {self.name}: a stored clean record needs a ledger "
                             "entry (or ebi reconcile reports a gap for every message)")


OutputRole = Literal["status", "alert", "deadletter", "alarm", "registration"]


@dataclass(frozen=True)
class Output:
    """A topic the worker writes for records of any type. ``field`` is the attribute of the
    processors' ``Outputs`` that holds its records.

    ``stage``: import path of a class built with the processor context that derives this
    output from what the processors and clocks produce (the alarm book: alerts, statuses and
    clean records in, alarm transitions out); it keeps its state in ``state``, a state table
    that a record type also keeps (so it has an agent, a changelog and an input topic that
    addresses it), keyed like the record that was processed."""

    topic: Topic
    role: OutputRole
    field: str
    table: Table | None = None
    stage: str = ""
    state: State | None = None

    def __post_init__(self) -> None:
        if bool(self.stage) != (self.state is not None):
            raise ValueError(f"output {self.topic.name}: a stage needs a state table and a "
                             "state table a stage")


class SchemaStore:
    """The ``.avsc`` files of one or more directories (first match wins), read and parsed
    once per record."""

    def __init__(self, dirs: Sequence[Traversable | Path]) -> None:
        self.dirs = tuple(dirs)
        self._text: dict[str, str] = {}
        self._parsed: dict[str, Any] = {}

    def names(self) -> list[str]:
        found = {p.name[:-5] for d in self.dirs for p in d.iterdir() if p.name.endswith(".avsc")}
        return sorted(found)

    def text(self, record: str) -> str:
        """The schema as stored in ``<record>.avsc`` (what gets registered)."""
        cached = self._text.get(record)
        if cached is not None:
            return cached
        for d in self.dirs:
            path = d.joinpath(f"{record}.avsc")
            if path.is_file():
                text = self._text[record] = path.read_text("utf-8")
                return text
        raise KeyError(f"no schema named {record!r}; known: {', '.join(self.names())}")

    def json(self, record: str) -> Any:
        return json.loads(self.text(record))

    def parsed(self, record: str) -> Any:
        schema = self._parsed.get(record)
        if schema is None:
            schema = self._parsed[record] = fastavro.parse_schema(self.json(record),
                                                                  named_schemas={})
        return schema


def resolve(path: str) -> Any:
    """The object named by an import path ``"package.module:name"``."""
    module, _, name = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Catalog:
    """Record types, outputs and schemas; every list the pipeline needs is derived here."""

    types: tuple[RecordType, ...]
    outputs: tuple[Output, ...]
    schemas: SchemaStore = field(compare=False)

    def __post_init__(self) -> None:
        names = [t.name for t in self.types]
        topics = [t.name for t in self.all_topics()]
        for what, values in (("record type", names), ("topic", topics)):
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"catalog: {what} declared twice: {', '.join(repeated)}")
        for table in self.tables():
            if not table.event_time:
                raise ValueError(f"catalog: table {table.name} needs an event_time field")
        roles = [o.role for o in self.outputs]
        if roles.count("deadletter") != 1:
            raise ValueError("catalog: exactly one output must have the role deadletter")
        states = self.states()
        for o in self.stages:
            assert o.state is not None
            if states.get(o.state.name) != o.state:
                raise ValueError(f"catalog: the stage of {o.topic.name} keeps its state in "
                                 f"{o.state.name}, which no record type keeps")
        signed = [t.name for t in self.types if t.signed is not None]
        if signed and self.signing_keys is None:
            raise ValueError(f"catalog: {', '.join(signed)} are signed but no reference type "
                             "holds the signing keys (Reference table 'keys')")
        for state, kinds in self.state_groups().items():
            counts = {k.input.partitions for k in kinds}
            if len(counts) > 1:
                raise ValueError(f"catalog: the inputs of state table {state} are "
                                 "co-partitioned, so their partition counts must agree: "
                                 + ", ".join(f"{k.input.name} {k.input.partitions or 'default'}"
                                             for k in kinds))

    # -- record types ---------------------------------------------------------------------
    def type(self, name: str) -> RecordType:
        for t in self.types:
            if t.name == name:
                return t
        raise KeyError(f"no record type {name!r}; known: {', '.join(self.type_names())}")

    def type_names(self) -> list[str]:
        return [t.name for t in self.types]

    def of_input(self, logical_topic: str) -> RecordType:
        """The record type read from an input topic."""
        for t in self.types:
            if t.input.name == logical_topic:
                return t
        raise KeyError(f"{logical_topic!r} is not an input topic")

    @property
    def processed(self) -> tuple[RecordType, ...]:
        """Record types the worker's agents process (in declaration order)."""
        return tuple(t for t in self.types if t.processor)

    @property
    def reference(self) -> tuple[RecordType, ...]:
        return tuple(t for t in self.types if t.reference is not None)

    @property
    def signing_keys(self) -> RecordType | None:
        """The reference type that registers the senders' signing keys, if any."""
        for t in self.reference:
            if t.reference is not None and t.reference.table == "keys":
                return t
        return None

    @property
    def ledgered(self) -> tuple[RecordType, ...]:
        return tuple(t for t in self.types if t.ledger is not None)

    @property
    def stages(self) -> tuple[Output, ...]:
        """Outputs derived by a stage over every processed record (in declaration order)."""
        return tuple(o for o in self.outputs if o.stage)

    def state_groups(self) -> dict[str, tuple[RecordType, ...]]:
        """State table name -> the record types keeping their state in it (one agent each;
        their input topics must have the same partition count)."""
        groups: dict[str, list[RecordType]] = {}
        for t in self.processed:
            assert t.state is not None
            groups.setdefault(t.state.name, []).append(t)
        return {name: tuple(types) for name, types in groups.items()}

    def states(self) -> dict[str, State]:
        out: dict[str, State] = {}
        for t in self.processed:
            assert t.state is not None
            known = out.setdefault(t.state.name, t.state)
            if known != t.state:
                raise ValueError(f"catalog: state table {t.state.name} declared differently "
                                 f"by {t.name}")
        return out

    # -- topics -----------------------------------------------------------------------------
    def all_topics(self) -> Iterator[Topic]:
        for t in self.types:
            yield t.input
            if t.clean is not None:
                yield t.clean
        for o in self.outputs:
            yield o.topic

    def topic(self, logical: str) -> Topic:
        for t in self.all_topics():
            if t.name == logical:
                return t
        raise KeyError(f"no topic {logical!r} in the catalog")

    def input_topics(self) -> list[str]:
        """Topics senders write: processed inputs and reference data."""
        return [t.input.name for t in self.types]

    def worker_outputs(self) -> list[Topic]:
        """Everything the worker writes: clean topics, then the shared outputs."""
        return [t.clean for t in self.processed if t.clean is not None] + \
            [o.topic for o in self.outputs]

    def output(self, role: OutputRole) -> Output:
        for o in self.outputs:
            if o.role == role:
                return o
        raise KeyError(f"no output with the role {role!r}")

    # -- storage ----------------------------------------------------------------------------
    def routes(self) -> dict[str, tuple[Topic, Table]]:
        """Logical topic -> (topic, table) for everything the sink writes, in write order:
        clean tables first, dead letters last (the sink adds its own rejects to them)."""
        pairs = [(t.clean, t.table) for t in self.processed
                 if t.clean is not None and t.table is not None]
        pairs += [(o.topic, o.table) for o in self.outputs
                  if o.table is not None and o.role != "deadletter"]
        dead = self.output("deadletter")
        if dead.table is not None:
            pairs.append((dead.topic, dead.table))
        return {topic.name: (topic, table) for topic, table in pairs}

    def tables(self) -> list[Table]:
        return [table for _, table in self.routes().values()]

    def ledger_of(self, table: str) -> Ledger | None:
        """The ledger declaration of the record type stored in ``table`` (None: not one row
        per input message)."""
        for t in self.ledgered:
            if t.table is not None and t.table.name == table:
                return t.ledger
        return None

    def dead_letter_table(self) -> str:
        table = self.output("deadletter").table
        return table.name if table is not None else ""


def catalog_from(types: Iterable[RecordType], outputs: Iterable[Output],
                 schema_dirs: Sequence[Traversable | Path]) -> Catalog:
    return Catalog(tuple(types), tuple(outputs), SchemaStore(schema_dirs))
