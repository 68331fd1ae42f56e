"""Records every stage builds the same way: source coordinates and dead letters.

:class:`Source` says where an input message was read (and when it reached Kafka); a dead
letter (``DeadLetter.avsc``) carries it with the original bytes, a stable reason code and a
message that says what, where and why. The worker and the sink build dead letters with
:func:`dead_letter` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]
# Source coordinates packed into one int (partition in the high bits) for compact state.
PARTITION_SHIFT = 1 << 40
INT32 = 2**31


# Kafka timestamp types of a message (Source.timestamp_type): the broker's receipt time
# (the topic has message.timestamp.type=LogAppendTime) or the producer's claim.
LOG_APPEND_TIME = "LogAppendTime"
CREATE_TIME = "CreateTime"


def kafka_timestamp_type(code: int | None, timestamp_ms: int) -> str:
    """The type of a consumed message's timestamp from the Kafka client's code (aiokafka
    and faust: 0 CreateTime, 1 LogAppendTime); "" when there is no timestamp."""
    if not timestamp_ms or code is None:
        return ""
    return LOG_APPEND_TIME if code == 1 else CREATE_TIME


@dataclass(frozen=True, slots=True)
class Source:
    """Where an input message was read, and when it arrived (Kafka timestamp, ms, and its
    type: LOG_APPEND_TIME, CREATE_TIME, or "" when not known)."""

    topic: str
    partition: int
    offset: int
    schema_id: int | None = None
    timestamp_ms: int = 0
    timestamp_type: str = ""

    @property
    def packed(self) -> int:
        return self.partition * PARTITION_SHIFT + self.offset

    def record(self) -> Record:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset,
                "schema_id": self.schema_id}

    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    def with_schema(self, schema_id: int | None) -> Source:
        if schema_id is not None and not -INT32 <= schema_id < INT32:
            schema_id = None
        return Source(self.topic, self.partition, self.offset, schema_id, self.timestamp_ms,
                      self.timestamp_type)


def unpack(packed: int) -> tuple[int, int]:
    """(partition, offset) from :attr:`Source.packed`."""
    return packed // PARTITION_SHIFT, packed % PARTITION_SHIFT


def dead_letter(source: Source, key: bytes | None, value: bytes, error_code: str,
                message: str, stage: str, now_ms: int, *, record_index: int | None = None,
                record_id: str | None = None, tag: str | None = None) -> Record:
    """A DeadLetter record. ``value`` is the original message (or, for one rejected part of
    a message, only that part); ``stage`` is decode, validate or sink."""
    return {
        "source": source.record(), "key": key, "value": value, "error_code": error_code,
        "error_message": message, "stage": stage, "record_index": record_index,
        "record_id": record_id, "failed_at": now_ms, "tag": tag,
        "key_id": None, "signature": None,   # the sender's signature, when verified
    }
