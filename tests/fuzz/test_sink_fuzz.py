"""The sink's path on any clean record the schemas allow: decode -> envelope -> columns ->
the backends' own conversions (Arrow for chdb, clickhouse-driver's column writers for a
server). Nothing raises but what the sink turns into a dead letter (a DecodeError inside the
decoder, a PermanentError from the backend's conversion, sorted by ``classify``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.catalog import default_catalog
from schemas.codec import AvroSerializer, SerializationContext
from schemas.registry import InMemoryRegistry
from sinks.clickhouse.backend import Features, PermanentError, classify
from sinks.clickhouse.embedded import _column_type
from sinks.clickhouse.encoding import EnvelopeDecoder, TableEncoder
from sinks.clickhouse.schema import table_specs
from tests.fuzz.strategies import mutations, records

CATALOG = default_catalog()
SPECS = table_specs(CATALOG)
ROUTES = CATALOG.routes()
OLD, MODERN = Features.for_version((18, 16, 1)), Features.for_version((26, 1))


def _server_conversion(columns: dict[str, list[Any]], types: dict[str, str]) -> None:
    """What clickhouse-driver does with the columns before they go on the wire."""
    from clickhouse_driver.bufferedwriter import BufferedSocketWriter
    from clickhouse_driver.columns.service import write_column
    from clickhouse_driver.context import Context

    class Sink:
        def sendall(self, data: bytes) -> None:
            pass

    class Server:
        timezone = "UTC"
        revision = 54413
        version_major, version_minor, version_patch = 18, 16, 1

        def get_timezone(self) -> str:
            return "UTC"

    ctx = Context()
    ctx.settings = {}
    ctx.client_settings = {"strings_as_bytes": False, "strings_encoding": "utf-8",
                           "use_numpy": False, "input_format_null_as_default": False,
                           "namedtuple_as_json": False}
    ctx.server_info = Server()
    out = BufferedSocketWriter(Sink(), 1 << 16)
    for name, values in columns.items():
        write_column(ctx, name, types[name], [list(v) if isinstance(v, list) else v
                                             for v in values], out)


def _arrow_conversion(columns: dict[str, list[Any]], types: dict[str, str]) -> None:
    import pyarrow as pa

    pa.table({n: pa.array(v, _column_type(types[n], v)) for n, v in columns.items()})


@pytest.mark.parametrize("topic", list(ROUTES))
@given(data=st.data())
def test_any_clean_record_is_stored_or_dead_lettered(topic: str, data: st.DataObject) -> None:
    registry = InMemoryRegistry()
    record = ROUTES[topic][0].record
    obj = data.draw(records(record))
    framed = AvroSerializer(registry, millis=True)(obj, SerializationContext(f"p.{topic}",
                                                                             record))
    if data.draw(st.booleans()):
        framed = data.draw(mutations(framed))
    decoder = EnvelopeDecoder(CATALOG, registry, lambda name: f"p.{name}")
    envelope, rows = decoder(framed, None, f"p.{topic}", 0, 1)
    assert rows >= 0
    for features in (OLD, MODERN):
        encoder = TableEncoder(SPECS[envelope.table], features)
        columns = encoder.encode([envelope], version=1, now_s=1)
        for convert in ((_server_conversion, _arrow_conversion) if features is OLD
                        else (_arrow_conversion,)):
            try:
                convert(columns, encoder.types)
            except Exception as exc:
                assert isinstance(classify(exc, "insert"), PermanentError), exc
