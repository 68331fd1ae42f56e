"""The compose files: `docker compose config` accepts both, and deploy/compose.cluster.yaml
has the shape the cluster needs (KRaft quorum, SCRAM over TLS, an internal controller network,
replicated ClickHouse, replicas of the worker and the sink, secrets never inline)."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.httpserver import port_for
from streams.settings import Settings
from tests.unit.deploy.manifests import (
    COMPOSE_FILES,
    DEPLOY,
    ROOT,
    compose,
    compose_command,
    require_tool,
)

CLUSTER = compose("compose.cluster.yaml")
SERVICES: dict[str, Any] = CLUSTER["services"]
BROKERS = ["kafka-1", "kafka-2", "kafka-3"]


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_config_accepts_the_file(name: str) -> None:
    result = subprocess.run([*compose_command(), "-f", str(DEPLOY / name), "config", "-q"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_compose_config_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = dict(CLUSTER)
    broken["services"] = {**SERVICES, "worker": {**SERVICES["worker"], "replicaz": 3}}
    path = tmp_path / "compose.cluster.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = subprocess.run([*compose_command(), "-f", str(path), "config", "-q"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "replicaz" in result.stderr


def _listeners(env: dict[str, Any], key: str) -> dict[str, str]:
    return dict(item.split("://", 1) for item in str(env[key]).split(","))


def test_three_kraft_brokers_with_one_quorum() -> None:
    ids = set()
    for name in BROKERS:
        env = SERVICES[name]["environment"]
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == ",".join(
            f"{i}@kafka-{i}:9093" for i in (1, 2, 3))
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        ids.add(env["KAFKA_NODE_ID"])
        advertised = _listeners(env, "KAFKA_ADVERTISED_LISTENERS")
        assert advertised["CLIENT"] == f"{name}:9092"
        assert "SSL" not in env["KAFKA_ADVERTISED_LISTENERS"]   # see the file's comment
    assert ids == {1, 2, 3}


def test_clients_get_scram_over_tls_and_the_controller_stays_internal() -> None:
    networks = CLUSTER["networks"]
    for name in BROKERS:
        env = SERVICES[name]["environment"]
        protocols = dict(item.split(":") for item in
                         env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        assert protocols == {"CONTROLLER": "PLAINTEXT", "REPLICATION": "PLAINTEXT",
                             "CLIENT": "SASL_SSL", "EXTERNAL": "SASL_SSL"}
        assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
        assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
        assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
        assert "StandardAuthorizer" in env["KAFKA_AUTHORIZER_CLASS_NAME"]
        published = {p.split(":")[-1] for p in SERVICES[name]["ports"]}
        external = _listeners(env, "KAFKA_LISTENERS")["EXTERNAL"].lstrip(":")
        assert published == {external}, "only the SASL_SSL listener is published"
        assert all(p.startswith("127.0.0.1:") for p in SERVICES[name]["ports"])
    assert networks["kafka-internal"]["internal"] is True
    plaintext_peers = {n for n, s in SERVICES.items() if "kafka-internal" in s.get("networks", [])}
    assert plaintext_peers == {*BROKERS, "kafka-setup"}


def test_ebi_services_use_the_sasl_ssl_listener() -> None:
    for name in ("worker", "sink"):
        env = SERVICES[name]["environment"]
        assert env["EBI_KAFKA_BOOTSTRAP"] == ",".join(f"{b}:9092" for b in BROKERS)
        assert env["EBI_KAFKA_SECURITY"] == "sasl_ssl"
        assert env["EBI_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["EBI_KAFKA_USERNAME"] == f"ebi-{name}"
        assert env["EBI_KAFKA_PASSWORD_FILE"] == "/run/secrets/kafka-password"
        targets = {s["target"]: s["source"] for s in SERVICES[name]["secrets"]
                   if isinstance(s, dict)}
        assert targets["kafka-password"] == f"kafka-user-ebi-{name}"
        assert env["EBI_KAFKA_CA_FILE"] == "/run/secrets/kafka-ca.pem"
        assert "kafka-ca.pem" in SERVICES[name]["secrets"]
    for name in ("sink", "migrate"):
        env = SERVICES[name]["environment"]
        assert env["EBI_CLICKHOUSE_URL"] == \
            "clickhouse://clickhouse-1:9000/ebi?alt_hosts=clickhouse-2:9000"
        assert env["EBI_CLICKHOUSE_PASSWORD_FILE"] == "/run/secrets/clickhouse-password"
        assert "clickhouse-password" in SERVICES[name]["secrets"]
    assert "EBI_KAFKA_PASSWORD_FILE" not in SERVICES["migrate"]["environment"]


@pytest.mark.parametrize("role", ["worker", "sink"])
def test_workers_and_sinks_are_replicas_with_healthz_checks(role: str) -> None:
    service = SERVICES[role]
    replicas = service["deploy"]["replicas"]
    assert replicas == 2 if role == "sink" else replicas >= 2
    settings = Settings().replace(metrics_port=service["environment"]["EBI_METRICS_PORT"])
    check = " ".join(service["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port_for(settings, role)}/healthz" in check
    assert "container_name" not in service and "ports" not in service


def test_every_long_running_service_has_a_healthcheck() -> None:
    one_shot = {n for n, s in SERVICES.items() if s.get("restart") == "no"}
    assert one_shot == {"kafka-setup", "migrate"}
    missing = sorted(n for n, s in SERVICES.items() if n not in one_shot and "healthcheck" not in s)
    assert not missing, f"no healthcheck: {missing}"


def test_passwords_are_compose_secrets_never_inline() -> None:
    for name, service in SERVICES.items():
        for key, value in service.get("environment", {}).items():
            if key.endswith("_FILE"):     # EBI_*_FILE, Grafana's __FILE: a mounted secret
                assert str(value).startswith("/run/secrets/"), f"{name}: {key}"
            else:
                assert not re.search(r"PASSWORD|SECRET", key), (
                    f"{name}: {key} is set inline; make it a compose secret")
                assert not re.search(r"//[^/]*:[^/]*@", str(value)), f"{name}: {key}"
    declared = CLUSTER["secrets"]
    used = {s["source"] if isinstance(s, dict) else s
            for service in SERVICES.values() for s in service.get("secrets", [])}
    assert used == set(declared)
    for secret in declared.values():
        assert secret["file"].startswith("./cluster/secrets/")
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/cluster/secrets/x"],
                             cwd=ROOT, capture_output=True)
    assert ignored.returncode == 0, "deploy/cluster/secrets/ must be git-ignored"


def test_make_secrets_creates_every_file_the_compose_file_reads(tmp_path: Path) -> None:
    openssl = require_tool(shutil.which("openssl"), "openssl", "Debian package openssl")
    script = DEPLOY / "cluster" / "make-secrets.sh"
    env = {"PATH": f"{Path(openssl).parent}:/usr/bin:/bin"}
    first = subprocess.run(["bash", str(script), str(tmp_path)], capture_output=True,
                           text=True, timeout=120, env=env)
    assert first.returncode == 0, first.stderr
    for secret in CLUSTER["secrets"].values():
        path = tmp_path / Path(secret["file"]).name
        assert path.is_file() and path.stat().st_size > 0, path.name
    password = (tmp_path / "clickhouse-password").read_text()
    assert len(password) >= 32 and password not in first.stdout + first.stderr
    users = {p.name for p in tmp_path.glob("kafka-user-*")}
    assert len({(tmp_path / u).read_text() for u in users}) == len(users) == 6
    assert (tmp_path / "kafka-ca.key").stat().st_mode & 0o077 == 0
    again = subprocess.run(["bash", str(script), str(tmp_path)], capture_output=True,
                           text=True, timeout=120, env=env)
    assert again.returncode == 0 and (tmp_path / "clickhouse-password").read_text() == password


def test_secrets_env_exports_variable_named_files_only(tmp_path: Path) -> None:
    (tmp_path / "CLICKHOUSE_PASSWORD").write_text("s3cret")
    (tmp_path / "kafka-ca.pem").write_text("-----BEGIN CERTIFICATE-----")
    result = subprocess.run(["sh", str(DEPLOY / "cluster" / "secrets-env.sh"), "env"],
                            capture_output=True, text=True, timeout=30,
                            env={"SECRETS_ENV_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "CLICKHOUSE_PASSWORD=s3cret" in lines
    assert not any("BEGIN CERTIFICATE" in line for line in lines)


def test_clickhouse_cluster_is_one_shard_of_two_replicas_with_macros() -> None:
    config = ET.parse(DEPLOY / "cluster" / "clickhouse" / "cluster.xml").getroot()
    shards = config.findall("remote_servers/ebi/shard")
    assert len(shards) == 1
    hosts = [r.findtext("host", "") for r in shards[0].findall("replica")]
    assert hosts == ["clickhouse-1", "clickhouse-2"]
    assert shards[0].findtext("internal_replication") == "true"
    macros = {m.tag: m.get("from_env") for m in config.findall("macros/*")}
    assert macros == {"cluster": None, "shard": "CLICKHOUSE_SHARD",
                      "replica": "CLICKHOUSE_REPLICA"}
    assert len(config.findall("zookeeper/node")) == 3
    for host in hosts:
        service = SERVICES[host]
        assert service["hostname"] == host
        assert service["environment"]["CLICKHOUSE_REPLICA"] == host
        mounts = " ".join(service["volumes"])
        assert "cluster.xml:/etc/clickhouse-server/config.d/" in mounts
    zookeepers = [n for n in SERVICES if n.startswith("zookeeper-")]
    assert len(zookeepers) == 3
    assert {SERVICES[n]["image"] for n in zookeepers} == {"zookeeper:3.8"}


def test_prometheus_cluster_config_is_valid_and_scrapes_every_replica() -> None:
    promtool = require_tool(shutil.which("promtool"), "promtool", "Debian package prometheus")
    config = DEPLOY / "prometheus" / "prometheus.cluster.yml"
    result = subprocess.run([promtool, "check", "config", config.name], cwd=config.parent,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {j["job_name"]: j for j in yaml.safe_load(config.read_text())["scrape_configs"]}
    settings = Settings().replace(metrics_port=SERVICES["worker"]["environment"][
        "EBI_METRICS_PORT"])
    for role in ("worker", "sink"):
        (sd,) = jobs[f"ebi-{role}"]["dns_sd_configs"]
        assert sd["names"] == [role] and sd["port"] == port_for(settings, role)
    mounted = " ".join(SERVICES["prometheus"]["volumes"])
    assert "prometheus.cluster.yml" in mounted
