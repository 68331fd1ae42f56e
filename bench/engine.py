"""ClickHouse's own Kafka table engine as a second baseline, where the server supports it.

The raw telemetry is Confluent-framed Avro, which ClickHouse reads with the
``AvroConfluent`` format (ClickHouse 20.x and later). On an older server creating the table
fails; the error is recorded instead of a figure.
"""

from __future__ import annotations

from typing import Any

from bench.pipeline import RowCounter
from sinks.clickhouse.config import login_url
from streams.settings import Settings

DDL = """CREATE TABLE {db}.kafka_probe (gateway_id String, enterprise_id String,
    sent_at Int64, sequence Int64)
ENGINE = Kafka('{bootstrap}', '{topic}', 'bench-kafka-engine', 'AvroConfluent')"""


def kafka_engine(settings: Settings, topic_prefix: str = "b100.") -> str | dict[str, Any]:
    counter = RowCounter(login_url(settings), "kafka_probe")
    try:
        version = counter.execute("SELECT version()")[0][0]
        counter.execute(f"CREATE DATABASE IF NOT EXISTS {counter.database}")
        # (20.x+ would also need SETTINGS format_avro_schema_registry_url = '<registry>')
        try:
            counter.execute(DDL.format(db=counter.database, bootstrap=settings.bootstrap,
                                       topic=f"{topic_prefix}telemetry"))
        except Exception as exc:
            return f"unavailable: ClickHouse {version}: {_first(exc)}"
        try:
            counter.client.execute(f"SELECT count() FROM {counter.database}.kafka_probe",
                                   settings={"max_execution_time": 5})
        except Exception as exc:
            return f"unavailable: ClickHouse {version}: {_first(exc)}"
        finally:
            counter.execute(f"DROP TABLE IF EXISTS {counter.database}.kafka_probe")
        return (f"created on ClickHouse {version} but not measured: the envelope's readings "
                "array needs a materialized view with arrayJoin (not written yet)")
    finally:
        counter.close()


def _first(exc: BaseException) -> str:
    return " ".join(str(exc).split("Stack trace")[0].split())[:300]
