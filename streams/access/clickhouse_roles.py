"""Who may read what in ClickHouse: the ``[clickhouse.users]`` of the access declaration.

    [clickhouse.users]
    ebi_admin = { role = "admin" }
    ebi_sink = { role = "sink" }
    analyst_32 = { role = "analyst", region = "32" }
    analyst_32_cleared = { role = "analyst", region = "32", clearance = ["trade_secret"] }
    ebi_operator = { role = "operator" }
    ebi_auditor = { role = "auditor" }

==========  ===============================================================================
admin       migrations and provisioning: everything
sink        INSERT into the tables the sink writes (and, through their materialized views,
            the rollups and scope copies); reads only its own bookkeeping (ledger offsets,
            row ids of a recheck); no DDL (the admin migrates), no analyst view
analyst     the rows of one GB/T 2260 prefix (``region``: province 2 digits, city 4,
            county 6) in its scope database ``<db>_r<region>``; trade secrets and personal
            data masked (NULL) unless ``clearance`` lists them (``_ts``, ``_pd`` scopes);
            no dead letters, no ledger
operator    every region, ``<db>_ops``: dead letters whole (their raw bytes, to replay
            them), the ledger; trade secrets and personal data masked unless cleared
auditor     every region, ``<db>_audit``: the ledger, dead letters without their bytes;
            masked unless cleared
==========  ===============================================================================

Users of the same role, region and clearance share a scope (:class:`~sinks.clickhouse.
regions.Scope`). How a server enforces it depends on the server:

- without access control (Debian's 18.16): the scope databases are *copies* the sink's
  inserts fill (:func:`sinks.clickhouse.regions.build`), and users.xml (:func:`users_xml`)
  lets each reader open its scope database only (``allow_databases``, profile
  ``readonly = 1``: no writes, no settings, no table functions), the sink only the base
  database (profile ``allow_ddl = 0``);
- with access control (20.4+): :func:`rbac_sql`, users, roles, row policies by region,
  column grants, and masked views (``SQL SECURITY DEFINER``, 24.2+) in the same scope
  databases;
- the embedded store (chdb) has no users: single-user, no restriction at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from schemas.catalog import load_catalog
from schemas.catalog.model import Catalog
from schemas.classification import OPEN, PERSONAL, TRADE_SECRET
from sinks.clickhouse.backend import Backend, Features
from sinks.clickhouse.regions import (
    REGION_COLUMN,
    Scope,
    build,
    drop,
    existing,
    masked_views,
    rollup_visible,
    scope_rollups,
    sources,
    visible_columns,
)
from sinks.clickhouse.schema import table_specs
from streams.access.declaration import Declaration, DeclarationError
from streams.settings import Secret, Settings

ROLES = ("admin", "sink", "analyst", "operator", "auditor")
CLEARANCES = {TRADE_SECRET: "ts", PERSONAL: "pd"}
RBAC_FROM = (20, 4)          # users, roles, row policies and column grants in SQL
DEFINER_FROM = (24, 2)       # SQL SECURITY DEFINER views
SINK_PROFILE, READER_PROFILE = "ebi_writer", "ebi_reader"
LOOPBACK = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class DataUser:
    """A declared ClickHouse user and what it may read."""

    name: str
    role: str
    region: str = ""
    clearance: tuple[str, ...] = ()

    @property
    def reader(self) -> bool:
        return self.role in ("analyst", "operator", "auditor")

    def scope(self) -> Scope | None:
        if not self.reader:
            return None
        suffix = "".join(f"_{CLEARANCES[c]}" for c in sorted(self.clearance))
        allowed = OPEN | frozenset(self.clearance)
        if self.role == "analyst":
            return Scope(f"r{self.region}{suffix}", self.region, allowed)
        if self.role == "operator":
            return Scope(f"ops{suffix}", "", allowed, "full", True)
        return Scope(f"audit{suffix}", "", allowed, "masked", True)


def _prefix(value: str) -> str:
    from streams.report.sections import ScopeError as RegionError
    from streams.report.sections import region_prefix

    try:
        return region_prefix(value)
    except RegionError as exc:
        raise ValueError(str(exc)) from None


def data_users(declaration: Declaration) -> dict[str, DataUser]:
    """The declared ClickHouse users, checked (DeclarationError names file and user)."""
    out: dict[str, DataUser] = {}
    file = declaration.path
    for name, entry in declaration.clickhouse_users.items():
        where = f"{file}: [clickhouse.users] {name}"
        if not name.replace("_", "").isalnum() or not name[0].isalpha() or len(name) > 64:
            raise DeclarationError(f"{where}: a ClickHouse user name is letters, digits and "
                                   "'_', starting with a letter")
        if not isinstance(entry, dict):
            raise DeclarationError(f"{where}: expected {{ role = \"...\" }}")
        unknown = sorted(set(entry) - {"role", "region", "clearance"})
        if unknown:
            raise DeclarationError(f"{where}: unknown key(s) {', '.join(unknown)}; expected "
                                   "role, region, clearance")
        role = entry.get("role")
        if role not in ROLES:
            raise DeclarationError(f"{where}: role {role!r}; known: {', '.join(ROLES)}")
        region = str(entry.get("region", ""))
        if role == "analyst":
            if not region:
                raise DeclarationError(f"{where}: an analyst needs a region (GB/T 2260 "
                                       "prefix: 2 digits a province, 4 a city, 6 a county)")
            try:
                region = _prefix(region)
            except ValueError as exc:
                raise DeclarationError(f"{where}: {exc}") from None
        elif region:
            raise DeclarationError(f"{where}: only analysts have a region ({role} reads "
                                   "every region)")
        clearance = entry.get("clearance", [])
        if not isinstance(clearance, list) or any(c not in CLEARANCES for c in clearance):
            raise DeclarationError(f"{where}: clearance is a list of "
                                   f"{', '.join(CLEARANCES)}")
        if clearance and role not in ("analyst", "operator", "auditor"):
            raise DeclarationError(f"{where}: only readers have a clearance")
        out[name] = DataUser(name, str(role), region, tuple(sorted(set(clearance))))
    return out


def scopes(users: Iterable[DataUser]) -> dict[str, Scope]:
    """Scope name -> scope, for every reader."""
    out: dict[str, Scope] = {}
    for user in users:
        scope = user.scope()
        if scope is not None:
            out[scope.name] = scope
    return dict(sorted(out.items()))


# -- servers without access control: users.xml -----------------------------------------

def _digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def users_xml(users: Iterable[DataUser], passwords: Mapping[str, str], database: str,
              networks: Iterable[str] = LOOPBACK) -> str:
    """users.xml for a server without access control: every declared user with its
    password digest, ``default`` locked with its own (unused) password."""
    nets = "".join(f"<ip>{escape(n)}</ip>" for n in networks)
    entries = []

    def user(name: str, profile: str, databases: Iterable[str] = ()) -> None:
        if name not in passwords:
            raise DeclarationError(f"no password for ClickHouse user {name!r}")
        allow = "".join(f"<database>{escape(d)}</database>" for d in databases)
        entries.append(
            f"        <{name}>\n"
            f"            <password_sha256_hex>{_digest(passwords[name])}"
            "</password_sha256_hex>\n"
            f"            <networks>{nets}</networks>\n"
            f"            <profile>{profile}</profile>\n"
            "            <quota>default</quota>\n"
            + (f"            <allow_databases>{allow}</allow_databases>\n" if allow else "")
            + f"        </{name}>\n")

    user("default", "default")
    for u in sorted(users, key=lambda u: u.name):
        scope = u.scope()
        if u.role == "admin":
            user(u.name, "default")
        elif u.role == "sink":
            user(u.name, SINK_PROFILE, [database])
        elif scope is not None:
            user(u.name, READER_PROFILE, [scope.database(database)])
    limit = "<max_memory_usage>4000000000</max_memory_usage>"
    return f"""<?xml version="1.0"?>
<!-- Generated by ebi (streams/access/clickhouse_roles.py) from the access declaration. -->
<yandex>
    <profiles>
        <default>{limit}</default>
        <!-- the sink: inserts, no DDL (the admin migrates) -->
        <{SINK_PROFILE}>{limit}<allow_ddl>0</allow_ddl></{SINK_PROFILE}>
        <!-- readers: SELECT only, no settings, no table functions -->
        <{READER_PROFILE}>{limit}<readonly>1</readonly></{READER_PROFILE}>
    </profiles>
    <users>
{''.join(entries)}    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
    </interval></default></quotas>
</yandex>
"""


# -- servers with access control: SQL ------------------------------------------------------

def _role(db: str, name: str) -> str:
    return f"{db}_{name}"


def rbac_sql(users: Mapping[str, DataUser], db: str, features: Features,
             passwords: Mapping[str, Secret], catalog: Catalog | None = None) -> list[str]:
    """The statements that give a server with access control (20.4+) the declared users,
    their roles, row policies, column grants and (24.2+) masked views. Users without a
    known password are left to the operator (a comment says so): a user is never created
    without one. Run as an admin with access management; running it again changes
    nothing."""
    catalog = catalog or load_catalog()
    found = scopes(users.values())
    sink = _role(db, "sink")
    out = [f"-- ebi data access for database {db} (ClickHouse {features.version_text})",
           f"CREATE ROLE IF NOT EXISTS {sink}"]
    out += [f"CREATE ROLE IF NOT EXISTS {_role(db, s)}" for s in found]
    # the sink: inserts into its tables (and the rollups its inserts feed), reads only its
    # own bookkeeping; no DDL
    specs = table_specs(catalog)
    written = [*specs, "ledger", "consumed", *scope_rollups(Scope("all"), specs)]
    out += [f"GRANT INSERT ON {db}.{t} TO {sink}" for t in written]
    out.append(f"GRANT SELECT(source_topic, source_partition, source_offset) ON {db}.ledger "
               f"TO {sink}")
    for spec in specs.values():
        if spec.table.row_id:
            out.append(f"GRANT SELECT({spec.table.row_id}, {spec.table.row_time}) ON "
                       f"{db}.{spec.name} TO {sink}")
    definer = features.version >= DEFINER_FROM
    regional_tables: set[str] = set()
    for name, scope in found.items():
        role = _role(db, name)
        srcs = sources(scope, features, catalog)
        out.append(f"-- scope {name}: {scope.describe()}")
        for src in srcs:
            cols = visible_columns(src, scope)
            if any(c == REGION_COLUMN for c, _ in src.columns):
                regional_tables.add(src.name)
            if cols:
                out.append(f"GRANT SELECT({', '.join(cols)}) ON {db}.{src.name} TO {role}")
        for r in scope_rollups(scope, [src.name for src in srcs]):
            regional_tables.add(r)
            cols = rollup_visible(r, scope, features, catalog)
            out.append(f"GRANT SELECT({', '.join(cols)}) ON {db}.{r} TO {role}")
        if definer:
            out += masked_views(db, scope, features, catalog)
            out.append(f"GRANT SELECT ON {scope.database(db)}.* TO {role}")
        else:
            out.append(f"-- masked views ({scope.database(db)}) need SQL SECURITY DEFINER "
                       f"(ClickHouse {'.'.join(map(str, DEFINER_FROM))}+): {name} reads the "
                       "granted columns of the base tables only")
    regional = [sc for sc in found.values() if sc.region]
    others = ", ".join(_role(db, sc.name) for sc in regional)
    for table in sorted(regional_tables):
        for sc in regional:
            out.append(f"CREATE ROW POLICY OR REPLACE {_role(db, sc.name)} ON {db}.{table} "
                       f"FOR SELECT USING {REGION_COLUMN} LIKE '{sc.region}%' "
                       f"TO {_role(db, sc.name)}")
        out.append(f"CREATE ROW POLICY OR REPLACE {db}_every_region ON {db}.{table} FOR "
                   f"SELECT USING 1 TO ALL{f' EXCEPT {others}' if others else ''}")
    for user in sorted(users.values(), key=lambda u: u.name):
        if user.role == "admin":
            out.append(f"-- {user.name}: the admin (access management), not created here")
            continue
        own = user.scope()
        role = _role(db, own.name) if own is not None else sink
        password = passwords.get(user.name)
        if password:
            digest = _digest(password.reveal())
            out.append(f"CREATE USER IF NOT EXISTS {user.name} IDENTIFIED WITH sha256_hash BY "
                       f"'{digest}'")
            out.append(f"ALTER USER {user.name} IDENTIFIED WITH sha256_hash BY '{digest}'")
        else:
            out.append(f"-- {user.name}: no password known here; create the user with one "
                       f"(CREATE USER {user.name} IDENTIFIED WITH sha256_password BY ...), "
                       "then run this again")
        out.append(f"GRANT {role} TO {user.name}")
        out.append(f"ALTER USER {user.name} DEFAULT ROLE {role}")
    return out


# -- provisioning -------------------------------------------------------------------------

@dataclass
class DataAccess:
    """What ``ebi access apply`` did in ClickHouse."""

    how: str                              # "embedded", "copies" or "access control"
    built: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    statements: int = 0
    users_file: Path | None = None

    def summary(self) -> str:
        if self.how == "embedded":
            return ("ClickHouse: the embedded store (chdb) has no users: single-user, nothing "
                    "to provision")
        if self.how == "access control":
            return f"ClickHouse (access control): {self.statements} statement(s) applied"
        parts = [f"{len(self.built)} scope(s) built", f"{len(self.unchanged)} up to date",
                 f"{len(self.dropped)} removed"]
        users = f"; users in {self.users_file}" if self.users_file else \
            "; users.xml is the server operator's (`ebi access users-xml`)"
        return f"ClickHouse (scope databases): {', '.join(parts)}{users}"


def local_passwords(settings: Settings, users: Iterable[str]) -> dict[str, Secret]:
    """The local stack's generated ClickHouse passwords of ``users`` (those it has)."""
    from streams.credentials import read_credentials

    table = read_credentials(settings.data_dir).get("clickhouse", {})
    return {u: Secret(table[u]) for u in users if u in table}


def apply(backend: Backend, declaration: Declaration, settings: Settings,
          catalog: Catalog | None = None) -> DataAccess:
    """Make the server's data access that of the declaration, as the admin, after
    ``ebi migrate``: the scope databases (and, for the stack's own server, users.xml) on a
    server without access control, the statements of :func:`rbac_sql` on one with it.
    Idempotent."""
    catalog = catalog or load_catalog(settings.catalog)
    users = data_users(declaration)
    db = backend.config.database
    if backend.config.kind == "chdb":
        return DataAccess("embedded")
    if backend.features.version >= RBAC_FROM:
        statements = [s for s in rbac_sql(users, db, backend.features,
                                          local_passwords(settings, users), catalog)
                      if not s.startswith("--")]
        for statement in statements:
            backend.command(statement)
        return DataAccess("access control", statements=len(statements))
    done = DataAccess("copies")
    wanted = scopes(users.values())
    for name, scope in wanted.items():
        (done.built if build(backend, scope, catalog) else done.unchanged).append(name)
    for name in sorted(existing(backend, db) - set(wanted)):
        drop(backend, db, name)
        done.dropped.append(name)
    done.users_file = write_users(settings, declaration, db)
    return done


def write_users(settings: Settings, declaration: Declaration, database: str) -> Path | None:
    """For the stack's own server (each of its replicas): its users.xml from the
    declaration (the server reloads it within seconds); None for any other server."""
    from streams.stack.clickhouse import ClickHouseServer

    servers = [ClickHouseServer(settings, i) for i in range(settings.clickhouse_replicas)]
    if not servers[0].managed:
        return None
    paths = [server.write_users(declaration, database) for server in servers]
    return paths[0]


def describe(declaration: Declaration) -> list[str]:
    """Lines for ``ebi access show``: each ClickHouse user, its role and scope."""
    out = []
    for user in sorted(data_users(declaration).values(), key=lambda u: u.name):
        scope = user.scope()
        what = {"admin": "everything (migrations, provisioning)",
                "sink": "inserts into the base tables, no DDL, no views"}.get(
            user.role, f"scope {scope.name if scope else ''}: "
                       f"{scope.describe() if scope else ''}")
        out.append(f"  {user.name:<24} {user.role:<9} {what}")
    return out
