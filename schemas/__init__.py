"""Avro schemas (``avro/*.avsc``), the topic catalog, and the Confluent-framed codec."""
