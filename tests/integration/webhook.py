"""A webhook receiver for Alertmanager's notifications, on a free loopback port.

    hook = WebhookReceiver.start()
    ...  # Alertmanager posts to hook.url + "/alarms/bureau-32" and so on
    note = hook.wait_for(lambda n: n.receiver == "bureau-32" and "A1" in n.alarm_ids())
    hook.stop()

Every POST body (Alertmanager's webhook payload, version 4) is kept as a
:class:`Notification`, in arrival order.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Notification:
    path: str
    body: dict[str, Any]

    @property
    def receiver(self) -> str:
        return str(self.body.get("receiver", ""))

    @property
    def status(self) -> str:
        """"firing" or "resolved" (of the group)."""
        return str(self.body.get("status", ""))

    @property
    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.body.get("alerts", [])
        return alerts

    def alarm_ids(self, status: str | None = None) -> set[str]:
        """The alarm ids in the notification (of alerts with ``status`` if given)."""
        return {a["labels"].get("alarm_id", "") for a in self.alerts
                if status is None or a.get("status") == status}


class WebhookReceiver:
    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread
        self._lock = threading.Lock()
        self._notes: list[Notification] = []

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @classmethod
    def start(cls) -> WebhookReceiver:
        holder: dict[str, WebhookReceiver] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"unreadable": raw.decode(errors="replace")}
                holder["hook"]._add(Notification(self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="webhook", daemon=True)
        hook = holder["hook"] = cls(server, thread)
        thread.start()
        return hook

    def _add(self, note: Notification) -> None:
        with self._lock:
            self._notes.append(note)

    def notifications(self, predicate: Callable[[Notification], bool] | None = None
                      ) -> list[Notification]:
        with self._lock:
            notes = list(self._notes)
        return [n for n in notes if predicate is None or predicate(n)]

    def about(self, alarm_id: str, status: str | None = None,
              receiver: str | None = None) -> list[Notification]:
        """Notifications that carry ``alarm_id`` (as an alert in ``status``, for ``receiver``)."""
        return self.notifications(lambda n: alarm_id in n.alarm_ids(status)
                                  and (receiver is None or n.receiver == receiver))

    def wait_for(self, predicate: Callable[[Notification], bool], timeout: float = 30.0,
                 what: str = "a notification") -> Notification:
        deadline = time.monotonic() + timeout
        while True:
            found = self.notifications(predicate)
            if found:
                return found[0]
            if time.monotonic() > deadline:
                seen = [(n.receiver, n.status, sorted(n.alarm_ids())) for n in self.notifications()]
                raise AssertionError(f"no {what} within {timeout:g} s; received: {seen[-10:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
