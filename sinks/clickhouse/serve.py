"""Read-only queries into the embedded store while the sink owns it.

chdb lets one process open a data directory, and during ``make run`` that is the sink. So
the sink answers read-only queries over a small subset of ClickHouse's HTTP interface:
``POST /`` (or ``GET /?query=...``) with the SQL, the key in ``X-ClickHouse-Key``, the
result as JSONCompact. Only statements that read are accepted (SELECT, WITH, SHOW,
DESCRIBE, EXISTS, EXPLAIN), each with ``readonly = 1`` and a time limit. The server listens
on loopback on a free port and writes where it is (and a fresh random key) to
``<store>/ebi-query.json`` (mode 0600, removed when it stops), which
:class:`~sinks.clickhouse.remote.RemoteBackend` reads: ``ebi query``, ``ebi report`` and
``ebi reconcile`` then work while the pipeline runs. A server ClickHouse needs none of this.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sinks.clickhouse.backend import ClickHouseError

log = logging.getLogger(__name__)
ENDPOINT_FILE = "ebi-query.json"
READS = re.compile(r"^\s*(\(\s*)*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS|EXPLAIN)\b", re.I)
MAX_SQL = 100_000
LIMITS = " SETTINGS readonly = 1, max_execution_time = 30"


SELECTS = re.compile(r"^\s*(\(\s*)*(SELECT|WITH)\b", re.I)


def read_only(sql: str) -> bool:
    """The statement only reads (and is one statement, writing no file)."""
    body = sql.strip().rstrip(";")
    return (bool(READS.match(body)) and ";" not in body and len(body) <= MAX_SQL
            and "OUTFILE" not in body.upper())


def endpoint_path(store: Path) -> Path:
    return store / ENDPOINT_FILE


class QueryServer:
    """Serves read-only queries of ``backend`` (a ChdbBackend: its ``query_text`` and
    ``lock``) on ``host``, a free port."""

    def __init__(self, backend: object, store: Path, host: str = "127.0.0.1") -> None:
        self.backend = backend
        self.store = store
        self.host = host
        self.key = secrets.token_urlsafe(24)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://{self.host}:{self._httpd.server_address[1]}/"

    def start(self) -> None:
        httpd = ThreadingHTTPServer((self.host, 0), _handler(self))
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="query-http",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        path = endpoint_path(self.store)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"url": self.url, "key": self.key, "pid": os.getpid()}, handle)
        tmp.replace(path)
        log.info("read-only queries of %s on %s", self.store, self.url)

    def stop(self) -> None:
        endpoint_path(self.store).unlink(missing_ok=True)
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def answer(self, sql: str, key: str | None) -> tuple[int, bytes]:
        if not key or not secrets.compare_digest(key, self.key):
            return 403, b"Code: 516. the key is missing or wrong (see ebi-query.json)\n"
        if not read_only(sql):
            return 403, (b"Code: 164. only one statement that reads (SELECT, WITH, SHOW, "
                         b"DESCRIBE, EXISTS, EXPLAIN) while the sink owns the store\n")
        body = sql.strip().rstrip(";")
        if SELECTS.match(body) and "SETTINGS" not in body.upper():
            body += LIMITS
        try:
            text = self.backend.query_text(body)  # type: ignore[attr-defined]
        except ClickHouseError as exc:
            code = f"Code: {exc.code}. " if exc.code else ""
            return 500, f"{code}{exc}\n".encode()
        return 200, text.encode()


def _handler(server: QueryServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "ebi-query"

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8"
                             if status == 200 else "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _sql(self) -> str:
            params = parse_qs(urlsplit(self.path).query)
            sql = params.get("query", [""])[-1]
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_SQL:
                return ""
            if length:
                sql = (sql + "\n" if sql else "") + self.rfile.read(length).decode(
                    "utf-8", "replace")
            return sql

        def do_GET(self) -> None:
            self._reply(*server.answer(self._sql(), self.headers.get("X-ClickHouse-Key")))

        do_POST = do_GET

        def log_message(self, format: str, *args: object) -> None:
            log.debug("query server: " + format, *args)

    return Handler
