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
