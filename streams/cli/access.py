"""``ebi access apply | show | sql | users-xml``: who may say what (Kafka principals' ACLs) and
who may read what (ClickHouse users), from one access declaration.

``apply`` creates the pipeline's topics if missing and makes the ACLs of every principal of
the declaration (deploy/access/local.toml unless ``--file``) exactly those of its roles,
printing what it created (+) and removed (-); then, in ClickHouse (after ``ebi migrate``),
the data access of ``[clickhouse.users]``: on a server without access control (18.16) the
scope databases and, for the stack's own server, users.xml; on one with access control the
statements of ``ebi access sql``; the embedded store has no users. Running it again changes
nothing. ``--only kafka|clickhouse`` does one half. ``show`` prints the ACLs on the cluster
by principal and the ClickHouse users with their scopes. ``sql`` prints the users, roles,
row policies, column grants and masked views for a server with access control
(``--server-version``, default 24.8). ``users-xml --out FILE`` writes users.xml for a
server without access control (the declared users with their password digests). All run as
the admin (``identity = admin`` on the local stack, or ``kafka_username``/``kafka_password``
and ``clickhouse_user``/``clickhouse_password`` of one).
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from streams.settings import Secret, Settings

if TYPE_CHECKING:
    from streams.access.declaration import Declaration


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["apply", "show", "sql", "users-xml"])
    parser.add_argument("--file", metavar="F", help="access declaration (TOML; default "
                        "deploy/access/local.toml)")
    parser.add_argument("--only", choices=["kafka", "clickhouse"],
                        help="apply: only the Kafka ACLs, or only ClickHouse's data access")
    parser.add_argument("--server-version", default="24.8", metavar="V",
                        help="sql: the ClickHouse version to write for (default 24.8)")
    parser.add_argument("--out", metavar="FILE", type=Path, help="users-xml: where to write")
    parser.add_argument("--passwords", metavar="FILE", type=Path,
                        help="sql, users-xml: TOML of user = \"password\" (default: the local "
                             "stack's generated ones)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.access.declaration import DeclarationError, load_declaration
    from streams.credentials import CredentialsError

    try:
        declaration = load_declaration(args.file)
        if args.action == "apply":
            return _apply(args, settings, declaration)
        if args.action == "show":
            return _show(args, settings, declaration)
        if args.action == "sql":
            return _sql(args, settings, declaration)
        return _users_xml(args, settings, declaration)
    except (DeclarationError, CredentialsError) as exc:
        print(f"ebi access {args.action}: {exc}", file=sys.stderr)
        return 2


def _apply(args: argparse.Namespace, settings: Settings, declaration: Declaration) -> int:
    from streams.access.provision import provision

    if args.only != "clickhouse":
        try:
            done = provision(settings, declaration)
        except Exception as exc:   # KafkaException and friends: say where
            print(f"ebi access apply: Kafka at {settings.bootstrap}: {exc}", file=sys.stderr)
            return 1
        for line in done.lines:
            print(line)
        print(f"ebi access apply ({declaration.path}): {done.summary()}")
    if args.only != "kafka":
        return _apply_clickhouse(settings, declaration)
    return 0


def _apply_clickhouse(settings: Settings, declaration: Declaration) -> int:
    from sinks.clickhouse import ClickHouseError, SchemaError
    from sinks.clickhouse.config import display_url, parse_url
    from sinks.store import open_store
    from streams.access import clickhouse_roles

    if parse_url(settings.clickhouse).kind == "chdb":
        print(f"ebi access apply: {clickhouse_roles.DataAccess('embedded').summary()}")
        return 0
    backend = open_store(settings, "access apply")
    if backend is None:
        return 1
    try:
        done = clickhouse_roles.apply(backend, declaration, settings)
    except SchemaError as exc:
        print(f"ebi access apply: ClickHouse at {display_url(settings.clickhouse)}: {exc}; "
              "run `ebi migrate` first", file=sys.stderr)
        return 1
    except ClickHouseError as exc:
        print(f"ebi access apply: ClickHouse at {display_url(settings.clickhouse)}: {exc}",
              file=sys.stderr)
        return 1
    finally:
        backend.close()
    for name in done.built:
        print(f"+ scope {name}")
    for name in done.dropped:
        print(f"- scope {name}")
    print(f"ebi access apply: {done.summary()}")
    return 0


def _show(args: argparse.Namespace, settings: Settings, declaration: Declaration) -> int:
    from streams import clients
    from streams.access import clickhouse_roles, kafka_acls

    if settings.kafka_security == "plaintext":
        print("ebi access show: kafka_security = plaintext: the cluster has no ACLs")
    else:
        try:
            grants = sorted(kafka_acls.current(clients.admin(settings)))
        except Exception as exc:   # KafkaException and friends: say where
            print(f"ebi access show: Kafka at {settings.bootstrap}: {exc}", file=sys.stderr)
            return 1
        declared = {f"User:{p}": roles
                    for p, roles in declaration.principals.items()}
        by_principal: dict[str, list[kafka_acls.Grant]] = {}
        for grant in grants:
            by_principal.setdefault(grant.principal, []).append(grant)
        for principal in sorted(set(by_principal) | set(declared)):
            roles = ", ".join(declared.get(principal, ())) or "not declared"
            print(f"{principal} ({roles})")
            for grant in by_principal.get(principal, []):
                print(f"  {grant.line()}")
    print("ClickHouse users (declared):")
    for line in clickhouse_roles.describe(declaration):
        print(line)
    return 0


def _passwords(args: argparse.Namespace, settings: Settings,
               users: list[str]) -> dict[str, Secret]:
    from streams.access.clickhouse_roles import local_passwords
    from streams.credentials import CredentialsError

    if args.passwords is None:
        return local_passwords(settings, users)
    try:
        with open(args.passwords, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CredentialsError(f"cannot read passwords from {args.passwords}: {exc}") from None
    return {u: Secret(str(data[u])) for u in users if u in data}


def _sql(args: argparse.Namespace, settings: Settings, declaration: Declaration) -> int:
    from sinks.clickhouse.backend import Features, parse_version
    from sinks.clickhouse.config import parse_url
    from streams.access import clickhouse_roles

    version = parse_version(args.server_version)
    if len(version) < 2 or version < clickhouse_roles.RBAC_FROM:
        print(f"ebi access sql: ClickHouse {args.server_version} has no SQL access control "
              "(20.4+); on such a server `ebi access apply` builds scope databases and "
              "`ebi access users-xml` writes its users", file=sys.stderr)
        return 2
    users = clickhouse_roles.data_users(declaration)
    database = parse_url(settings.clickhouse).database
    for statement in clickhouse_roles.rbac_sql(
            users, database, Features.for_version(version),
            _passwords(args, settings, list(users)), None):
        print(statement if statement.startswith("--") else f"{statement};")
    return 0


def _users_xml(args: argparse.Namespace, settings: Settings, declaration: Declaration) -> int:
    from sinks.clickhouse.config import parse_url
    from streams.access import clickhouse_roles
    from streams.stack.pki import write_private

    if args.out is None:
        print("ebi access users-xml: give --out FILE (it holds password digests)",
              file=sys.stderr)
        return 2
    users = clickhouse_roles.data_users(declaration)
    names = ["default", *users]
    passwords = {u: p.reveal() for u, p in _passwords(args, settings, names).items()}
    missing = [u for u in names if u not in passwords]
    if missing:
        print(f"ebi access users-xml: no password for {', '.join(missing)} (give them in "
              "--passwords FILE)", file=sys.stderr)
        return 2
    text = clickhouse_roles.users_xml(users.values(), passwords,
                                      parse_url(settings.clickhouse).database)
    write_private(args.out, text.encode())
    print(f"ebi access users-xml: {len(users) + 1} users written to {args.out}")
    return 0
