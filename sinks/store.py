"""Opening ClickHouse for a command, with the messages a person needs when it fails."""

from __future__ import annotations

import sys

from sinks.clickhouse.client import Backend, ClickHouseError, StoreBusyError, connect
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
