"""Who runs ``ebi query`` and ``ebi report``: the calling reader, with their own login.

The login is ``clickhouse_user`` with ``clickhouse_password`` (``EBI_CLICKHOUSE_USER``,
``EBI_CLICKHOUSE_PASSWORD_FILE``; :class:`~streams.settings.Secret` values, never printed);
on the local stack a declared user's generated password is found by its name alone. Without
one, the identity's login is used (the local stack's admin, ``ebi_admin``). The sink's login
is refused: it writes, it does not read.

A reader may open one scope database (``<db>_r32``, ``<db>_ops``; see
:mod:`streams.access.clickhouse_roles`): when the URL's database is not theirs, it is found
as :func:`sinks.store.connect_own` finds it (``ebi dead-letters replay`` and ``ebi
reconcile`` do the same for an operator). Its ``scope`` table says what the scope holds,
and the commands say so on stderr.

The embedded store (chdb) has no users: whoever opens it reads everything. It is for one
person on one machine; :data:`EMBEDDED_NOTE` says so.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from sinks.clickhouse import Backend, ClickHouseError, StoreBusyError, connect
from sinks.clickhouse.config import ConfigError, display_url, login_url, parse_url
from sinks.clickhouse.regions import SCOPE_TABLE
from sinks.store import NotTheirDatabase, connect_own
from streams.credentials import CLICKHOUSE_USERS, clickhouse_login
from streams.settings import Settings

EMBEDDED_NOTE = ("the embedded store (chdb) has no users: no region or column restriction "
                 "applies, whoever opens it reads everything; keep it for one person on one "
                 "machine (docs/security.md, Data access)")


@dataclass(frozen=True)
class ScopeInfo:
    name: str
    region: str
    description: str


@dataclass
class Reader:
    backend: Backend
    user: str                  # "" for the embedded store
    scope: ScopeInfo | None    # None: not a scope database (the admin's base database)

    def note(self) -> str:
        if not self.user:
            return EMBEDDED_NOTE
        where = self.backend.config.database
        if self.scope is None:
            return f"as {self.user} in {where} (no scope: every row, nothing masked)"
        return f"as {self.user} in {where} (scope {self.scope.name}: {self.scope.description})"


class ReaderError(RuntimeError):
    """The caller cannot read as asked (the sink's login)."""


def _sink_users() -> set[str]:
    users = {CLICKHOUSE_USERS["sink"]}
    try:
        from streams.access.clickhouse_roles import data_users
        from streams.access.declaration import load_declaration

        users |= {u.name for u in data_users(load_declaration()).values() if u.role == "sink"}
    except Exception:   # no declaration here (an analyst's machine): the stack's name only
        pass
    return users


def _scope_info(backend: Backend) -> ScopeInfo | None:
    try:
        row = backend.query(f"SELECT name, region, description FROM {SCOPE_TABLE} "
                            "ORDER BY built_at DESC LIMIT 1").rows
    except ClickHouseError:
        return None
    return ScopeInfo(str(row[0][0]), str(row[0][1]), str(row[0][2])) if row else None


def connect_reader(settings: Settings) -> Reader:
    """The caller's connection (ClickHouseError, ConfigError or ReaderError when it cannot
    be had; messages never carry a password)."""
    config = parse_url(settings.clickhouse)
    if config.kind == "chdb":
        return Reader(connect(settings.clickhouse), "", None)
    login = clickhouse_login(settings)
    user = login.username if login is not None else config.user
    if (settings.identity == "sink" and not settings.clickhouse_user) or user in _sink_users():
        raise ReaderError(f"{user} is the sink's login: queries and reports run as the "
                          "reader who asks (set EBI_CLICKHOUSE_USER and "
                          "EBI_CLICKHOUSE_PASSWORD_FILE; docs/analysts.md)")
    backend = connect_own(login_url(settings), user)
    return Reader(backend, user, _scope_info(backend))


def open_reader(settings: Settings, command: str) -> Reader | None:
    """:func:`connect_reader`, or None after printing why not; prints who reads what."""
    try:
        reader = connect_reader(settings)
    except (ReaderError, NotTheirDatabase) as exc:
        print(f"ebi {command}: {exc}", file=sys.stderr)
        return None
    except ConfigError as exc:
        print(f"ebi {command}: bad EBI_CLICKHOUSE_URL: {exc}", file=sys.stderr)
        return None
    except StoreBusyError as exc:
        print(f"ebi {command}: ClickHouse store busy: {exc}", file=sys.stderr)
        return None
    except ClickHouseError as exc:   # unreachable, or the login refused
        print(f"ebi {command}: ClickHouse at {display_url(settings.clickhouse)}: {exc}",
              file=sys.stderr)
        return None
    print(f"ebi {command}: {reader.note()}", file=sys.stderr)
    return reader

