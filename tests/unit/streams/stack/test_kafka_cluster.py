"""The local Kafka cluster's node configuration (no process is started here)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from streams.settings import Settings
from streams.stack.kafka import Kafka, node_ports, scram_argument
from streams.stack.pki import Pki


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _cluster(tmp_path: Path, brokers: int = 3) -> Settings:
    return Settings(data_dir=tmp_path, kafka_port=30000, kafka_broker_port=30001,
                    kafka_controller_port=30002, kafka_brokers=brokers,
                    topic_replication_factor=min(3, brokers),
                    topic_min_insync_replicas=max(1, min(3, brokers) - 1))


def test_three_nodes_have_their_own_ports_dirs_and_one_quorum(tmp_path: Path) -> None:
    kafka = Kafka(_cluster(tmp_path), principals=["admin"])
    pki = Pki(tmp_path / "secrets")
    props = [_props(n.properties(pki)) for n in kafka.nodes]
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    voters = {p["controller.quorum.voters"] for p in props}
    assert voters == {"1@127.0.0.1:30002,2@127.0.0.1:30012,3@127.0.0.1:30022"}
    assert props[1]["listeners"] == ("CLIENT://127.0.0.1:30010,INTERNAL://127.0.0.1:30011,"
                                     "CONTROLLER://127.0.0.1:30012")
    dirs = {p["log.dirs"] for p in props}
    assert len(dirs) == 3 and str(tmp_path / "kafka" / "data") in dirs
    for p in props:   # security stays on; the controller listener on loopback, mutual TLS
        assert p["listener.security.protocol.map"] == \
            "CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL"
        assert p["listener.name.controller.ssl.client.auth"] == "required"
        assert p["authorizer.class.name"].endswith("StandardAuthorizer")
        assert p["offsets.topic.replication.factor"] == "3"
        assert p["transaction.state.log.min.isr"] == "2"
        assert (p["default.replication.factor"], p["min.insync.replicas"]) == ("3", "2")
        assert p["unclean.leader.election.enable"] == "false"
    markers = {n.proc.marker for n in kafka.nodes}
    assert len(markers) == 3 and not any(a != b and a in b for a in markers for b in markers)
    assert kafka.settings.bootstrap.count(",") == 2


def test_one_node_keeps_its_single_broker_configuration(tmp_path: Path) -> None:
    kafka = Kafka(Settings(data_dir=tmp_path), principals=["admin"])
    props = _props(kafka.nodes[0].properties(Pki(tmp_path / "secrets")))
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["offsets.topic.replication.factor"] == "1"
    assert "min.insync.replicas" not in props and "default.replication.factor" not in props
    assert kafka.proc is kafka.nodes[0].proc and kafka.proc.name == "kafka"
    assert node_ports(kafka.settings, 0).client == 19092


def test_scram_argument_is_salted_never_the_password() -> None:
    salt = b"0123456789abcdef"
    arg = scram_argument("worker", "s3cret-pass", salt=salt)
    assert "s3cret-pass" not in arg
    expected = base64.b64encode(hashlib.pbkdf2_hmac("sha512", b"s3cret-pass", salt,
                                                    8192)).decode()
    assert arg == (f'SCRAM-SHA-512=[name=worker,iterations=8192,'
                   f'salt="{base64.b64encode(salt).decode()}",saltedpassword="{expected}"]')


def test_a_data_dir_of_another_broker_count_is_refused(tmp_path: Path) -> None:
    import pytest

    from streams.stack.process import StackError

    one = Kafka(Settings(data_dir=tmp_path), principals=[])
    (one.dir / "data").mkdir(parents=True)
    (one.dir / "data" / "meta.properties").write_text("cluster.id=abc\n")
    three = Kafka(_cluster(tmp_path), principals=[])
    with pytest.raises(StackError, match="cluster of 1 broker"):
        three._check_quorum()
