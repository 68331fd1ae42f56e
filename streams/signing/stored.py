"""``ebi verify``: prove who sent the stored records, and that nothing was changed since.

Every signed record type's table keeps, per input message, the sender's key id, signature
and the SHA-256 of the signed bytes (the catalog's ``Signed``; see the Enriched* schemas).
For each stored message:

- the signature must verify with the registered key (revoked since or not: revocation is
  not retroactive) over the logical topic, the key (the record's key field) and the digest;
- incident reports and hidden dangers (``evidence``: small, legal evidence) keep the signed
  bytes themselves (``signed_value``): they must hash to the digest, and decoded they must
  be what the table holds, field by field;
- telemetry and heartbeats keep only the digest (bytes per reading would double the store):
  the input message is read again from Kafka at the coordinates the table holds, must hash
  to the digest, and its readings must be the stored rows. Once the input topic no longer
  retains it, only the signature over the digest is checked (UNCHECKED): keep the input
  topics (or an archive of them) as long as such proof may be asked for.

Statuses: VERIFIED; UNCHECKED (signature good, contents no longer comparable); UNSIGNED (no
signature: stored while verification was off); UNKNOWN_KEY, BAD_SIGNATURE, TAMPERED.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas.catalog.model import Catalog, RecordType
from schemas.codec import AvroDeserializer, DecodeError, SchemaSource, SerializationContext
from sinks.clickhouse.backend import Backend
from sinks.clickhouse.schema import Field, TableSpec, table_specs
from streams.signing.keys import KeyRef
from streams.signing.publication import AUTHORISED, FLAG, INTERNAL
from streams.signing.wire import signed_message

Coords = tuple[str, int, int]
Fetch = Callable[[list[Coords]], dict[Coords, tuple[bytes | None, bytes | None]]]
FAILURES = ("UNKNOWN_KEY", "BAD_SIGNATURE", "TAMPERED")


@dataclass(frozen=True)
class Finding:
    status: str
    where: str
    record: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.status:<13} {self.where} ({self.record})" + \
            (f": {self.detail}" if self.detail else "")


@dataclass
class TableReport:
    table: str
    counts: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.counts[finding.status] += 1
        if finding.status != "VERIFIED":
            self.findings.append(finding)

    def failed(self, allow_unsigned: bool = False) -> int:
        bad = FAILURES if allow_unsigned else (*FAILURES, "UNSIGNED")
        return sum(self.counts[s] for s in bad)

    def summary(self) -> str:
        total = sum(self.counts.values())
        parts = ", ".join(f"{n} {s.lower() if s == 'VERIFIED' else s}"
                          for s, n in sorted(self.counts.items())) or "nothing stored"
        return f"{self.table}: {total} message(s): {parts}"


def _expr(f: Field, datetime64: bool) -> str:
    """SQL giving a column's value as text (NULL stays NULL)."""
    if f.kind == "timestamp":
        if datetime64:
            return f"toString(toUnixTimestamp64Milli({f.name}))"
        return f"toString(toUInt64(toUnixTimestamp({f.name})) * 1000 + {f.name}_ms)"
    if f.kind == "bytes":
        return f"hex({f.name})"
    return f"toString({f.name})"


def _same(kind: str, stored: Any, signed: Any) -> bool:
    if stored is None or signed is None:
        return stored is None and signed is None
    text = str(stored)
    if kind == "bytes":
        return bytes(signed).hex() == text.lower()
    if kind in ("int", "long", "timestamp"):
        return int(text) == int(signed)
    if kind == "boolean":
        return int(text) == int(bool(signed))
    if kind in ("float", "double"):
        a, b = float(text), float(signed)
        return a == b or (math.isnan(a) and math.isnan(b))
    return text == str(signed)


class StoredVerifier:
    """Checks the stored records of a catalog's signed record types (see the module doc)."""

    def __init__(self, backend: Backend, database: str, catalog: Catalog,
                 keys: dict[str, KeyRef], registry: SchemaSource, fetch: Fetch) -> None:
        self.backend = backend
        self.database = database
        self.catalog = catalog
        self.keys = keys
        self.fetch = fetch
        self.decode = AvroDeserializer(registry, catalog.schemas, millis=True)
        self.specs = table_specs(catalog)

    def kinds(self, tables: Iterable[str] = ()) -> list[RecordType]:
        wanted = set(tables)
        return [k for k in self.catalog.processed if k.signed is not None
                and k.table is not None and (not wanted or k.table.name in wanted)]

    def _compared(self, kind: RecordType, spec: TableSpec) -> list[Field]:
        schema = self.catalog.schemas.json(kind.input.record)
        names = {f["name"] for f in schema["fields"]}
        if spec.columnar and kind.flat_items:
            items = next(f for f in schema["fields"] if f["name"] == kind.flat_items)
            names |= {f["name"] for f in items["type"]["items"]["fields"]}
        return [f for f in spec.fields() if len(f.path) == 1 and not f.sparse
                and f.kind != "array_string" and f.name in names]

    def check(self, kind: RecordType, since_s: int, limit: int) -> TableReport:
        assert kind.table is not None and kind.signed is not None
        spec = self.specs[kind.table.name]
        compared = self._compared(kind, spec)
        datetime64 = self.backend.features.datetime64
        extra = []
        if kind.signed.evidence:
            extra.append("hex(signed_value)")
        flags = kind.signed.publication and any(f.name == "flags" for f in spec.fields())
        if flags:
            extra.append(f"toString(has(flags, '{FLAG}'))")
        columns = ["source_topic", "toString(source_partition)", "toString(source_offset)",
                   "key_id", "hex(signature)", "hex(signed_digest)", *extra,
                   *(_expr(f, datetime64) for f in compared)]
        rows = self.backend.query(
            f"SELECT {', '.join(columns)} FROM {self.database}.{spec.name} FINAL "
            f"WHERE received_at >= toDateTime({int(since_s)}) "
            f"ORDER BY source_topic, source_partition, source_offset "
            f"LIMIT {int(limit)}").rows
        groups: dict[Coords, list[tuple[Any, ...]]] = {}
        for row in rows:
            groups.setdefault((str(row[0]), int(row[1]), int(row[2])), []).append(row)
        report = TableReport(spec.name)
        fetched = {} if kind.signed.evidence else self.fetch(
            [c for c, g in groups.items() if g[0][3]])
        skip = 6 + len(extra)
        for coords, group in groups.items():
            head = group[0]
            stored = [{f.name: r[skip + i] for i, f in enumerate(compared)} for r in group]
            evidence = bytes.fromhex(str(head[6])) if kind.signed.evidence and head[6] else None
            unauthorised = bool(flags) and str(head[6 + len(extra) - 1]) in ("1", "true")
            report.add(self._message(kind, spec, compared, coords, head, stored, evidence,
                                     unauthorised, fetched.get(coords)))
        return report

    def _message(self, kind: RecordType, spec: TableSpec, compared: list[Field],
                 coords: Coords, head: tuple[Any, ...], stored: list[dict[str, Any]],
                 evidence: bytes | None, unauthorised: bool,
                 fetched: tuple[bytes | None, bytes | None] | None) -> Finding:
        assert kind.signed is not None
        where = f"{coords[0]}[{coords[1]}]@{coords[2]}"
        key_field = kind.input.key
        record_id = f"{key_field} {stored[0].get(key_field)}"
        key_id = head[3]
        if not key_id:
            return Finding("UNSIGNED", where, record_id, "no signature stored (verification "
                           "was off when it was processed)")
        key = self.keys.get(str(key_id))
        if key is None:
            return Finding("UNKNOWN_KEY", where, record_id, f"key {key_id} is not registered "
                           "(forgotten by a tombstone, or never registered)")
        signature = bytes.fromhex(str(head[4] or ""))
        digest = bytes.fromhex(str(head[5] or ""))
        message_key = str(stored[0].get(key_field)).encode()
        from cryptography.exceptions import InvalidSignature

        try:
            key.check(signature, signed_message(kind.input.name, message_key, digest))
        except InvalidSignature:
            return Finding("BAD_SIGNATURE", where, record_id, f"the stored signature is not "
                           f"{key.owner()}'s over the stored digest")
        value = evidence
        if value is None:
            if fetched is None:
                return Finding("UNCHECKED", where, record_id, f"signed by {key.owner()}; the "
                               "input message is no longer in Kafka to compare the contents")
            value = fetched[1]
        if value is None or hashlib.sha256(value).digest() != digest:
            what = "the stored signed bytes" if evidence is not None else \
                "the input message at these coordinates"
            return Finding("TAMPERED", where, record_id, f"{what} are not what was signed")
        try:
            record, _ = self.decode(value, SerializationContext(coords[0], kind.input.record))
        except DecodeError as exc:
            return Finding("TAMPERED", where, record_id, f"the signed bytes do not decode: "
                           f"{exc}")
        problems = self._compare(kind, spec, compared, record, stored, unauthorised)
        if problems:
            return Finding("TAMPERED", where, record_id, "; ".join(problems[:5]))
        return Finding("VERIFIED", where, record_id, f"signed by {key.owner()}")

    def _compare(self, kind: RecordType, spec: TableSpec, compared: list[Field],
                 record: dict[str, Any], stored: list[dict[str, Any]],
                 unauthorised: bool) -> list[str]:
        assert kind.signed is not None
        publication = kind.signed.publication
        if spec.columnar and kind.flat_items:
            row_id = spec.table.row_id
            expected = {str(item.get(row_id)): {**record, **item}
                        for item in record[kind.flat_items]}
        else:
            row_id = ""
            expected = {"": record}
        problems = []
        for row in stored:
            rid = str(row.get(row_id)) if row_id else ""
            signed = expected.get(rid)
            if signed is None:
                problems.append(f"row {rid} is not in the signed message")
                continue
            for f in compared:
                want = signed.get(f.name)
                if f.name == publication and unauthorised and want == AUTHORISED:
                    want = INTERNAL    # the worker stored an unauthorised mark as INTERNAL
                if not _same(f.kind, row.get(f.name), want):
                    shown = f" of row {rid}" if rid else ""
                    problems.append(f"{f.name}{shown}: stored {str(row.get(f.name))[:60]}, "
                                    f"signed {str(want)[:60]}")
        return problems


def kafka_fetch(settings: Any, timeout: float = 30.0) -> Fetch:
    """Reads input messages again by their coordinates (None when no longer retained)."""
    def fetch(coords: list[Coords]) -> dict[Coords, tuple[bytes | None, bytes | None]]:
        from confluent_kafka import TopicPartition

        from streams import clients

        out: dict[Coords, tuple[bytes | None, bytes | None]] = {}
        if not coords:
            return out
        by_partition: dict[tuple[str, int], list[int]] = {}
        for topic, partition, offset in coords:
            by_partition.setdefault((topic, partition), []).append(offset)
        consumer = clients.consumer(settings, f"{settings.worker_id}-verify")
        try:
            for (topic, partition), offsets in by_partition.items():
                wanted = set(offsets)
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                           timeout=timeout)
                start = max(min(wanted), low)
                last = min(max(wanted), high - 1)
                if start > last:
                    continue
                consumer.assign([TopicPartition(topic, partition, start)])
                position = start
                idle = 0
                while position <= last and idle < 20:
                    batch = consumer.consume(1000, 0.5)
                    idle = 0 if batch else idle + 1
                    for msg in batch:
                        if msg.error():
                            continue
                        position = msg.offset() + 1
                        if msg.offset() in wanted:
                            out[(topic, partition, msg.offset())] = (msg.key(), msg.value())
        finally:
            consumer.close()
        return out
    return fetch
