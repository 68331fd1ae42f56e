"""Dead letters to replay: selected from ClickHouse with their original bytes.

A dead letter keeps what is needed to send its record again once the cause is fixed (a
sensor registered late, a registry restored, a bug fixed): the source topic and key, and
the bytes — the whole input message (Confluent-framed Avro) for a message rejected as a
whole, or for one rejected reading the reading alone as a one-reading envelope in JSON.
:func:`select` picks them by reason code, input topic and time range, one per distinct
payload of an input message (the readings alone left out when the whole message is there
too), oldest first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sinks.clickhouse.backend import Backend


@dataclass(frozen=True)
class DeadLetterRow:
    source_topic: str        # full topic name
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes
    error_code: str
    record_index: int | None
    failed_at: int           # epoch seconds
    key_id: str = ""         # the sender's signature of the message, when it was verified
    signature: bytes = b""

    @property
    def coordinates(self) -> str:
        return f"{self.source_topic}/{self.source_partition}/{self.source_offset}"

    @property
    def framed(self) -> bool:
        """The bytes are a Confluent-framed message (not a reading alone)."""
        return self.value[:1] == b"\x00"


def _q(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _time(value: dt.datetime) -> str:
    return f"toDateTime('{value.astimezone(dt.UTC).strftime('%Y-%m-%d %H:%M:%S')}', 'UTC')"


def select(backend: Backend, topics: list[str], reasons: list[str] | None = None,
           since: dt.datetime | None = None, until: dt.datetime | None = None,
           limit: int = 100_000) -> list[DeadLetterRow]:
    """Dead letters of the given input topics (full names) written by the worker (stages
    verify, decode and validate: what the sink rejected is not an input), by reason and
    time."""
    where = [f"source_topic IN ({', '.join(_q(t) for t in topics)})",
             "stage IN ('verify', 'decode', 'validate')", "length(value) > 0"]
    if reasons:
        where.append(f"error_code IN ({', '.join(_q(r) for r in reasons)})")
    if since is not None:
        where.append(f"failed_at >= {_time(since)}")
    if until is not None:
        where.append(f"failed_at < {_time(until)}")
    rows = backend.query(f"""
SELECT source_topic, source_partition, source_offset, hex(ifNull(key, '')), hex(value),
       any(error_code), min(record_index), toUInt32(toUnixTimestamp(min(failed_at))),
       any(ifNull(key_id, '')), hex(any(ifNull(signature, '')))
FROM dead_letters WHERE {' AND '.join(where)}
GROUP BY source_topic, source_partition, source_offset, key, value
ORDER BY min(failed_at), source_topic, source_partition, source_offset
LIMIT {int(limit)}""").rows
    found = [DeadLetterRow(str(t), int(p), int(o), bytes.fromhex(str(k)) or None,
                           bytes.fromhex(str(v)), str(code),
                           None if index is None else int(index), int(at), str(key_id),
                           bytes.fromhex(str(signature)))
             for t, p, o, k, v, code, index, at, key_id, signature in rows]
    return covered_left_out(found)


def covered_left_out(rows: list[DeadLetterRow]) -> list[DeadLetterRow]:
    """Without the readings alone of an input message whose whole bytes are also among
    ``rows`` (a message with many rejected readings has the first of them alone and then
    one dead letter with the whole message): the whole message carries them, and sending
    them twice would leave a reading twice in a replay."""
    whole = {(r.source_topic, r.source_partition, r.source_offset) for r in rows if r.framed}
    return [r for r in rows if r.framed or
            (r.source_topic, r.source_partition, r.source_offset) not in whole]
