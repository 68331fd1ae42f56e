"""The codec on anything: a decode either gives a record or raises DecodeError with a code;
nothing else escapes, whatever the bytes or the registry says."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.catalog import default_catalog
from schemas.codec import AvroDeserializer, AvroSerializer, DecodeError, SerializationContext
from schemas.registry import InMemoryRegistry
from tests.fuzz.strategies import mutations, records

CATALOG = default_catalog()
INPUTS = [kind.input.record for kind in CATALOG.types]


def _decode(registry: Any, data: bytes | None, record: str) -> None:
    for millis in (True, False):
        try:
            got, _ = AvroDeserializer(registry, millis=millis)(
                data, SerializationContext("t", record))
        except DecodeError as exc:
            assert exc.code and exc.message
        else:
            assert isinstance(got, dict)


@pytest.mark.parametrize("record", INPUTS)
@given(data=st.data())
def test_mutated_messages_decode_or_fail_with_a_code(record: str, data: st.DataObject) -> None:
    registry = InMemoryRegistry()
    obj = data.draw(records(record))
    framed = AvroSerializer(registry, millis=True)(obj, SerializationContext("t", record))
    _decode(registry, data.draw(mutations(framed)), record)


@given(st.binary(max_size=300))
def test_random_bytes_decode_or_fail_with_a_code(data: bytes) -> None:
    _decode(InMemoryRegistry(), data, "TelemetryBatch")


class HostileRegistry:
    """A registry that answers with anything: non-record schemas, other schema types,
    errors."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def schema_for_id(self, schema_id: int) -> Any:
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer

    def id_for(self, subject: str, schema_text: str) -> int:
        return 1


@pytest.mark.parametrize("answer", [
    "string", ["null", "string"], {"type": "enum", "name": "E", "symbols": ["A"]},
    {"type": "record", "name": "Other", "fields": []}, None, 42,
    ValueError("it is a PROTOBUF schema"), RuntimeError("HTTP 500"), TimeoutError(),
    KeyError(7)])
def test_whatever_the_registry_answers_decoding_fails_with_a_code(answer: Any) -> None:
    data = b"\x00\x00\x00\x00\x07" + b"\x02" * 20
    with pytest.raises(DecodeError) as info:
        AvroDeserializer(HostileRegistry(answer), millis=True)(
            data, SerializationContext("t", "TelemetryBatch"))
    assert info.value.code in {"WRONG_SCHEMA", "REGISTRY_UNAVAILABLE", "UNKNOWN_SCHEMA_ID"}
