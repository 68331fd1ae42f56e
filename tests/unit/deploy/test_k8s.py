"""deploy/k8s: kubeconform accepts the manifests offline and rejects broken ones; the topics,
users and ACLs follow schemas/catalog.py; probes, autoscalers, budgets and policies fit."""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.catalog import default_catalog
from streams.httpserver import port_for
from streams.settings import Settings
from streams.worker.app import changelog_topic
from tests.unit.deploy.manifests import (
    DEPLOY,
    K8S,
    PLANNED_SETTINGS,
    SCHEMAS,
    compose,
    containers,
    documents,
    of_kind,
    resources,
    validate,
)

SETTINGS = Settings()
PARTITIONS = 12
CATALOG = default_catalog()
TOPICS = {t.name: t for t in CATALOG.all_topics()}
INPUTS = {SETTINGS.topic(name) for name in CATALOG.input_topics()}
OUTPUTS = {SETTINGS.topic(t.name) for t in CATALOG.worker_outputs()}
Acl = tuple[str, str, str]          # (resource type, pattern type, name)


# -- kubeconform -------------------------------------------------------------------------

def test_kustomization_lists_every_manifest() -> None:
    files = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(resources()) == files


def test_kubeconform_accepts_every_manifest_with_the_committed_schemas() -> None:
    result = validate()
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(documents())
    assert result.stdout.strip().splitlines()[-1] == (
        f"Summary: {count} resources found in {len(resources())} files - Valid: {count}, "
        "Invalid: 0, Errors: 0, Skipped: 0")


def test_every_schema_is_used_and_every_kind_has_one() -> None:
    used = set()
    for doc in documents():
        group, _, version = doc["apiVersion"].rpartition("/")
        suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
        used.add(f"{doc['kind']}{suffix}.json".lower())
    assert {p.name for p in SCHEMAS.glob("*.json")} == used


def test_validation_never_reaches_for_the_network() -> None:
    script = (K8S / "validate.sh").read_text()
    assert "http" not in script and "-ignore-missing-schemas" not in script
    assert script.count("-schema-location") == 1 and "-strict" in script


def _broken(doc_kind: str, name: str, change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(of_kind(doc_kind)[name])
    change(doc)
    return doc


def _worker_typo(doc: dict[str, Any]) -> None:
    doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"


def _partitions_as_text(doc: dict[str, Any]) -> None:
    doc["spec"]["partitions"] = "twelve"


def _acl_typo(doc: dict[str, Any]) -> None:
    doc["spec"]["authorization"]["acls"][0]["operations"] = ["Reed"]


def _layout_typo(doc: dict[str, Any]) -> None:
    doc["spec"]["configuration"]["clusters"][0]["layout"]["shardCount"] = 1


def _scaler_replicas_as_text(doc: dict[str, Any]) -> None:
    doc["spec"]["maxReplicaCount"] = "12"


def _listener_auth(doc: dict[str, Any]) -> None:
    doc["spec"]["kafka"]["listeners"][0]["authentication"]["type"] = "scram-sha-256"


def _policy_port_field(doc: dict[str, Any]) -> None:
    doc["spec"]["egress"][0]["ports"][0]["portNumber"] = 53


BROKEN = {
    "unknown container field": (("Deployment", "ebi-worker", _worker_typo),
                                "additional properties 'imagePullPolcy' not allowed"),
    "partitions not an integer": (("KafkaTopic", "ebi.telemetry", _partitions_as_text),
                                  "got string, want integer"),
    "unknown ACL operation": (("KafkaUser", "ebi-worker", _acl_typo), "value must be one of"),
    "unknown layout field": (("ClickHouseInstallation", "ebi", _layout_typo),
                             "additional properties 'shardCount' not allowed"),
    "max replicas not an integer": (("ScaledObject", "ebi-worker", _scaler_replicas_as_text),
                                    "got string, want integer"),
    "unsupported listener authentication": (("Kafka", "ebi", _listener_auth),
                                            "value must be one of"),
    "unknown policy port field": (("NetworkPolicy", "allow-dns", _policy_port_field),
                                  "additional properties 'portNumber' not allowed"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_kubeconform_rejects_a_broken_manifest(case: str, tmp_path: Path) -> None:
    (kind, name, change), expected = BROKEN[case]
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(_broken(kind, name, change)))
    result = validate(path)
    assert result.returncode != 0
    assert f"{kind} {name} is invalid" in result.stdout and expected in result.stdout, (
        result.stdout)


def test_kubeconform_rejects_a_kind_without_a_schema(tmp_path: Path) -> None:
    path = tmp_path / "unknown.yaml"
    path.write_text("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly}\n")
    result = validate(path)
    assert result.returncode != 0
    assert "could not find schema for CronJob" in result.stdout


# -- topics, users and ACLs ---------------------------------------------------------------

def _topics(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["spec"].get("topicName", name): doc for name, doc in of_kind("KafkaTopic").items()
            if doc["metadata"]["labels"]["ebi.io/topic-kind"] == kind}


def test_topics_are_exactly_the_catalog_with_its_compaction() -> None:
    topics = _topics("catalog")
    assert SETTINGS.topic_prefix == "ebi."
    assert set(topics) == {SETTINGS.topic(name) for name in TOPICS}
    for spec in TOPICS.values():
        config = topics[SETTINGS.topic(spec.name)]["spec"]["config"]
        assert config["cleanup.policy"] == ("compact" if spec.compacted else "delete"), spec.name
        assert config.get("message.timestamp.type", "CreateTime") == (
            "LogAppendTime" if spec.receipt_time else "CreateTime"), spec.name


def test_the_input_topics_carry_the_brokers_receipt_time() -> None:
    assert all(CATALOG.topic(name).receipt_time for name in CATALOG.input_topics())
    assert not any(t.receipt_time for t in CATALOG.worker_outputs())


def test_the_worker_state_topics_are_its_changelogs_and_assignor_topic() -> None:
    topics = _topics("worker-state")
    changelogs = {changelog_topic(SETTINGS, table) for table in CATALOG.state_groups()}
    assert set(topics) == changelogs | {f"{SETTINGS.worker_id}-__assignor-__leader"}
    for name in changelogs:
        assert topics[name]["spec"]["config"]["cleanup.policy"] == "compact"
        assert topics[name]["spec"]["partitions"] == PARTITIONS


def test_every_topic_is_replicated_three_times_with_two_in_sync() -> None:
    kafka = of_kind("Kafka")["ebi"]["spec"]["kafka"]
    assert kafka["config"]["min.insync.replicas"] == 2
    assert kafka["config"]["default.replication.factor"] == 3
    for name, topic in of_kind("KafkaTopic").items():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "ebi", name
        assert topic["spec"]["replicas"] == 3, name
        assert topic["spec"]["config"]["min.insync.replicas"] == 2, name
    catalog = _topics("catalog").values()
    assert {t["spec"]["partitions"] for t in catalog} == {PARTITIONS}


def test_kafka_is_kraft_with_three_brokers_and_scram_over_tls() -> None:
    pools = of_kind("KafkaNodePool")
    roles = {tuple(pool["spec"]["roles"]): pool["spec"]["replicas"] for pool in pools.values()}
    assert roles == {("controller",): 3, ("broker",): 3}
    kafka = of_kind("Kafka")["ebi"]["spec"]["kafka"]
    assert kafka["authorization"]["type"] == "simple"
    for listener in kafka["listeners"]:
        assert listener["tls"] is True, listener["name"]
        assert listener["authentication"]["type"] == "scram-sha-512", listener["name"]


def _lit(names: set[str], *ops: str) -> dict[Acl, set[str]]:
    return {("topic", "literal", name): set(ops) for name in names}


IDEMPOTENT: dict[Acl, set[str]] = {("cluster", "literal", "kafka-cluster"): {"IdempotentWrite"}}
# The roles of the local stack's access model (docs/security.md), with the KafkaUser names of
# a cluster; Read and Write imply Describe.
EXPECTED_ACLS: dict[str, dict[Acl, set[str]]] = {
    "ebi-worker": {**_lit(INPUTS, "Read"), **_lit(OUTPUTS, "Write"), **IDEMPOTENT,
                   ("topic", "prefix", "ebi-worker-"): {"Read", "Write", "Create", "Describe"},
                   ("group", "literal", "ebi-worker"): {"Read"},
                   ("group", "prefix", "ebi-worker-"): {"Read"}},
    "ebi-sink": {**_lit(OUTPUTS, "Read"), ("group", "literal", "ebi-sink"): {"Read"}},
    "ebi-gateway": {**_lit({"ebi.telemetry", "ebi.heartbeats", "ebi.hazards"}, "Write"),
                    **IDEMPOTENT},
    "ebi-regional-system": {**_lit({"ebi.incidents"}, "Write"), **IDEMPOTENT},
    "ebi-registration-authority": {**_lit({"ebi.enterprises", "ebi.sensors", "ebi.keys"},
                                          "Write"),
                                   **IDEMPOTENT},
    "ebi-operator": {("topic", "prefix", "ebi."): {"Describe"},
                     ("topic", "prefix", "ebi-worker-"): {"Describe"},
                     **_lit(OUTPUTS, "Read"),
                     **_lit({"ebi.alarm.commands"}, "Write"),   # ebi alarms ack
                     ("group", "literal", "*"): {"Describe"},
                     ("group", "prefix", "operator-"): {"Read"},
                     ("cluster", "literal", "kafka-cluster"): {"Describe", "IdempotentWrite"}},
    "ebi-autoscaler": {("topic", "prefix", "ebi."): {"Describe"},
                       ("group", "literal", "ebi-worker"): {"Describe"},
                       ("group", "literal", "ebi-sink"): {"Describe"}},
}


def _k8s_acls(user: dict[str, Any]) -> dict[Acl, set[str]]:
    acls: dict[Acl, set[str]] = {}
    for acl in user["spec"]["authorization"]["acls"]:
        assert acl.get("type", "allow") == "allow"
        resource = acl["resource"]
        key = (resource["type"], resource.get("patternType", "literal"),
               resource.get("name", "kafka-cluster"))
        assert key not in acls, f"{key} listed twice"
        acls[key] = set(acl["operations"])
    return acls


def test_the_expected_acls_follow_the_catalog() -> None:
    worker = EXPECTED_ACLS["ebi-worker"]
    topics = {k: ops for k, ops in worker.items() if k[:2] == ("topic", "literal")}
    assert {k[2] for k, ops in topics.items() if ops == {"Read"}} == INPUTS
    assert {k[2] for k, ops in topics.items() if ops == {"Write"}} == OUTPUTS
    assert {k[2] for k in EXPECTED_ACLS["ebi-sink"] if k[0] == "topic"} == OUTPUTS
    reference = {"ebi.enterprises", "ebi.sensors", "ebi.keys"}
    assert {"ebi.telemetry", "ebi.heartbeats", "ebi.hazards", "ebi.incidents",
            "ebi.alarm.commands"} | reference == INPUTS


@pytest.mark.parametrize("name", EXPECTED_ACLS)
def test_each_user_has_exactly_its_roles_acls(name: str) -> None:
    user = of_kind("KafkaUser")[name]
    assert user["metadata"]["labels"]["strimzi.io/cluster"] == "ebi"
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    assert user["spec"]["authorization"]["type"] == "simple"
    assert _k8s_acls(user) == EXPECTED_ACLS[name]


def test_there_is_one_user_per_role_and_only_readers_hold_prefixes_on_ebi() -> None:
    users = of_kind("KafkaUser")
    assert set(users) == set(EXPECTED_ACLS)
    for name, user in users.items():
        for (kind, pattern, resource), ops in _k8s_acls(user).items():
            if kind == "topic" and pattern == "prefix" and resource == "ebi.":
                assert ops == {"Describe"}, name
            if "Write" in ops or "Create" in ops:
                assert pattern == "literal" or resource == "ebi-worker-", (name, resource)


def _setup_table(name: str) -> list[list[str]]:
    script = (DEPLOY / "cluster" / "kafka-setup.sh").read_text()
    found = re.search(rf'^{name}="\n(.*?)^"$', script, re.S | re.M)
    assert found, f"no {name} table in kafka-setup.sh"
    return [line.split() for line in found.group(1).splitlines() if line.strip()]


def test_the_compose_setup_creates_the_same_topics_and_acls() -> None:
    topics = {name: (cleanup, int(parts.replace("$PARTITIONS", str(PARTITIONS))), stamps)
              for name, cleanup, parts, stamps in _setup_table("TOPICS")}
    k8s_topics = {doc["spec"].get("topicName", name): (
        doc["spec"]["config"]["cleanup.policy"], doc["spec"]["partitions"],
        doc["spec"]["config"].get("message.timestamp.type", "CreateTime"))
        for name, doc in of_kind("KafkaTopic").items()}
    assert topics == k8s_topics
    acls: dict[str, dict[Acl, set[str]]] = {}
    for user, kind, pattern, resource, operations in _setup_table("ACLS"):
        acls.setdefault(user, {})[(kind, pattern, resource)] = set(operations.split(","))
    assert acls == {name: EXPECTED_ACLS[name] for name in EXPECTED_ACLS
                    if name != "ebi-autoscaler"}   # KEDA exists only on Kubernetes


# -- workloads ----------------------------------------------------------------------------

ROLES = {"ebi-worker": "worker", "ebi-sink": "sink"}


def _env_names(container: dict[str, Any]) -> set[str]:
    return {item["name"] for item in container.get("env", [])}


@pytest.mark.parametrize("name", ROLES)
def test_probes_use_healthz_and_readyz_on_the_status_port(name: str) -> None:
    main = of_kind("Deployment")[name]["spec"]["template"]["spec"]["containers"][0]
    config = of_kind("ConfigMap")["ebi-config"]["data"]
    settings = SETTINGS.replace(metrics_port=config["EBI_METRICS_PORT"])
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"metrics": port_for(settings, ROLES[name])}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
    service = of_kind("Service")[f"{name}-metrics"]["spec"]
    assert service["ports"][0]["port"] == ports["metrics"]


@pytest.mark.parametrize("name", ROLES)
def test_deployments_have_resources_a_budget_and_an_autoscaler(name: str) -> None:
    deployment = of_kind("Deployment")[name]
    labels = deployment["spec"]["selector"]["matchLabels"]
    for container in containers(deployment):
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    budget = of_kind("PodDisruptionBudget")[name]["spec"]
    assert budget["selector"]["matchLabels"] == labels
    scaler = of_kind("ScaledObject")[name]["spec"]
    assert scaler["scaleTargetRef"]["name"] == name
    (trigger,) = scaler["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["topic"] in (INPUTS if ROLES[name] == "worker" else OUTPUTS)
    assert trigger["authenticationRef"]["name"] in of_kind("TriggerAuthentication")
    partitions = {doc["spec"].get("topicName", n): doc["spec"]["partitions"]
                  for n, doc in of_kind("KafkaTopic").items()}
    assert scaler["maxReplicaCount"] == partitions[trigger["metadata"]["topic"]]
    assert 2 <= scaler["minReplicaCount"] <= scaler["maxReplicaCount"]
    group = "ebi-worker" if ROLES[name] == "worker" else SETTINGS.sink_group
    assert trigger["metadata"]["consumerGroup"] == group


def test_each_pod_uses_its_own_kafka_user() -> None:
    for name, deployment in of_kind("Deployment").items():
        main = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {item["name"]: item for item in main["env"]}
        assert env["EBI_KAFKA_USERNAME"]["value"] == name
        ref = env["EBI_KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": name, "key": "password"}   # the User Operator's Secret
        assert name in of_kind("KafkaUser")


def _ebi_variables() -> dict[str, set[str]]:
    """EBI_* variable -> where it is set, over deploy/k8s and both compose files."""
    found: dict[str, set[str]] = {}
    for key in of_kind("ConfigMap")["ebi-config"]["data"]:
        found.setdefault(key, set()).add("config.yaml")
    for name, deployment in of_kind("Deployment").items():
        for container in containers(deployment):
            for key in _env_names(container):
                found.setdefault(key, set()).add(name)
    for file in ("compose.yaml", "compose.cluster.yaml"):
        for service in compose(file)["services"].values():
            if service.get("image") != "ebi:local":
                continue          # Grafana's EBI_PROMETHEUS_URL is its own, not ebi's
            for key in service.get("environment", {}):
                found.setdefault(key, set()).add(file)
            for secret in service.get("secrets", []):
                if isinstance(secret, dict):
                    found.setdefault(secret["target"], set()).add(file)
    return {key: where for key, where in found.items() if key.startswith("EBI_")}


def test_every_ebi_variable_is_a_setting_or_a_listed_planned_one() -> None:
    fields = {f.name for f in dataclasses.fields(Settings)}
    unknown = {key: sorted(where) for key, where in _ebi_variables().items()
               if key[4:].lower() not in fields | PLANNED_SETTINGS}
    assert not unknown, f"not settings of streams/settings.py: {unknown}"


def test_secrets_hold_placeholders_only() -> None:
    for name, secret in of_kind("Secret").items():
        assert "data" not in secret, f"{name}: base64 data would hide real values"
        for key, value in secret["stringData"].items():
            if key == "password":
                assert "CHANGE-ME" in value, f"Secret {name} key {key} is not a placeholder"
    for name, deployment in of_kind("Deployment").items():
        for container in containers(deployment):
            for item in container.get("env", []):
                if "PASSWORD" in item["name"]:
                    assert "secretKeyRef" in item["valueFrom"], f"{name}: {item['name']}"
                assert "@" not in item.get("value", ""), f"{name}: credentials in a URL"


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def test_network_policies_deny_by_default_and_cover_each_component() -> None:
    policies = of_kind("NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in
                  of_kind("Deployment").values()]
    for kind, templates in (("ClickHouseInstallation", "ebi"),
                            ("ClickHouseKeeperInstallation", "ebi-keeper")):
        spec = of_kind(kind)[templates]["spec"]["templates"]["podTemplates"]
        pod_labels += [t["metadata"]["labels"] for t in spec]
    for labels in pod_labels:
        own = [p["spec"] for name, p in policies.items() if name not in {"default-deny",
               "allow-dns"} and p["spec"]["podSelector"] and
               _selects(p["spec"]["podSelector"], labels)]
        assert own, f"no NetworkPolicy of its own for pods {labels}"
        assert {t for p in own for t in p["policyTypes"]} == {"Ingress", "Egress"}, labels


def test_kafka_listener_peers_are_the_clients_in_the_cluster() -> None:
    listener = next(x for x in of_kind("Kafka")["ebi"]["spec"]["kafka"]["listeners"]
                    if x["type"] == "internal")
    peers = [p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
             for p in listener["networkPolicyPeers"]]
    assert set(peers) - {None} == set(ROLES)
    bootstrap = of_kind("ConfigMap")["ebi-config"]["data"]["EBI_KAFKA_BOOTSTRAP"]
    assert bootstrap == f"ebi-kafka-bootstrap:{listener['port']}"


def test_clickhouse_is_one_shard_of_two_replicas_with_a_three_node_keeper() -> None:
    chi = of_kind("ClickHouseInstallation")["ebi"]["spec"]
    (cluster,) = chi["configuration"]["clusters"]
    assert cluster["name"] == "ebi"
    assert cluster["layout"] == {"shardsCount": 1, "replicasCount": 2}
    (keeper,) = of_kind("ClickHouseKeeperInstallation")["ebi-keeper"]["spec"]["configuration"][
        "clusters"]
    assert keeper["layout"]["replicasCount"] == 3
    assert chi["configuration"]["users"]["ebi/k8s_secret_password"] == "ebi-clickhouse/password"
    sink = of_kind("Deployment")["ebi-sink"]["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item for item in sink["env"]}
    assert env["EBI_CLICKHOUSE_URL"]["value"] == "clickhouse://clickhouse-ebi:9000/ebi"
    assert env["EBI_CLICKHOUSE_USER"]["value"] == "ebi"
    assert env["EBI_CLICKHOUSE_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "ebi-clickhouse", "key": "password"}


def test_the_readme_names_every_manifest_and_placeholder() -> None:
    readme = (K8S / "README.md").read_text()
    for name in resources():
        assert f"`{name}`" in readme, name
    for name in of_kind("Secret"):
        assert name in readme, name
