"""The cluster descriptions give ebi the replication it is built for: what the topics have
(replication 3, min.insync.replicas 2, 12 partitions) is what the worker gives faust's own
topics, and `ebi migrate` replicates the tables on the ClickHouse cluster they define."""

from __future__ import annotations

from typing import Any

from sinks.clickhouse.config import cluster_url, parse_url
from streams.settings import load
from tests.unit.deploy.manifests import DEPLOY, compose, documents

CLUSTER = compose("compose.cluster.yaml")["services"]


def _k8s(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name)


def _env(pairs: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in pairs.items() if k.startswith("EBI_") and
            not k.endswith("_FILE") and k not in ("EBI_PROMETHEUS_URL",)}


def test_compose_workers_and_sinks_replicate_like_the_topics() -> None:
    for role in ("worker", "sink", "migrate"):
        settings = load(environ=_env(CLUSTER[role]["environment"]))
        assert (settings.topic_replication_factor, settings.topic_min_insync_replicas,
                settings.topic_partitions) == (3, 2, 12)
        assert settings.clickhouse_cluster_name == "ebi"
    sink = load(environ=_env(CLUSTER["sink"]["environment"]))
    config = parse_url(cluster_url(sink))
    assert (config.host, config.alt_hosts, config.cluster) == (
        "clickhouse-1", (("clickhouse-2", 9000),), "ebi")
    assert "--replication-factor 3" in (DEPLOY / "cluster" / "kafka-setup.sh").read_text()


def test_k8s_config_matches_the_kafka_topics_and_the_clickhouse_cluster() -> None:
    data = _k8s("ConfigMap", "ebi-config")["data"]
    settings = load(environ=_env(data))
    topics = [d for d in documents() if d["kind"] == "KafkaTopic"]
    assert {t["spec"]["replicas"] for t in topics} == {settings.topic_replication_factor}
    assert {str(t["spec"]["config"].get("min.insync.replicas")) for t in topics} == {
        str(settings.topic_min_insync_replicas)}
    chi = _k8s("ClickHouseInstallation", "ebi")
    clusters = [c["name"] for c in chi["spec"]["configuration"]["clusters"]]
    assert settings.clickhouse_cluster_name in clusters
