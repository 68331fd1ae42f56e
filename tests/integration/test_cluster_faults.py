"""Past one machine, with faults: a 3-broker KRaft cluster (SASL_SSL/SCRAM, StandardAuthorizer,
replication 3, min.insync.replicas 2, 12 partitions), two ClickHouse 18.16 replicas
coordinated by ZooKeeper 3.8 (ReplicatedReplacingMergeTree under Distributed tables, made by
``ebi migrate``), the registry; started once for this module's tests and shared (the
single-broker fixtures of conftest.py are not used here).

Each test runs its own pipeline (topics, groups, database) with the simulator, the
worker(s) and the sink(s) as real processes under their own principals, breaks one part
mid-stream, and then requires: ``ebi reconcile`` clean with nothing in flight, every
simulated reading in the readings view exactly once on both replicas, no duplicate in the
analyst views.

- a broker SIGKILLed and restarted: the worker and the sink ride through the leader changes
  (no restart, no exit);
- a ClickHouse replica (the one the sink writes to) stopped and restarted: the sink fails
  over to the other replica and retries identical blocks, which the replicas deduplicate;
- 3 workers and 2 sinks, one worker SIGKILLed: its partitions move to the other two.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.catalog import default_catalog
from tests.integration.cluster_kit import (
    PARTITIONS,
    Cluster,
    Pipeline,
    Process,
    group_members,
    running,
    start_cluster,
    under_replicated,
)
from tests.integration.conftest import leaked_passwords

pytestmark = pytest.mark.integration
RATE = 400.0        # readings/s: eight processes and six servers share two cores here
SECONDS = 70.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Started once (the fault tests are all here) and stopped after them, so the rest of
    the session does not share two cores with three idle brokers."""
    data_dir = Path(tmp_path_factory.mktemp("cluster"))
    yield from start_cluster(data_dir)
    leaked = leaked_passwords(data_dir)
    assert not leaked, f"generated passwords appear in logs: {leaked}"


def _all_topics(pipeline: Pipeline) -> list[str]:
    from streams.worker.app import changelog_topic

    s = pipeline.settings
    catalog = default_catalog()
    return [s.topic(t.name) for t in catalog.all_topics()] + [
        changelog_topic(s, table) for table in catalog.state_groups()]


def _faust_topics_replicated(pipeline: Pipeline) -> None:
    """The topics faust creates itself (its assignor's) get the settings' replication."""
    from streams import clients

    meta = clients.admin(pipeline.settings).list_topics(timeout=10)
    own = [name for name in meta.topics if name.startswith(f"{pipeline.settings.worker_id}-")
           and "__assignor" in name]
    assert own, f"faust created no topic of its own: {sorted(meta.topics)}"
    for name in own:
        assert {len(p.replicas) for p in meta.topics[name].partitions.values()} == {3}, name


def _alive(*processes: Process) -> None:
    for process in processes:
        assert process.running(), f"{process.name} exited: {process.exits}\n{process.tail()}"


def _wait_for_traffic(pipeline: Pipeline, at_least: int, timeout: float = 240.0) -> None:
    """Until the readings table has rows (the pipeline is flowing end to end)."""
    deadline = time.monotonic() + timeout
    database = pipeline.settings.clickhouse_url.rsplit("/", 1)[1]
    url = pipeline.cluster.replica_url(0, database)
    while time.monotonic() < deadline:
        try:
            if int(pipeline.query(url, "SELECT count() FROM readings_raw")[0][0]) >= at_least:
                return
        except Exception:  # not there yet
            pass
        time.sleep(2)
    raise AssertionError(f"no traffic reached ClickHouse within {timeout:.0f} s "
                         f"(logs in {pipeline.log_dir})")


def test_topics_are_replicated_three_times_with_two_in_sync(cluster: Cluster) -> None:
    pipeline = Pipeline(cluster, "rf")
    pipeline.prepare()
    from streams import clients

    admin = clients.admin(pipeline.settings)
    meta = admin.list_topics(timeout=10)
    assert len(meta.brokers) == 3
    for name in _all_topics(pipeline):
        partitions = meta.topics[name].partitions
        assert len(partitions) == PARTITIONS, name
        assert {len(p.replicas) for p in partitions.values()} == {3}, name
    from confluent_kafka.admin import ConfigResource

    resource = ConfigResource("topic", pipeline.settings.topic("telemetry"))
    (future,) = admin.describe_configs([resource]).values()
    assert future.result()["min.insync.replicas"].value == "2"


def test_a_broker_killed_mid_stream_loses_nothing(cluster: Cluster) -> None:
    pipeline = Pipeline(cluster, "bk")
    pipeline.prepare()
    with running(pipeline):
        worker = pipeline.worker("0").start()
        sink = pipeline.sink("0").start()
        simulator = pipeline.simulator(SECONDS, RATE, seed=41).start()
        _wait_for_traffic(pipeline, 500)
        _faust_topics_replicated(pipeline)
        victim = 0    # the first bootstrap broker, also leader of a third of the partitions
        assert cluster.kafka.kill(victim)
        time.sleep(20)           # leaders move; the producer, worker and sink carry on
        _alive(worker, sink)
        cluster.kafka.restart(victim)
        assert simulator.wait(SECONDS * 4) == 0, simulator.tail()
        pipeline.drain(300, lambda: _alive(worker, sink))
        readings = pipeline.simulated_readings(simulator)
        report = pipeline.check_nothing_lost_nothing_twice(readings)
        _alive(worker, sink)
        assert worker.starts == 1 and sink.starts == 1, (worker.exits, sink.exits)
    deadline = time.monotonic() + 120
    while under_replicated(pipeline.settings, _all_topics(pipeline)):
        assert time.monotonic() < deadline, "the restarted broker did not catch up"
        time.sleep(3)
    print(f"\n[broker kill] {readings} readings, reconcile:\n{report.splitlines()[-1]}")


def test_a_clickhouse_replica_stopped_mid_stream_loses_nothing(cluster: Cluster) -> None:
    pipeline = Pipeline(cluster, "rs")
    pipeline.prepare()
    with running(pipeline):
        worker = pipeline.worker("0").start()
        sink = pipeline.sink("0").start()
        simulator = pipeline.simulator(SECONDS, RATE, seed=43).start()
        _wait_for_traffic(pipeline, 500)
        cluster.clickhouse.stop(0)     # the replica the sink writes to
        time.sleep(25)
        _alive(worker, sink)
        cluster.clickhouse.start(0)
        assert simulator.wait(SECONDS * 4) == 0, simulator.tail()
        pipeline.drain(300, lambda: _alive(worker, sink))
        readings = pipeline.simulated_readings(simulator)
        report = pipeline.check_nothing_lost_nothing_twice(readings)
        assert sink.starts == 1, sink.exits
    log = sink.log.read_text(errors="replace")
    print(f"\n[replica stop] {readings} readings; sink retries "
          f"{log.count('ClickHouse unavailable')}; reconcile:\n{report.splitlines()[-1]}")


def test_a_worker_killed_among_three_moves_its_partitions(cluster: Cluster) -> None:
    pipeline = Pipeline(cluster, "wk")
    pipeline.prepare()
    group = pipeline.settings.worker_id
    with running(pipeline):
        workers = [pipeline.worker(str(i)).start() for i in range(3)]
        sinks = [pipeline.sink(str(i)).start() for i in range(2)]
        simulator = pipeline.simulator(SECONDS, RATE, seed=47).start()
        _wait_for_traffic(pipeline, 500)
        deadline = time.monotonic() + 120
        while len(group_members(pipeline.settings, group)) < 3:
            assert time.monotonic() < deadline, "three workers never shared the partitions"
            time.sleep(2)
        before = group_members(pipeline.settings, group)
        victim = workers[1]
        victim.kill()
        deadline = time.monotonic() + 120
        while True:
            after = group_members(pipeline.settings, group)
            if len(after) == 2 and sum(after.values()) == sum(before.values()):
                break
            assert time.monotonic() < deadline, f"partitions did not move: {after}"
            time.sleep(2)
        survivors = [w for w in workers if w is not victim]
        assert simulator.wait(SECONDS * 4) == 0, simulator.tail()
        pipeline.drain(300, lambda: _alive(*survivors, *sinks))
        readings = pipeline.simulated_readings(simulator)
        report = pipeline.check_nothing_lost_nothing_twice(readings)
        _alive(*survivors, *sinks)
    print(f"\n[worker kill] {readings} readings; partitions per worker before {before}, after "
          f"{after}; restarts after a moved partition {[w.restarts for w in survivors]}; "
          f"reconcile:\n{report.splitlines()[-1]}")
