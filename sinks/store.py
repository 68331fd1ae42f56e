"""Opening ClickHouse for a command, with the messages a person needs when it fails.

A reader's login (an operator, an auditor, an analyst: :mod:`streams.access.clickhouse_roles`)
may open one scope database only (``<db>_ops``, ``<db>_r32``): when the URL names the base
database, :func:`connect_own` finds theirs by asking the server which databases the user may
open (18.16 and servers with access control list only those). A scope database holds its
tables under the base tables' names, so the commands' queries run there unchanged.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from sinks.clickhouse import Backend, ClickHouseError, StoreBusyError, TransientError, connect
from sinks.clickhouse.config import ConfigError, display_url, login_url, parse_url
from streams.settings import Settings


class NotTheirDatabase(ClickHouseError):
    """The login may not open the database asked for, and not exactly one other either."""


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def connect_own(url: str, user: str) -> Backend:
    """The database of ``url``, or else the one database ``user`` may open (the error of
    opening the one asked for is raised again when the user cannot log in at all)."""
    try:
        return connect(url)
    except ClickHouseError as exc:
        # 18.16 drops the connection of a user who may not open the database asked for
        # (the driver sees EOF); access control says so (291, 497)
        error = exc
    try:
        probe = connect(with_database(url, "system"))
    except ClickHouseError:
        raise error from None
    try:
        names = [str(n) for (n,) in probe.query(
            "SELECT name FROM system.databases WHERE name != 'system' ORDER BY name").rows]
    finally:
        probe.close()
    if len(names) != 1:
        have = ", ".join(names) or "none"
        raise NotTheirDatabase(f"{user} may not open database {parse_url(url).database}; "
                               f"databases it may open: {have} (name one in "
                               "EBI_CLICKHOUSE_URL)")
    return connect(with_database(url, names[0]))


def open_store(settings: Settings, command: str, create_database: bool = False,
               own_database: bool = False) -> Backend | None:
    """The backend for ``settings.clickhouse``, or None after printing why it cannot open.
    ``own_database``: a reader's command (replay, reconcile) that may run in the login's
    own scope database (:func:`connect_own`; it says so on stderr)."""
    try:
        url = login_url(settings)
        config = parse_url(url)
        if not own_database or config.kind == "chdb":
            return connect(url, create_database=create_database)
        backend = connect_own(url, config.user)
        if backend.config.database != config.database:
            print(f"ebi {command}: as {config.user} in {backend.config.database}",
                  file=sys.stderr)
        return backend
    except NotTheirDatabase as exc:
        print(f"ebi {command}: {exc}", file=sys.stderr)
    except StoreBusyError as exc:
        print(f"ebi {command}: ClickHouse store busy: {exc}", file=sys.stderr)
    except ConfigError as exc:
        print(f"ebi {command}: bad EBI_CLICKHOUSE_URL: {exc}", file=sys.stderr)
    except ClickHouseError as exc:
        print(f"ebi {command}: cannot reach ClickHouse at {display_url(settings.clickhouse)}: "
              f"{exc}",
              file=sys.stderr)
    return None


def wait_for_store(settings: Settings, command: str, should_stop: Callable[[], bool],
                   create_database: bool = False, every: float = 10.0) -> Backend | None:
    """Like :func:`open_store`, but while ClickHouse is unreachable (a transient error) it
    waits and tries again, saying so every ``every`` seconds, until ``should_stop()``."""
    delay, said = 0.5, 0.0
    while not should_stop():
        try:
            return connect(login_url(settings), create_database=create_database)
        except TransientError as exc:
            now = time.monotonic()
            if now - said >= every:
                print(f"ebi {command}: waiting for ClickHouse at "
                      f"{display_url(settings.clickhouse)}: {exc}", file=sys.stderr, flush=True)
                said = now
        except ClickHouseError:
            return open_store(settings, command, create_database)   # says why, returns None
        time.sleep(delay)
        delay = min(5.0, delay * 2)
    return None
