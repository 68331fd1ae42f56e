"""A fake Alertmanager API for the forwarder's unit tests."""

from __future__ import annotations

from typing import Any

from streams.alarms.forwarder import ALERTS_PATH, SILENCES_PATH, AlertmanagerError


class FakeAlertmanager:
    """Records every request, keeps silences as Alertmanager does (ids, states, expiry),
    fails the next requests with the errors queued in ``fail``, and answers 400 to a post
    that carries an alarm id of ``refuse``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.silences: dict[str, dict[str, Any]] = {}
        self.fail: list[Exception] = []
        self.refuse: set[str] = set()

    def request(self, method: str, path: str, body: Any = None) -> Any:
        self.requests.append((method, path, body))
        if self.fail:
            raise self.fail.pop(0)
        if method == "POST" and path == ALERTS_PATH:
            if any(a["labels"].get("alarm_id") in self.refuse for a in body):
                raise AlertmanagerError(method, path, 400, "invalid alert")
            return None
        if method == "POST" and path == SILENCES_PATH:
            silence_id = body.get("id") or f"sil-{len(self.silences) + 1}"
            self.silences[silence_id] = {**body, "id": silence_id,
                                         "status": {"state": "active"}}
            return {"silenceID": silence_id}
        if method == "GET" and path == SILENCES_PATH:
            return list(self.silences.values())
        if method == "DELETE" and path.startswith("/api/v2/silence/"):
            silence = self.silences.get(path.rsplit("/", 1)[1])
            if silence is None:
                raise AlertmanagerError(method, path, 404, "silence not found")
            silence["status"] = {"state": "expired"}
            return None
        raise AssertionError(f"unexpected request {method} {path}")

    # -- what was sent ---------------------------------------------------------------------
    def posts(self) -> list[list[dict[str, Any]]]:
        return [body for method, path, body in self.requests
                if method == "POST" and path == ALERTS_PATH]

    def alerts(self, alarm_id: str | None = None) -> list[dict[str, Any]]:
        return [a for body in self.posts() for a in body
                if alarm_id is None or a["labels"]["alarm_id"] == alarm_id]

    def calls(self, method: str, prefix: str = "") -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] == method and r[1].startswith(prefix)]

    def active_silences(self) -> list[dict[str, Any]]:
        return [s for s in self.silences.values() if s["status"]["state"] == "active"]
