"""Tables on a ClickHouse cluster: the single-server DDL, replicated and distributed.

Without a cluster (``Layout()``) every statement is the single-server one, unchanged. With
one (``Layout("ebi")``), derived from that same statement (same columns, keys, partitions:
the same Avro-derived schema):

* ``<db>.<t>_local``: ``Replicated<engine>('/clickhouse/tables/{shard}/<db>/<t>',
  '{replica}', <engine args>)`` on every server, created ON CLUSTER; ``{shard}`` and
  ``{replica}`` are the servers' macros (the local stack, compose and the Altinity operator
  set them). Replicas of a shard share the ZooKeeper (or ClickHouse Keeper) path: inserted
  blocks are replicated, and an identical block inserted again (a retried batch, on any
  replica) is recognised by its hash and skipped;
* ``<db>.<t>``: ``Distributed(<cluster>, <db>, <t>_local, cityHash64(<shard_by>))``, the
  table the sink inserts into and everyone queries (views, reconcile, reports keep their
  names). Rows that replace each other share their shard key, so ``FINAL`` and ``LIMIT 1
  BY`` stay right with several shards;
* materialized views read ``<t>_local`` and write ``<rollup>_local`` on each server (a
  block is aggregated where it is inserted, the rollup's replicas get the result);
* views are plain views over the Distributed tables, ON CLUSTER;
* ``schema_migrations`` is one table replicated over every server of the cluster
  (``/clickhouse/tables/all/<db>/schema_migrations``), so any server knows what was applied.

The statements work on ClickHouse 18.16 (with ZooKeeper) and on current servers (with
ZooKeeper or ClickHouse Keeper); 18.16 refuses ``ALTER ... ON CLUSTER`` for a table that is
not replicated on a cluster with ``internal_replication``, so a column added to a
Distributed table is added on each server in turn (:mod:`sinks.clickhouse.migrations`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

LOCAL_SUFFIX = "_local"
_ENGINE = re.compile(r"ENGINE = (\w*MergeTree)\(([^)]*)\)")


@dataclass(frozen=True)
class Layout:
    """How tables are laid out: on one server (``cluster`` empty) or replicated and
    distributed across ``cluster`` (see the module docstring)."""

    cluster: str = ""

    @property
    def replicated(self) -> bool:
        return bool(self.cluster)

    @property
    def on_cluster(self) -> str:
        """`` ON CLUSTER <name>`` for DDL, or nothing."""
        return f" ON CLUSTER {self.cluster}" if self.cluster else ""

    def local(self, name: str) -> str:
        """The name of the table that stores ``name``'s rows on each server."""
        return f"{name}{LOCAL_SUFFIX}" if self.cluster else name

    def tables(self, create: str, db: str, name: str, shard_by: Sequence[str],
               distributed: bool = True, path: str = "") -> tuple[str, ...]:
        """The statements for a table whose single-server DDL is ``create``
        (``CREATE TABLE IF NOT EXISTS <db>.<name> ... ENGINE = <X>MergeTree(...) ...``)."""
        if not self.cluster:
            return (create,)
        head = f"CREATE TABLE IF NOT EXISTS {db}.{name} "
        if not create.startswith(head):
            raise ValueError(f"not a CREATE TABLE of {db}.{name}: {create[:80]!r}")
        zk_path = path or f"/clickhouse/tables/{{shard}}/{db}/{name}"
        local_name = self.local(name) if distributed else name
        body = create[len(head):]
        match = _ENGINE.search(body)
        if match is None:
            raise ValueError(f"{db}.{name}: no MergeTree engine in {create[:120]!r}")
        args = ", ".join(a for a in (f"'{zk_path}'", "'{replica}'", match.group(2).strip()) if a)
        body = body[:match.start()] + f"ENGINE = Replicated{match.group(1)}({args})" + \
            body[match.end():]
        local = f"CREATE TABLE IF NOT EXISTS {db}.{local_name}{self.on_cluster} {body}"
        if not distributed:
            return (local,)
        return (local, self.distributed(db, name, shard_by))

    def distributed(self, db: str, name: str, shard_by: Sequence[str]) -> str:
        key = f"cityHash64({', '.join(shard_by)})" if shard_by else "rand()"
        return (f"CREATE TABLE IF NOT EXISTS {db}.{name}{self.on_cluster} AS "
                f"{db}.{self.local(name)} ENGINE = Distributed('{self.cluster}', '{db}', "
                f"'{self.local(name)}', {key})")

    def materialized_view(self, db: str, name: str, target: str, source: str,
                          select: str) -> str:
        """``select`` (over ``<db>.<source>``) into ``target``: on each server, from the local
        table into the local rollup."""
        if self.cluster:
            select = select.replace(f"{db}.{source}", f"{db}.{self.local(source)}")
        return (f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{name}{self.on_cluster} TO "
                f"{db}.{self.local(target)} AS {select}")

    def shard_key(self, order_by: Sequence[str], shard_by: Sequence[str] = ()) -> tuple[
            str, ...]:
        return tuple(shard_by) or tuple(order_by[:1])


def hosts_sql(cluster: str) -> str:
    """The servers of ``cluster`` as the connected server knows them."""
    name = cluster.replace("'", "")
    return (f"SELECT DISTINCT host_name, port FROM system.clusters WHERE cluster = '{name}' "
            "ORDER BY host_name, port")
