"""Who may say what: principals, their roles, and what each role may do.

- :mod:`.declaration` reads a deployment's declaration (deploy/access/local.toml:
  principals -> roles);
- :mod:`.kafka_acls` derives every role's Kafka ACLs from the topic catalog and applies them
  through the Admin API (``ebi access apply``);
- :mod:`.topics` creates the pipeline's topics as the admin (the worker and the sink may not).

- :mod:`.clickhouse_roles` reads the declaration's ``[clickhouse.users]`` (admin, sink,
  analysts by region, operators, auditors) and provisions their data access in ClickHouse:
  scope databases and users.xml on servers without access control, users, roles, row
  policies, column grants and masked views on servers with it;
- :mod:`.analysts`: who ``ebi query`` and ``ebi report`` run as (the calling reader, in the
  one database it may open; never the sink).
"""
