"""``ebi stack up | down | status``.

``up`` also provisions the local broker as the admin: the topics of the catalog and the
ACLs of deploy/access/local.toml (an external cluster is provisioned with ``ebi access
apply``), and makes the local dev signing keyring (:mod:`streams.signing.devkeys`). Status
lines never show a password or a key.
"""

from __future__ import annotations

import argparse

from streams.settings import Settings
from streams.stack import Stack


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--brokers", type=int, default=None, metavar="N",
                        help="Kafka brokers of the local stack (setting kafka_brokers); with "
                        "more than one and topic_replication_factor left at 1, topics get "
                        "min(N, 3) replicas and min.insync.replicas one less")
    parser.add_argument("--clickhouse-replicas", type=int, default=None, metavar="N",
                        help="clickhouse-server replicas of the local stack, with ZooKeeper "
                        "(setting clickhouse_replicas)")


def cluster_settings(settings: Settings, brokers: int | None,
                     clickhouse_replicas: int | None = None) -> Settings:
    """``settings`` with the local stack's broker and replica counts of the command line."""
    changes: dict[str, object] = {}
    if brokers is not None:
        changes["kafka_brokers"] = brokers
        if brokers > 1 and settings.topic_replication_factor == 1:
            replicas = min(brokers, 3)
            changes.update(topic_replication_factor=replicas,
                           topic_min_insync_replicas=max(1, replicas - 1))
    if clickhouse_replicas is not None:
        changes["clickhouse_replicas"] = clickhouse_replicas
    return settings.replace(**changes) if changes else settings


def dev_keyring_line(settings: Settings) -> str:
    """Make the local dev signing keyring (if missing) and say where it is (no secret)."""
    from streams.signing.devkeys import ensure, keyring_dir
    from streams.signing.trust import default_trust_file

    keyring = ensure(settings)
    registrar, _ = keyring.registrar()
    return (f"signing: local dev keyring {keyring_dir(settings.data_dir)} (registrar key "
            f"{registrar.key_id}, trust file {default_trust_file(settings)}); senders' keys "
            "are registered on first use")


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings = cluster_settings(settings, getattr(args, "brokers", None),
                                getattr(args, "clickhouse_replicas", None))
    stack = Stack(settings)
    if args.action == "up":
        stack.up()
        for status in stack.status():
            print(status.line())
        if not settings.kafka_bootstrap:
            from streams.access.provision import provision

            print(f"provisioned as {settings.kafka_username or settings.identity}: "
                  f"{provision(settings).summary()}")
            print(dev_keyring_line(settings))
        return 0
    if args.action == "down":
        stopped = stack.down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        left = stack.leftover_processes()
        if left:
            print("still running: " + ", ".join(left))
            return 1
        return 0
    statuses = stack.status()
    for status in statuses:
        print(status.line())
    running = [s.name for s in statuses if s.managed and s.running]
    print("local processes: " + (", ".join(running) if running else "none running"))
    return 0
