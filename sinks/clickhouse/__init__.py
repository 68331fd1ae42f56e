"""ClickHouse sink: tables generated from the Avro schemas, columnar inserts, replay-safe."""
