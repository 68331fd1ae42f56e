"""Opening ClickHouse for a command, with the messages a person needs when it fails."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from sinks.clickhouse import Backend, ClickHouseError, StoreBusyError, TransientError, connect
from sinks.clickhouse.config import ConfigError, display_url, login_url
from streams.settings import Settings


def open_store(settings: Settings, command: str, create_database: bool = False
               ) -> Backend | None:
    """The backend for ``settings.clickhouse``, or None after printing why it cannot open."""
    try:
        return connect(login_url(settings), create_database=create_database)
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
