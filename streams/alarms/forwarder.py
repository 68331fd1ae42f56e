"""Active alarms, kept in step with Alertmanager.

:meth:`AlarmForwarder.apply` is pure state: it folds one AlarmEvent into the set of active
alarms and queues what Alertmanager must learn. :meth:`AlarmForwarder.flush` does the HTTP:

- every active alarm is posted (``POST /api/v2/alerts``) as soon as it is raised or changes,
  and again every ``repost_every`` seconds, with ``endsAt`` = now + ``lease``: an alarm whose
  forwarder died resolves by itself once the lease runs out (Prometheus does the same);
- a CLEARED alarm is posted once more, resolved (``endsAt`` = the clear time);
- an ACKNOWLEDGED alarm gets a silence (matcher ``alarm_id="..."``, ``createdBy`` the operator,
  ``comment`` the note), renewed while the alarm lasts and expired when it clears. An
  existing silence for the alarm (another forwarder, a restart) is adopted, not doubled.

Everything is bounded (active alarms, queues, remembered clears), every HTTP call has a
timeout, and flush never raises: a failure is logged (at most once per ``log_every`` seconds
per kind of message), backed off and retried by the next flush. Two forwarders may run side
by side: Alertmanager deduplicates identical alerts.
"""

from __future__ import annotations

import json
import logging
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Protocol

from streams.alarms.labels import (
    SEVERITIES,
    AlarmEventError,
    alarm_labels,
    instant,
    rfc3339,
    to_alert,
    transition,
)

log = logging.getLogger("ebi.alarms")

ALERTS_PATH = "/api/v2/alerts"
SILENCES_PATH = "/api/v2/silences"


class AlertmanagerError(RuntimeError):
    """An Alertmanager API call failed; ``status`` 0 means no answer at all."""

    def __init__(self, method: str, path: str, status: int, detail: str) -> None:
        where = f"{method} {path}"
        why = f"HTTP {status}: {detail}" if status else detail
        super().__init__(f"Alertmanager {where}: {why}")
        self.status = status

    @property
    def retryable(self) -> bool:
        """No answer, a server error or throttling: try again later. Other 4xx are final."""
        return self.status == 0 or self.status == 429 or self.status >= 500


class Transport(Protocol):
    def request(self, method: str, path: str, body: Any = None) -> Any:
        """The decoded JSON answer (None when empty); raises :class:`AlertmanagerError`."""
        ...


class HttpTransport:
    """Alertmanager's API over urllib, JSON in and out, ``timeout`` seconds per call."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        parts = urllib.parse.urlparse(base_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"Alertmanager URL {base_url!r}: expected http(s)://host:port")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json",
                                                  "Accept": "application/json"})
        where = path.split("?", 1)[0]
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as rsp:
                text = rsp.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace").strip()[:300]
            raise AlertmanagerError(method, where, exc.code, detail or exc.reason) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AlertmanagerError(method, where, 0, f"no answer from {self.base_url} "
                                    f"({reason})") from None
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise AlertmanagerError(method, where, 200, f"the answer is not JSON: "
                                    f"{text[:100]!r}") from None


class Throttle:
    """At most one log line per ``every`` seconds per key; says how many were held back."""

    def __init__(self, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._last: dict[str, tuple[float, int]] = {}

    def __call__(self, key: str) -> int | None:
        """The number held back since the last line when this one may be logged, else None."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.every:
            self._last[key] = (last[0], last[1] + 1)
            return None
        if len(self._last) > 1000:
            self._last.clear()
        self._last[key] = (now, 0)
        return last[1] if last is not None else 0


@dataclass
class Alarm:
    """An active alarm: its latest event and what Alertmanager knows of it."""

    event: dict[str, Any]
    labels: dict[str, str]
    changed_at: datetime
    next_post: float = 0.0          # epoch seconds; 0: at the next flush
    acknowledged: bool = False
    silence_id: str = ""
    silence_starts: str = ""
    silence_until: float = 0.0      # epoch seconds; inf: not ours to renew any more

    @property
    def rank(self) -> int:
        return SEVERITIES.index(self.labels["severity"].upper())


@dataclass
class Stats:
    applied: int = 0
    invalid: int = 0           # events that cannot become an alert
    stale: int = 0             # older than what we hold for the alarm
    late: int = 0              # events of an alarm that already cleared
    dropped: int = 0           # new alarms refused because the set is full
    evicted: int = 0           # lesser alarms pushed out by a new one when full
    posted: int = 0            # active alerts posted (each re-post counts)
    resolved: int = 0          # resolved alerts posted
    rejected: int = 0          # alerts Alertmanager refused for good (4xx)
    silences_created: int = 0
    silences_adopted: int = 0
    silences_renewed: int = 0
    silences_expired: int = 0
    errors: int = 0            # failed flushes (retried)
    overflow: int = 0          # queued work dropped because a queue was full

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Silence:
    id: str
    state: str
    starts_at: str
    ends_at: str


@dataclass
class _Expiry:
    silence_id: str = ""


class AlarmForwarder:
    def __init__(self, transport: Transport, *, repost_every: float = 60.0,
                 lease: float = 240.0, silence_lease: float = 12 * 3600.0,
                 max_active: int = 50_000, max_pending: int = 10_000,
                 remember_cleared: int = 20_000, batch: int = 500, generator_url: str = "",
                 clock: Callable[[], float] = time.time, log_every: float = 30.0,
                 max_backoff: float = 30.0) -> None:
        if not 0 < repost_every < lease:
            raise ValueError(f"repost_every ({repost_every:g} s) must be positive and shorter "
                             f"than the lease ({lease:g} s), or alarms resolve between posts")
        if max_active < 1 or max_pending < 1 or batch < 1:
            raise ValueError("max_active, max_pending and batch must be at least 1")
        self.transport = transport
        self.repost_every = repost_every
        self.lease = lease
        self.silence_lease = max(silence_lease, 2 * repost_every)
        self.max_active = max_active
        self.max_pending = max_pending
        self.remember_cleared = remember_cleared
        self.batch = batch
        self.generator_url = generator_url
        self.clock = clock
        self.max_backoff = max_backoff
        self.stats = Stats()
        self.last_ok = 0.0             # epoch seconds of the last flush that went through
        self._active: dict[str, Alarm] = {}
        self._cleared: OrderedDict[str, None] = OrderedDict()
        self._resolved: deque[dict[str, Any]] = deque()
        self._to_silence: set[str] = set()
        self._to_expire: OrderedDict[str, _Expiry] = OrderedDict()
        self._failures = 0
        self._retry_at = 0.0
        self._throttle = Throttle(log_every)

    # -- state -------------------------------------------------------------------------
    @property
    def active(self) -> Mapping[str, Alarm]:
        return self._active

    def pending(self) -> dict[str, int]:
        """Work waiting for Alertmanager (for status lines and tests)."""
        now = self.clock()
        return {"post": sum(1 for a in self._active.values() if a.next_post <= now),
                "resolved": len(self._resolved), "silence": len(self._to_silence),
                "expire": len(self._to_expire)}

    def apply(self, event: Mapping[str, Any], replay: bool = False) -> bool:
        """Fold one AlarmEvent in; True when it changed anything. ``replay``: the event is
        history read at start-up (nothing of it was posted by this process), so a clear is
        only sent on while Alertmanager may still hold the alarm (within the lease)."""
        try:
            kind = transition(event)
            labels = alarm_labels(event)
            changed = instant(event.get("changed_at"), "changed_at")
            to_alert(event, changed)  # every field an alert needs is there and readable
        except AlarmEventError as exc:
            self.stats.invalid += 1
            self._log(logging.WARNING, "invalid", f"alarm event skipped: {exc}")
            return False
        alarm_id = labels["alarm_id"]
        if kind == "CLEARED":
            self._clear(alarm_id, event, labels, changed, replay)
        elif alarm_id in self._cleared:
            self.stats.late += 1
            return False
        elif not self._upsert(alarm_id, event, labels, changed, kind):
            return False
        self.stats.applied += 1
        return True

    def _upsert(self, alarm_id: str, event: Mapping[str, Any], labels: dict[str, str],
                changed: datetime, kind: str) -> bool:
        alarm = self._active.get(alarm_id)
        if alarm is not None and kind != "ACKNOWLEDGED" and changed < alarm.changed_at:
            self.stats.stale += 1  # an acknowledgement is never stale: it is an operator's act
            return False
        acked = kind == "ACKNOWLEDGED" or bool(event.get("acknowledged_by"))
        if alarm is None:
            if len(self._active) >= self.max_active and not self._make_room(labels, alarm_id):
                return False
            alarm = self._active[alarm_id] = Alarm(dict(event), labels, changed)
        elif kind == "ACKNOWLEDGED":
            # The operator's act: the measurements stay those of the latest update.
            alarm.event["acknowledged_by"] = event.get("acknowledged_by")
            alarm.event["note"] = event.get("note")
            alarm.changed_at = max(alarm.changed_at, changed)
        else:
            if labels != alarm.labels:  # e.g. escalated: the old label set is over
                self._queue_resolved(to_alert(alarm.event, self._now_dt(), self.generator_url,
                                              labels=alarm.labels))
            previous = alarm.event
            alarm.event = dict(event)
            if alarm.acknowledged and not alarm.event.get("acknowledged_by"):
                alarm.event["acknowledged_by"] = previous.get("acknowledged_by")
                alarm.event["note"] = previous.get("note")
            alarm.labels = labels
            alarm.changed_at = changed
        alarm.next_post = 0.0
        if acked and not alarm.acknowledged:
            alarm.acknowledged = True
            self._to_silence.add(alarm_id)
        return True

    def _clear(self, alarm_id: str, event: Mapping[str, Any], labels: dict[str, str],
               changed: datetime, replay: bool) -> None:
        alarm = self._active.pop(alarm_id, None)
        self._to_silence.discard(alarm_id)
        self._cleared[alarm_id] = None
        self._cleared.move_to_end(alarm_id)
        while len(self._cleared) > self.remember_cleared:
            self._cleared.popitem(last=False)
        cleared = instant(event.get("cleared_at") or changed, "cleared_at")
        age = self.clock() - cleared.timestamp()
        ends = min(cleared, self._now_dt())
        if not replay or age < self.lease:
            self._queue_resolved(to_alert(event, ends, self.generator_url, labels=labels))
            if alarm is not None and alarm.labels != labels:
                self._queue_resolved(to_alert(alarm.event, ends, self.generator_url,
                                              labels=alarm.labels))
        acked = (alarm.acknowledged if alarm is not None else False) or bool(
            event.get("acknowledged_by"))
        if acked and (not replay or age < self.silence_lease):
            self._to_expire[alarm_id] = _Expiry(alarm.silence_id if alarm is not None else "")
            while len(self._to_expire) > self.max_pending:
                self._to_expire.popitem(last=False)
                self.stats.overflow += 1

    def _make_room(self, labels: dict[str, str], alarm_id: str) -> bool:
        """The set is full: push out the least severe, longest unchanged alarm if it is no
        more severe than the new one; else refuse the new one. Either way it is logged."""
        rank = SEVERITIES.index(labels["severity"].upper())
        victim_id, victim = min(self._active.items(),
                                key=lambda item: (item[1].rank, item[1].changed_at))
        if victim.rank > rank:
            self.stats.dropped += 1
            self._log(logging.ERROR, "full", f"{len(self._active)} active alarms, the limit: "
                      f"alarm {alarm_id} ({labels['alertname']}, {labels['severity']}) is not "
                      "forwarded (raise --max-active)")
            return False
        del self._active[victim_id]
        self._to_silence.discard(victim_id)
        self.stats.evicted += 1
        self._log(logging.ERROR, "full", f"{self.max_active} active alarms, the limit: alarm "
                  f"{victim_id} ({victim.labels['alertname']}, {victim.labels['severity']}) is "
                  f"no longer forwarded, to make room for {alarm_id} (raise --max-active)")
        return True

    def _queue_resolved(self, alert: dict[str, Any]) -> None:
        if len(self._resolved) >= self.max_pending:
            self._resolved.popleft()  # that alert still resolves when its lease ends
            self.stats.overflow += 1
        self._resolved.append(alert)

    def _now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- delivery ----------------------------------------------------------------------
    def flush(self) -> bool:
        """Send what is due; True when Alertmanager took everything. Never raises."""
        now = self.clock()
        if now < self._retry_at:
            return False
        try:
            if self._to_silence or self._to_expire or self._renewals_due(now):
                silences = self._silences()
                self._expire_silences(silences)
                self._create_silences(silences, now)
            self._post_resolved()
            self._post_active(now)
        except AlertmanagerError as exc:
            self._failed(now, str(exc))
            return False
        except Exception as exc:  # a bug must not stop delivery of the other alarms
            log.debug("alarm flush failed", exc_info=True)
            self._failed(now, f"unexpected {type(exc).__name__}: {exc}")
            return False
        if self._failures:
            log.warning("Alertmanager reachable again after %d failed attempt(s)",
                        self._failures)
        self._failures = 0
        self.last_ok = now
        return True

    def _failed(self, now: float, why: str) -> None:
        self.stats.errors += 1
        self._failures += 1
        backoff = min(self.max_backoff, 0.5 * 2 ** min(self._failures, 16))
        self._retry_at = now + backoff
        self._log(logging.WARNING, "flush", f"alarm delivery failed, retrying in "
                  f"{backoff:.1f} s: {why}")

    def _log(self, level: int, key: str, message: str) -> None:
        held = self._throttle(key)
        if held is None:
            return
        log.log(level, "%s%s", message, f" (and {held} more like it)" if held else "")

    def _chunks(self, items: list[Any]) -> Iterator[list[Any]]:
        for start in range(0, len(items), self.batch):
            yield items[start:start + self.batch]

    def _post(self, alerts: list[dict[str, Any]]) -> set[int]:
        """POST the alerts; the indexes Alertmanager refused for good. Retryable failures
        raise. A refused batch is retried alert by alert, so one bad alert costs only itself."""
        try:
            self.transport.request("POST", ALERTS_PATH, alerts)
            return set()
        except AlertmanagerError as exc:
            if exc.retryable:
                raise
            if len(alerts) == 1:
                self._log(logging.ERROR, "rejected", f"Alertmanager refused alarm "
                          f"{alerts[0]['labels'].get('alarm_id')}: {exc}")
                return {0}
        refused: set[int] = set()
        for index, alert in enumerate(alerts):
            refused |= {index} if self._post([alert]) else set()
        return refused

    def _post_resolved(self) -> None:
        while self._resolved:
            batch = [self._resolved[i] for i in range(min(self.batch, len(self._resolved)))]
            refused = self._post(batch)
            for _ in batch:
                self._resolved.popleft()
            self.stats.resolved += len(batch) - len(refused)
            self.stats.rejected += len(refused)

    def _post_active(self, now: float) -> None:
        due = [(alarm_id, alarm) for alarm_id, alarm in self._active.items()
               if alarm.next_post <= now]
        ends = datetime.fromtimestamp(now + self.lease, UTC)
        for chunk in self._chunks(due):
            refused = self._post([to_alert(a.event, ends, self.generator_url, labels=a.labels)
                                  for _, a in chunk])
            for index, (alarm_id, alarm) in enumerate(chunk):
                if index in refused:
                    self._active.pop(alarm_id, None)
                    self._to_silence.discard(alarm_id)
                    self.stats.rejected += 1
                else:
                    alarm.next_post = now + self.repost_every
                    self.stats.posted += 1

    # -- silences ----------------------------------------------------------------------
    def _renewals_due(self, now: float) -> bool:
        return any(a.silence_id and a.silence_until - now < self.silence_lease / 2
                   for a in self._active.values() if a.acknowledged)

    def _silences(self) -> dict[str, list[Silence]]:
        """Alertmanager's silences made of exactly one matcher ``alarm_id="..."``, by id."""
        # All of them: Alertmanager 0.25 does not match a regex filter (alarm_id=~".+")
        # against equality matchers; it forgets expired silences after its retention (120 h).
        answer = self.transport.request("GET", SILENCES_PATH)
        found: dict[str, list[Silence]] = {}
        for item in answer if isinstance(answer, list) else []:
            matchers = item.get("matchers") or []
            if (len(matchers) != 1 or matchers[0].get("name") != "alarm_id"
                    or matchers[0].get("isRegex") or matchers[0].get("isEqual") is False):
                continue
            state = str((item.get("status") or {}).get("state", ""))
            found.setdefault(str(matchers[0].get("value")), []).append(Silence(
                str(item.get("id")), state, str(item.get("startsAt")), str(item.get("endsAt"))))
        return found

    def _expire_silences(self, silences: dict[str, list[Silence]]) -> None:
        for alarm_id in list(self._to_expire):
            expiry = self._to_expire[alarm_id]
            ids = {s.id for s in silences.get(alarm_id, []) if s.state != "expired"}
            if expiry.silence_id:
                ids.add(expiry.silence_id)
            for silence_id in sorted(ids):
                path = f"/api/v2/silence/{urllib.parse.quote(silence_id, safe='')}"
                try:
                    self.transport.request("DELETE", path)
                    self.stats.silences_expired += 1
                except AlertmanagerError as exc:
                    if exc.retryable:
                        raise
                    if exc.status != 404:  # 404: gone already
                        self._log(logging.WARNING, "expire", f"silence {silence_id} of alarm "
                                  f"{alarm_id} not expired: {exc}")
            del self._to_expire[alarm_id]

    def _create_silences(self, silences: dict[str, list[Silence]], now: float) -> None:
        for alarm_id in sorted(self._to_silence):
            alarm = self._active.get(alarm_id)
            if alarm is None:
                self._to_silence.discard(alarm_id)
                continue
            existing = next((s for s in silences.get(alarm_id, [])
                             if s.state in {"active", "pending"}), None)
            if existing is not None:
                alarm.silence_id, alarm.silence_starts = existing.id, existing.starts_at
                alarm.silence_until = _epoch(existing.ends_at)
                self.stats.silences_adopted += 1
            else:
                self._silence(alarm, now)
                self.stats.silences_created += 1
            self._to_silence.discard(alarm_id)
        for alarm_id, alarm in self._active.items():
            if not (alarm.acknowledged and alarm.silence_id
                    and alarm.silence_until - now < self.silence_lease / 2):
                continue
            current = next((s for s in silences.get(alarm_id, []) if s.id == alarm.silence_id),
                           None)
            if current is not None and current.state == "expired":
                alarm.silence_until = math.inf  # someone lifted it: do not put it back
                self._log(logging.INFO, "lifted", f"the silence of alarm {alarm_id} was "
                          "expired in Alertmanager; it is not renewed")
                continue
            self._silence(alarm, now)
            self.stats.silences_renewed += 1

    def _silence(self, alarm: Alarm, now: float) -> None:
        """Create (or, with its id, extend) the silence of an acknowledged alarm."""
        event = alarm.event
        by = str(event.get("acknowledged_by") or "ebi")
        note = str(event.get("note") or "")
        starts = alarm.silence_starts if alarm.silence_id else rfc3339(now * 1000)
        body: dict[str, Any] = {
            "matchers": [{"name": "alarm_id", "value": alarm.labels["alarm_id"],
                          "isRegex": False, "isEqual": True}],
            "startsAt": starts,
            "endsAt": rfc3339((now + self.silence_lease) * 1000),
            "createdBy": by,
            "comment": note or f"acknowledged by {by} ({alarm.labels['alertname']} on "
                               f"{alarm.labels['subject']})",
        }
        if alarm.silence_id:
            body["id"] = alarm.silence_id
        answer = self.transport.request("POST", SILENCES_PATH, body)
        silence_id = answer.get("silenceID") if isinstance(answer, dict) else None
        if not silence_id:
            raise AlertmanagerError("POST", SILENCES_PATH, 200, f"no silenceID in {answer!r}")
        alarm.silence_id, alarm.silence_starts = str(silence_id), starts
        alarm.silence_until = now + self.silence_lease


def _epoch(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0  # unreadable: renew at the next flush
