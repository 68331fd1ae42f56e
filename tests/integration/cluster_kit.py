"""Helpers for the cluster fault tests (no tests here): the local cluster (3 KRaft brokers,
ZooKeeper, 2 ClickHouse 18.16 replicas, the registry), started once per session, and one
pipeline per test (its own topics, groups and database) whose worker(s), sink(s) and
simulator run as real processes with their own principals."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sinks.clickhouse.config import cluster_url, login_url
from streams.settings import Settings
from streams.stack.process import StackError, free_port, port_free
from tests.integration.conftest import as_principal, security_env
from tests.integration.processes import Process

BROKERS = 3
REPLICAS = 2
PARTITIONS = 12
STEP = 10


def free_block(roles: int, copies: int, step: int = STEP) -> int:
    """A base port such that base + role + i * step is free for every role and copy."""
    for _ in range(200):
        base = free_port()
        ports = [base + r + i * step for i in range(copies) for r in range(roles)]
        if max(ports) < 65000 and all(port_free(p) for p in ports):
            return base
    raise StackError("no free block of loopback ports for the cluster")


def cluster_settings(data_dir: Path, run_id: str) -> Settings:
    kafka = free_block(3, BROKERS)
    clickhouse = free_block(4, REPLICAS)
    return Settings(
        data_dir=data_dir, kafka_port=kafka, kafka_broker_port=kafka + 1,
        kafka_controller_port=kafka + 2, kafka_port_step=STEP, kafka_brokers=BROKERS,
        topic_replication_factor=3, topic_min_insync_replicas=2, topic_partitions=PARTITIONS,
        registry_port=free_port(), clickhouse_tcp_port=clickhouse,
        clickhouse_http_port=clickhouse + 1, clickhouse_interserver_port=clickhouse + 2,
        zookeeper_port=clickhouse + 3, clickhouse_port_step=STEP,
        clickhouse_replicas=REPLICAS,
        clickhouse_url=f"clickhouse://127.0.0.1:{clickhouse}/cl_{run_id}",
        topic_prefix=f"cl{run_id}.", worker_id=f"ebi-cl-{run_id}",
        sink_group=f"ebi-cl-sink-{run_id}")


@dataclass
class Cluster:
    """The session's cluster and its admin settings."""

    settings: Settings
    kafka: Any
    registry: Any
    zookeeper: Any
    clickhouse: Any

    def up(self) -> None:
        for service in (self.kafka, self.registry, self.zookeeper, self.clickhouse):
            service.up()
        from streams.stack.kafka import kafka_ready

        if not kafka_ready(self.admin):
            raise StackError("the Kafka cluster does not answer the admin")

    def down(self) -> None:
        for service in (self.clickhouse, self.zookeeper, self.registry, self.kafka):
            try:
                service.down()
            except Exception as exc:  # stop the rest anyway
                print(f"stopping {service.name} failed: {exc}")

    @property
    def admin(self) -> Settings:
        s = self.settings.replace(kafka_bootstrap=self.settings.bootstrap,
                                  schema_registry_url=self.settings.registry_url)
        return as_principal(s, "admin")

    def replica_url(self, index: int, database: str) -> str:
        """ebi_admin's URL of one replica only (no fail-over, no cluster)."""
        port = self.settings.clickhouse_tcp_port + index * self.settings.clickhouse_port_step
        one = self.settings.replace(clickhouse_url=f"clickhouse://127.0.0.1:{port}/{database}",
                                    clickhouse_replicas=1, clickhouse_cluster="",
                                    clickhouse_tcp_port=port, identity="admin")
        return login_url(one)


def start_cluster(data_dir: Path) -> Iterator[Cluster]:
    from streams.stack.clickhouse import ClickHouseReplicas
    from streams.stack.kafka import Kafka
    from streams.stack.registry import Registry
    from streams.stack.zookeeper import ZooKeeper

    settings = cluster_settings(data_dir, uuid.uuid4().hex[:8])
    cluster = Cluster(settings, Kafka(settings), Registry(settings), ZooKeeper(settings),
                      ClickHouseReplicas(settings))
    try:
        cluster.up()
    except StackError as exc:
        cluster.down()
        pytest.fail(f"the cluster could not start: {exc}", pytrace=False)
    from streams.signing.devkeys import ensure

    ensure(cluster.admin)   # the dev signing keyring: the simulator signs, the workers verify
    try:
        yield cluster
    finally:
        cluster.down()


# -- one pipeline per test ----------------------------------------------------------------
CHILD_FIELDS = ("data_dir", "topic_prefix", "topic_partitions", "topic_replication_factor",
                "topic_min_insync_replicas", "worker_id", "sink_group", "log_level",
                "kafka_security", "sink_batch_seconds")


def child_env(settings: Settings, principal: str, **extra: str) -> dict[str, str]:
    """The environment of an ebi process of this pipeline running as ``principal``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBI_")}
    env.update({"EBI_KAFKA_BOOTSTRAP": settings.bootstrap,
                "EBI_SCHEMA_REGISTRY_URL": settings.registry_url,
                "EBI_CLICKHOUSE_URL": cluster_url(settings), "EBI_METRICS_PORT": "0"})
    for name in CHILD_FIELDS:
        env[f"EBI_{name.upper()}"] = str(getattr(settings, name))
    env.update(security_env(as_principal(settings, principal)))
    env["EBI_CREATE_TOPICS"] = "0"      # the admin created them (provision)
    env.update(extra)
    return env


@dataclass
class Pipeline:
    """One test's pipeline on the cluster: topics (RF 3, min ISR 2, 12 partitions), ACLs,
    the ClickHouse database, and its processes."""

    cluster: Cluster
    name: str
    settings: Settings = field(init=False)
    log_dir: Path = field(init=False)
    processes: list[Process] = field(default_factory=list)

    def __post_init__(self) -> None:
        tag = f"{self.name}{uuid.uuid4().hex[:6]}"
        base = self.cluster.admin
        port = base.clickhouse_tcp_port
        self.settings = base.replace(
            topic_prefix=f"{tag}.", worker_id=f"ebi-{tag}", sink_group=f"ebi-sink-{tag}",
            clickhouse_url=f"clickhouse://127.0.0.1:{port}/{tag}", sink_batch_seconds=0.5,
            log_level="INFO")
        self.log_dir = base.data_dir / "pipelines" / tag

    def prepare(self) -> None:
        """Topics and ACLs as the admin, then the schemas and the tables."""
        from streams.access.provision import provision

        provision(self.settings)
        for step in (["schemas", "register"], ["migrate", "--quiet"]):
            done = self.ebi(*step, timeout=600)
            assert done.returncode == 0, f"ebi {' '.join(step)}: {done.stdout}{done.stderr}"
        self._sink_may_write()

    def _sink_may_write(self) -> None:
        """ebi_sink writes the stack's one database; this pipeline has its own: the users.xml
        of every replica names it (the servers reload it) before any sink starts."""
        from clickhouse_driver import Client

        from streams.credentials import clickhouse_login
        from streams.stack.clickhouse import ClickHouseServer

        database = self.settings.clickhouse_url.rsplit("/", 1)[1]
        base = self.cluster.settings
        servers = [ClickHouseServer(base, i) for i in range(base.clickhouse_replicas)]
        for server in servers:
            server.write_users(None, database)
        login = clickhouse_login(base.replace(identity="sink"))
        assert login is not None
        deadline = time.monotonic() + 60
        for server in servers:
            while True:
                client = Client("127.0.0.1", port=server.tcp_port, user=login.username,
                                password=login.password.reveal(), database=database)
                try:
                    client.execute("SELECT 1")
                    break
                except Exception:
                    assert time.monotonic() < deadline, f"ebi_sink may not use {database}"
                    time.sleep(0.5)
                finally:
                    client.disconnect()

    def ebi(self, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "streams", *args],
                              env=child_env(self.settings, "admin"), capture_output=True,
                              text=True, timeout=timeout)

    def worker(self, instance: str) -> Process:
        env = child_env(self.settings, "worker", EBI_WORKER_INSTANCE=instance)
        return self._add(Process(f"worker-{instance}", ["worker"], env, self.log_dir))

    def sink(self, instance: str) -> Process:
        """A sink; it runs its start-up migration, which on the migrated cluster issues no
        DDL (ON CLUSTER would wait for a replica that is down)."""
        env = child_env(self.settings, "sink")
        return self._add(Process(f"sink-{instance}", ["sink"], env, self.log_dir))

    def simulator(self, seconds: float, rate: float, seed: int) -> Process:
        truth = self.log_dir / "truth.jsonl"
        argv = ["simulate", "--clean", "--rate", str(rate), "--duration", str(seconds),
                "--seed", str(seed), "--truth", str(truth), "--enterprises", "12",
                "--incidents-per-min", "20", "--hazards-per-min", "20"]
        return self._add(Process("simulator", argv, child_env(self.settings, "simulator"),
                                 self.log_dir))

    def _add(self, process: Process) -> Process:
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    # -- observations -------------------------------------------------------------------
    def lags(self) -> tuple[int, int]:
        """(messages the worker group has not committed, messages the sink group has not)."""
        from schemas.catalog import default_catalog
        from streams.kafkaio import behind

        catalog = default_catalog()
        return (behind(self.settings, self.settings.worker_id,
                       [k.input.name for k in catalog.processed]),
                behind(self.settings, self.settings.sink_group, list(catalog.routes())))

    def drain(self, timeout: float, alive: Callable[[], None] | None = None) -> None:
        """Wait until the worker and the sink have committed every message."""
        deadline = time.monotonic() + timeout
        last: tuple[int, int] = (-1, -1)
        while time.monotonic() < deadline:
            if alive is not None:
                alive()
            try:
                last = self.lags()
            except Exception:  # a leader moving: ask again
                last = (-1, -1)
            if last == (0, 0):
                return
            time.sleep(3)
        raise AssertionError(f"not drained within {timeout:.0f} s: worker and sink behind by "
                             f"{last}; logs in {self.log_dir}")

    def simulated_readings(self, simulator: Process) -> int:
        match = re.search(r"simulated (\d+) readings", simulator.log.read_text())
        assert match, f"the simulator said nothing about its readings: {simulator.tail()}"
        return int(match.group(1))

    def query(self, url: str, sql: str) -> list[tuple[Any, ...]]:
        from sinks.clickhouse import connect

        backend = connect(url)
        try:
            return backend.query(sql).rows
        finally:
            backend.close()

    def duplicates(self, url: str) -> dict[str, tuple[int, int]]:
        """View -> (rows, distinct keys) of the analyst views whose rows have one key each."""
        keys = {"readings": "reading_id", "incident_reports": "report_id",
                "hazard_versions": "concat(hazard_id, '/', toString(version))",
                "alerts": "alert_id", "heartbeats": "concat(gateway_id, '/', toString(sequence))",
                "ledger_v": "concat(source_topic, '/', toString(source_partition), '/', "
                            "toString(source_offset))"}
        out = {}
        for view, key in keys.items():
            ((rows, distinct),) = self.query(url, f"SELECT count(), uniqExact({key}) FROM {view}")
            out[view] = (int(rows), int(distinct))
        return out

    def check_nothing_lost_nothing_twice(self, readings: int) -> str:
        """``ebi reconcile`` clean with nothing in flight; every simulated reading in the
        readings view once, on every replica."""
        rec = self.ebi("reconcile")
        assert rec.returncode == 0, rec.stdout + rec.stderr
        assert "in flight" not in rec.stdout.split("\n\n")[-1], rec.stdout
        database = self.settings.clickhouse_url.rsplit("/", 1)[1]
        for index in range(REPLICAS):
            url = self.cluster.replica_url(index, database)
            deadline = time.monotonic() + 120    # a restarted replica fetches what it missed
            while True:
                seen = self.duplicates(url)
                if seen["readings"][0] == readings or time.monotonic() > deadline:
                    break
                time.sleep(2)
            assert seen["readings"] == (readings, readings), (index, seen)
            dups = {view: counts for view, counts in seen.items() if counts[0] != counts[1]}
            assert not dups, f"replica {index + 1}: duplicates visible in {dups}"
        return rec.stdout


@contextmanager
def running(pipeline: Pipeline) -> Iterator[Pipeline]:
    try:
        yield pipeline
    finally:
        pipeline.stop_all()


def under_replicated(settings: Settings, topics: list[str]) -> int:
    """Partitions of ``topics`` (full names) with fewer in-sync replicas than replicas."""
    from streams import clients

    meta = clients.admin(settings).list_topics(timeout=10)
    return sum(1 for name in topics if name in meta.topics
               for p in meta.topics[name].partitions.values() if len(p.isrs) < len(p.replicas))


def group_members(settings: Settings, group: str) -> dict[str, int]:
    """Member id -> the number of partitions assigned to it in ``group``."""
    from streams import clients

    admin = clients.admin(settings)
    (future,) = admin.describe_consumer_groups([group], request_timeout=10).values()
    description = future.result()
    return {m.member_id: len(m.assignment.topic_partitions) for m in description.members}
