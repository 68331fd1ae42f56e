"""Who may say what, against the session's secured stack: Kafka SASL_SSL with SCRAM users and
the ACLs of deploy/access/local.toml, the registry over HTTPS with basic auth, ClickHouse
with passwords. Each principal is the real one (its generated password, the local CA)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from streams import clients
from streams.credentials import all_passwords
from streams.readiness import RegistryCheck
from streams.settings import Secret, Settings
from streams.stack.kafka import kafka_ready
from tests.integration.conftest import as_principal, leaked_passwords

pytestmark = pytest.mark.integration


def produce(settings: Settings, logical: str, key: bytes = b"k") -> str | None:
    """The delivery error of one message to ``logical`` (None: written)."""
    producer = clients.producer(settings, **{"message.timeout.ms": 10_000})
    errors: list[Any] = []
    producer.produce(settings.topic(logical), b"not avro, never read", key=key,
                     on_delivery=lambda err, msg: errors.append(err))
    producer.flush(15)
    assert errors, "no delivery report"
    return None if errors[0] is None else str(errors[0].name())


def read_error(settings: Settings, logical: str, group: str) -> str | None:
    """The first error reading ``logical`` with consumer group ``group`` (None: none)."""
    consumer = clients.consumer(settings, group, **{"auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([settings.topic(logical)])
        for _ in range(10):
            for msg in consumer.consume(10, timeout=1.0):
                if msg.error() is not None:
                    return str(msg.error().name())
        return None
    finally:
        consumer.close()


def admin_error(future: Any) -> str:
    with pytest.raises(Exception) as caught:
        future.result(30)
    return str(caught.value)


def test_unauthenticated_and_wrong_password_clients_are_refused(provisioned: Settings) -> None:
    assert kafka_ready(provisioned)
    tls_only = {**clients.kafka_config(provisioned), "security.protocol": "SSL"}
    for key in ("sasl.mechanism", "sasl.username", "sasl.password"):
        tls_only.pop(key)
    assert not kafka_ready(provisioned, config=tls_only, timeout=3)
    plaintext = {"bootstrap.servers": provisioned.bootstrap, "security.protocol": "PLAINTEXT"}
    assert not kafka_ready(provisioned, config=plaintext, timeout=3)
    wrong = provisioned.replace(kafka_password=Secret("not-the-password"))
    assert not kafka_ready(wrong, timeout=5)
    nobody = provisioned.replace(kafka_username="intruder", kafka_password=Secret("x"))
    assert not kafka_ready(nobody, timeout=5)


def test_gateway_writes_its_inputs_and_nothing_else(provisioned: Settings) -> None:
    gateway = as_principal(provisioned, "gateway-a")
    for logical in ("telemetry", "heartbeats", "hazards"):
        assert produce(gateway, logical) is None, logical
    for logical in ("telemetry.clean", "alerts", "deadletter", "incidents", "sensors"):
        assert produce(gateway, logical) == "TOPIC_AUTHORIZATION_FAILED", logical


def test_gateway_cannot_read_inputs_create_topics_or_alter_acls(provisioned: Settings) -> None:
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        NewTopic,
        ResourcePatternType,
        ResourceType,
    )

    gateway = as_principal(provisioned, "gateway-b")
    produce(as_principal(provisioned, "gateway-a"), "telemetry")   # another gateway's data
    error = read_error(gateway, "telemetry", f"operator-{uuid.uuid4().hex[:6]}")
    assert error in ("TOPIC_AUTHORIZATION_FAILED", "GROUP_AUTHORIZATION_FAILED")
    admin = clients.admin(gateway)
    name = provisioned.topic(f"rogue-{uuid.uuid4().hex[:6]}")
    created = admin.create_topics([NewTopic(name, 1, 1)], operation_timeout=10)
    assert "AUTHORIZATION_FAILED" in admin_error(created[name])
    grant = AclBinding(ResourceType.TOPIC, provisioned.topic("telemetry.clean"),
                       ResourcePatternType.LITERAL, "User:gateway-b", "*", AclOperation.WRITE,
                       AclPermissionType.ALLOW)
    (future,) = admin.create_acls([grant], request_timeout=10).values()
    assert "AUTHORIZATION_FAILED" in admin_error(future)
    assert provisioned.topic("rogue") not in admin.list_topics(timeout=10).topics


def test_regional_registrar_and_sink_each_write_only_their_own(provisioned: Settings) -> None:
    regional = as_principal(provisioned, "regional-32")
    assert produce(regional, "incidents") is None
    assert produce(regional, "telemetry") == "TOPIC_AUTHORIZATION_FAILED"
    registrar = as_principal(provisioned, "registrar")
    assert produce(registrar, "sensors", key=b"sensor-1") in (None, "INVALID_RECORD")
    assert produce(registrar, "enterprises", key=b"ent-1") in (None, "INVALID_RECORD")
    assert produce(registrar, "telemetry") == "TOPIC_AUTHORIZATION_FAILED"
    sink = as_principal(provisioned, "sink")
    for logical in ("telemetry", "incidents", "enterprises", "telemetry.clean"):
        assert produce(sink, logical) == "TOPIC_AUTHORIZATION_FAILED", logical
    assert read_error(sink, "telemetry", provisioned.sink_group) in (
        "TOPIC_AUTHORIZATION_FAILED", "GROUP_AUTHORIZATION_FAILED")


def test_worker_may_not_create_topics_outside_its_own(provisioned: Settings) -> None:
    from confluent_kafka.admin import NewTopic

    worker = as_principal(provisioned, "worker")
    admin = clients.admin(worker)
    name = provisioned.topic(f"rogue-{uuid.uuid4().hex[:6]}")
    created = admin.create_topics([NewTopic(name, 1, 1)], operation_timeout=10)
    assert "AUTHORIZATION_FAILED" in admin_error(created[name])
    assert produce(worker, "telemetry") == "TOPIC_AUTHORIZATION_FAILED"
    assert produce(worker, "alerts") is None


def test_access_apply_is_idempotent_and_show_lists_the_roles(
        provisioned: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from streams.cli import access

    parser = argparse.ArgumentParser()
    access.add(parser)
    assert access.run(parser.parse_args(["apply"]), provisioned) == 0
    assert "0 created, 0 removed" in capsys.readouterr().out
    assert access.run(parser.parse_args(["show"]), provisioned) == 0
    shown = capsys.readouterr().out
    assert "User:gateway-a (gateway)" in shown
    assert f"WRITE            topic   {provisioned.topic('telemetry')}" in shown
    # a principal the declaration does not give a role is refused by the authorizer
    gateway = as_principal(provisioned, "gateway-a")
    assert access.run(parser.parse_args(["apply"]), gateway) == 1


def test_registry_refuses_anonymous_and_wrong_passwords(provisioned: Settings) -> None:
    headers, context = clients.registry_http(provisioned)
    assert RegistryCheck(provisioned.registry_url, headers=headers, context=context)().ok
    anonymous = RegistryCheck(provisioned.registry_url, context=context)()
    assert not anonymous.ok and "HTTP 401" in anonymous.detail
    wrong = provisioned.replace(registry_password=Secret("not-it"))
    headers, context = clients.registry_http(wrong)
    assert "HTTP 401" in RegistryCheck(wrong.registry_url, headers=headers,
                                       context=context)().detail
    plain = provisioned.registry_url.replace("https://", "http://")
    with pytest.raises(OSError):   # no plain-HTTP listener
        urllib.request.urlopen(plain + "/subjects", timeout=5)


def test_clickhouse_refuses_the_empty_default_user(stack_settings: Settings,
                                                   clickhouse_server_url: str) -> None:
    from streams.stack.clickhouse import http_query, native_ping

    assert native_ping(clickhouse_server_url)            # ebi_admin's login in the URL
    bare = f"clickhouse://127.0.0.1:{stack_settings.clickhouse_tcp_port}/default"
    assert not native_ping(bare)                          # default, empty password
    with pytest.raises(urllib.error.HTTPError):
        http_query(stack_settings.clickhouse_http_port, "SELECT 1")


def test_no_password_in_status_output_errors_or_logs(stack_settings: Settings,
                                                     provisioned: Settings) -> None:
    passwords = all_passwords(stack_settings.data_dir)
    assert len(passwords) >= 10
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBI_")}
    env.update({"EBI_DATA_DIR": str(stack_settings.data_dir),
                "EBI_KAFKA_PORT": str(stack_settings.kafka_port),
                "EBI_KAFKA_CONTROLLER_PORT": str(stack_settings.kafka_controller_port),
                "EBI_KAFKA_BROKER_PORT": str(stack_settings.kafka_broker_port),
                "EBI_REGISTRY_PORT": str(stack_settings.registry_port),
                "EBI_CLICKHOUSE_URL": f"clickhouse://ebi_admin:{passwords[0]}@127.0.0.1:{stack_settings.clickhouse_tcp_port}/x"})
    status = subprocess.run([sys.executable, "-m", "streams", "stack", "status"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert "kafka" in status.stdout and "healthy" in status.stdout
    assert not [p for p in passwords if p in status.stdout + status.stderr]
    assert "ebi_admin:******@" in status.stdout
    # a failing command names the URL, not the password
    env["EBI_CLICKHOUSE_URL"] = f"clickhouse://ebi_admin:{passwords[0]}@127.0.0.1:1/x"
    failed = subprocess.run([sys.executable, "-m", "streams", "query", "SELECT 1"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode != 0
    assert passwords[0] not in failed.stdout + failed.stderr
    assert not leaked_passwords(stack_settings.data_dir)
