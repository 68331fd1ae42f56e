"""``ebi access apply | show``: Kafka principals' ACLs from the access declaration.

``apply`` creates the pipeline's topics if missing and makes the ACLs of every principal of
the declaration (deploy/access/local.toml unless ``--file``) exactly those of its roles,
printing what it created (+) and removed (-); running it again changes nothing. ``show``
prints the ACLs on the cluster, by principal. Both run as the admin (``identity = admin``
on the local stack, or ``kafka_username``/``kafka_password`` of a super user).
"""

from __future__ import annotations

import argparse
import sys

from streams.settings import Settings


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["apply", "show"])
    parser.add_argument("--file", metavar="F", help="access declaration (TOML; default "
                        "deploy/access/local.toml)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams import clients
    from streams.access import kafka_acls
    from streams.access.declaration import DeclarationError, load_declaration
    from streams.access.provision import provision
    from streams.credentials import CredentialsError

    try:
        declaration = load_declaration(args.file)
        if args.action == "apply":
            done = provision(settings, declaration)
            for line in done.lines:
                print(line)
            print(f"ebi access apply ({declaration.path}): {done.summary()}")
            return 0
        if settings.kafka_security == "plaintext":
            print("ebi access show: kafka_security = plaintext: the cluster has no ACLs")
            return 0
        grants = sorted(kafka_acls.current(clients.admin(settings)))
        declared = {f"User:{p}": roles for p, roles in declaration.principals.items()}
        by_principal: dict[str, list[kafka_acls.Grant]] = {}
        for grant in grants:
            by_principal.setdefault(grant.principal, []).append(grant)
        for principal in sorted(set(by_principal) | set(declared)):
            roles = ", ".join(declared.get(principal, ())) or "not declared"
            print(f"{principal} ({roles})")
            for grant in by_principal.get(principal, []):
                print(f"  {grant.line()}")
        return 0
    except (DeclarationError, CredentialsError) as exc:
        print(f"ebi access {args.action}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:   # KafkaException and friends: say where
        print(f"ebi access {args.action}: Kafka at {settings.bootstrap}: {exc}",
              file=sys.stderr)
        return 1
