"""Who may say what: principals, their roles, and what each role may do.

- :mod:`.declaration` reads a deployment's declaration (deploy/access/local.toml:
  principals -> roles);
- :mod:`.kafka_acls` derives every role's Kafka ACLs from the topic catalog and applies them
  through the Admin API (``ebi access apply``);
- :mod:`.topics` creates the pipeline's topics as the admin (the worker and the sink may not).

Data access in ClickHouse (analysts' row and column restrictions) is a separate concern and
will live here too (``clickhouse_roles``), driven by the same declaration.
"""
