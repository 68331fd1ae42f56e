"""The local stack's ClickHouse replicas and ZooKeeper configuration (nothing is started)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from streams.settings import Settings
from streams.stack.clickhouse import CONFIG, ClickHouseReplicas, cluster_xml
from streams.stack.stack import default_services
from streams.stack.zookeeper import ZooKeeper


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, clickhouse_url="clickhouse://127.0.0.1:30000/ebi",
                    clickhouse_tcp_port=30000, clickhouse_http_port=30001,
                    clickhouse_interserver_port=30002, zookeeper_port=30003,
                    clickhouse_replicas=2)


def test_each_replica_has_its_ports_macros_and_the_shared_cluster(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    for index in (0, 1):
        text = CONFIG.format(dir=tmp_path, http_port=1, tcp_port=2).replace(
            "</yandex>", cluster_xml(s, index, "pw") + "</yandex>")
        root = ET.fromstring(text)
        assert root.findtext("macros/replica") == f"replica-{index + 1}"
        assert root.findtext("macros/shard") == "01"
        assert root.findtext("interserver_http_port") == str(30002 + 10 * index)
        assert root.findtext("zookeeper/node/port") == "30003"
        shard = root.find("remote_servers/ebi/shard")
        assert shard is not None and shard.findtext("internal_replication") == "true"
        assert [r.findtext("port") for r in shard.findall("replica")] == ["30000", "30010"]
        assert root.findtext("distributed_ddl/path") == "/clickhouse/ebi/task_queue/ddl"


def test_replicas_have_own_dirs_and_markers_and_the_stack_adds_zookeeper(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    replicas = ClickHouseReplicas(s)
    assert [r.tcp_port for r in replicas.replicas] == [30000, 30010]
    assert [r.dir.name for r in replicas.replicas] == ["clickhouse", "clickhouse-2"]
    a, b = (r.proc.marker for r in replicas.replicas)
    assert a not in b and b not in a
    names = [svc.name for svc in default_services(s)]
    assert names == ["kafka", "registry", "zookeeper", "clickhouse"]
    assert "zookeeper" not in [svc.name for svc in default_services(Settings(data_dir=tmp_path))]


def test_zookeeper_listens_on_loopback_without_an_admin_server(tmp_path: Path) -> None:
    props = dict(line.split("=", 1) for line in
                 ZooKeeper(_settings(tmp_path)).properties().splitlines() if line)
    assert props["clientPortAddress"] == "127.0.0.1" and props["clientPort"] == "30003"
    assert props["admin.enableServer"] == "false"
