"""The alarm book: one alarm per (subject, type), raised, updated, acknowledged and cleared.

A stage of the worker (the ``alarm.events`` output of the catalog, ``Output.stage``): after a
processor has handled a record, :meth:`AlarmBook.observe` reads what it produced -- the
alerts, the gateway statuses and the clean record -- and keeps the book of the record's key
(its *home*: the gateway, incident or hazard id; the ``alarms`` state table, on the same
partition). The processors are not changed: they keep raising one-shot alerts, and the book
turns them into alarms that last until their condition ends (how each type ends, and the
deadband and on/off delays per metric: :mod:`streams.policy.alarms`):

- ALARM_L1 / ALARM_L2 (``limit``) are evaluated from the readings themselves: raised when a
  value has been at or over the sensor's limit for the metric's on-delay, cleared when it has
  been under the limit minus the deadband for the off-delay. A value hovering at its limit is
  ONE alarm whose ``count`` grows with each upward crossing;
- other types are raised by their alert; a repeat while active is counted. They end when the
  record that ends them arrives (a reading without the code, the gateway back ONLINE, the
  incident's next report, the hazard CLOSED), or, for events without an end of their own,
  once they have not recurred for ``quiet_after`` (the book's clock, :class:`AlarmClock`).

Every transition is an AlarmEvent on ``Outputs.alarms``: RAISED once, UPDATED when the peak,
the count or the severity changed (at most once per ``update_every``; a standing alarm is
re-sent every ``refresh_every``), ACKNOWLEDGED (``ebi alarms ack``,
:mod:`streams.alarms.commands`), CLEARED once. Times are those of the data (the reading,
the status change, the report), so a record processed again after a crash gives the same
alarm id and the same event ids; an alarm id is ``<16 hex>@<home>``, and the command that
acknowledges it is keyed by that home, so it reaches the worker keeping the alarm.

The book of one home (:class:`BookState`, the ``alarms`` table value) holds its active
alarms (:class:`AlarmEntry`, under ``"TYPE|subject_type:subject_id"``) and the limit
alarms waiting for their on-delay (``pending``: ``[since, peak]``); a home without either
is deleted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from schemas.records import Record
from streams.alarms.messages import texts
from streams.processors.common import SEVERITY, Outputs, canary_tag

if TYPE_CHECKING:
    from streams.processors.base import StateStore
    from streams.processors.context import ProcessorContext

log = logging.getLogger("ebi.alarms")

HOME = "@"                     # alarm id = <digest>@<home>
RANKS = {"INFO": 0, "WARNING": 1, "CRITICAL": 2}
# limit alarm type -> the SensorRef attribute holding its limit
LIMITS = {"ALARM_L1": "alarm_level1", "ALARM_L2": "alarm_level2"}
RECENT_ALERTS = 4              # alert ids remembered per alarm (a replayed alert counts once)


class AlarmEntry(TypedDict):
    """One active alarm (the AlarmEvent fields it repeats, and the book's own)."""

    id: str
    type: str
    severity: str
    subject_type: str
    subject_id: str
    enterprise_id: str
    gateway_id: str
    region_code: str
    metric: str                 # sensor alarms: the sensor's metric and unit, else ""
    unit: str
    threshold: float | None
    raised_at: int
    changed_at: int             # time of the latest event sent (never decreases)
    last_at: int                # latest occurrence or observation of the condition
    count: int
    value: float | None
    peak: float | None
    over: bool                  # limit alarms: the latest reading was at or over the limit
    clear_since: int            # the condition ended at (0: it has not); waits the off-delay
    sent: list[Any]             # [count, peak, severity, at] of the last RAISED/UPDATED
    seen_alerts: list[str]      # the latest alert ids counted
    detail: str                 # the latest alert's message
    version: int                # hazard alarms: the version that raised it
    tag: str | None
    acked_by: NotRequired[str]
    note: NotRequired[str | None]
    ack_id: NotRequired[str]
    acked_at: NotRequired[int]


class BookState(TypedDict):
    alarms: dict[str, AlarmEntry]
    pending: dict[str, list[float]]


def new_book() -> BookState:
    return {"alarms": {}, "pending": {}}


def alarm_id(alarm_type: str, subject: str, raised_at: int, home: str) -> str:
    digest = hashlib.sha1(f"{alarm_type}|{subject}|{raised_at}".encode()).hexdigest()[:16]
    return f"{digest}{HOME}{home}"


def home_of(alarm: str) -> str:
    """The home an alarm id names ("" when it is not an alarm id)."""
    digest, sep, home = alarm.partition(HOME)
    return home if sep and len(digest) == 16 and home else ""


def _max(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None or a >= b else b


class _Pass:
    """One look at one home's book: the events it makes and whether it changed."""

    def __init__(self, book: AlarmBook, home: str, state: BookState) -> None:
        self.book = book
        self.home = home
        self.state = state
        self.events: list[Record] = []
        self.changed = False

    # -- transitions ---------------------------------------------------------------------
    def publish(self, e: AlarmEntry, transition: str, at: int, extra: str = "") -> None:
        at = max(at, e["changed_at"], e["raised_at"])
        e["changed_at"] = at
        if transition in ("RAISED", "UPDATED"):
            e["sent"] = [e["count"], e["peak"], e["severity"], at]
        self.events.append(self.book.event(e, transition, at, extra))
        self.changed = True

    def raise_(self, key: str, e: AlarmEntry) -> bool:
        alarms = self.state["alarms"]
        if len(alarms) >= self.book.policy.max_per_home:
            self.book.full(self.home, e)
            return False
        alarms[key] = e
        self.publish(e, "RAISED", e["raised_at"])
        return True

    def clear(self, key: str, at: int, detail: str = "") -> None:
        e = self.state["alarms"].pop(key)
        if detail:
            e["detail"] = detail
        self.publish(e, "CLEARED", at)

    def maybe_update(self, e: AlarmEntry, at: int) -> None:
        count, peak, severity, sent_at = e["sent"]
        if (e["count"], e["peak"], e["severity"]) == (count, peak, severity):
            return
        if severity != e["severity"] or at - sent_at >= self.book.policy.update_every_ms:
            self.publish(e, "UPDATED", at)


class AlarmBook:
    """The stage (see the module docstring); built with the processor context."""

    def __init__(self, ctx: ProcessorContext) -> None:
        self.policy = ctx.policy.alarms
        self.reference = ctx.reference
        self.metrics = ctx.metrics
        self._limit_types = [(t, attr) for t, attr in LIMITS.items()
                             if self.policy.ends_of(t) == "limit"]
        self._refused = 0
        self._labels: set[tuple[str, str, str]] = set()   # gauge series set so far

    # -- what an alert is -----------------------------------------------------------------
    def ends(self, alarm_type: str) -> str | None:
        """How an alarm of this type ends (None: not an alarm); a limit type without a
        known limit is an event."""
        end = self.policy.ends_of(alarm_type)
        return "quiet" if end == "limit" and alarm_type not in LIMITS else end

    def event(self, e: AlarmEntry, transition: str, at: int, extra: str = "") -> Record:
        zh, en = texts(e)
        ident = hashlib.sha1(f"{e['id']}|{transition}|{at}|{extra}".encode()).hexdigest()[:32]
        return {
            "event_id": ident, "alarm_id": e["id"], "alarm_type": e["type"],
            "severity": e["severity"], "transition": transition,
            "subject_type": e["subject_type"], "subject_id": e["subject_id"],
            "enterprise_id": e["enterprise_id"], "gateway_id": e["gateway_id"],
            "region_code": e["region_code"], "raised_at": e["raised_at"], "changed_at": at,
            "cleared_at": at if transition == "CLEARED" else None, "value": e["value"],
            "peak": e["peak"], "threshold": e["threshold"], "count": e["count"],
            "message_zh": zh, "message_en": en, "acknowledged_by": e.get("acked_by"),
            "note": e.get("note"), "tag": e["tag"],
        }

    def full(self, home: str, e: AlarmEntry) -> None:
        self._refused += 1
        if self._refused == 1 or self._refused % 1000 == 0:
            log.error("alarm book of %s holds %d alarms, the limit (policy alarms.max_per_home): "
                      "%s on %s:%s not raised (%d refused so far)", home,
                      self.policy.max_per_home, e["type"], e["subject_type"], e["subject_id"],
                      self._refused)

    # -- the stage ------------------------------------------------------------------------
    def observe(self, home: bytes, out: Outputs, store: StateStore, now_ms: int) -> bool:
        """Fold what one record produced into the book of ``home``; the events go to
        ``out.alarms``. True when the book changed (the caller writes it with the record's
        state)."""
        clean = out.clean
        alerts = [a for a in out.alerts if self.ends(a["alert_type"]) not in (None, "limit")]
        readings = clean if clean is not None and isinstance(clean.get("sensor_id"), list) \
            else None
        state: BookState | None = store.get(home)
        if state is None:
            if not alerts and not self._flagged(readings):
                return False
            state = new_book()
        run = _Pass(self, home.decode("utf-8", errors="replace"), state)
        self._fold(run, alerts, out.statuses, clean, readings, out.alerts)
        out.alarms.extend(run.events)
        if run.changed:
            store.put(home, state if state["alarms"] or state["pending"] else None)
        return run.changed

    def observe_tick(self, out: Outputs, store: StateStore, now_ms: int) -> list[bytes]:
        """What the clocks produced (gateways gone silent, reports overdue), by the home each
        alert and status belongs to; the events go to ``out.alarms``. Returns the homes
        changed (their books are written with the next batch that touches them, like the
        clocks' own state)."""
        by_home: dict[str, Outputs] = {}
        for alert in out.alerts:
            if self.ends(alert["alert_type"]) not in (None, "limit"):
                by_home.setdefault(self._home_of_alert(alert), Outputs()).alerts.append(alert)
        for status in out.statuses:
            by_home.setdefault(status["gateway_id"], Outputs()).statuses.append(status)
        changed = []
        for home, part in by_home.items():
            key = home.encode()
            if self.observe(key, part, store, now_ms):
                changed.append(key)
            out.alarms.extend(part.alarms)
        return changed

    def _home_of_alert(self, alert: Record) -> str:
        if alert["subject_type"] == "sensor":
            ref = self.reference.sensors.get(alert["subject_id"])
            if ref is not None:
                return ref.gateway_id
        return str(alert["subject_id"])

    def _flagged(self, readings: Record | None) -> bool:
        """Whether any reading is at an alarm level (a limit alarm may start)."""
        if readings is None or not self._limit_types:
            return False
        return any(f.get("alarm_level") for f in readings.get("flags") or ())

    def _fold(self, run: _Pass, alerts: list[Record], statuses: Iterable[Record],
              clean: Record | None, readings: Record | None, all_alerts: list[Record]) -> None:
        for alert in alerts:
            self._on_alert(run, alert, clean)
        if readings is not None:
            self._on_readings(run, readings)
        for status in statuses:
            self._on_status(run, status)
        if clean is None or clean.get("duplicate"):
            return
        raised = {(a["subject_type"], a["subject_id"], a["alert_type"]) for a in all_alerts}
        if clean.get("gateway_id") and isinstance(clean.get("sent_at"), int):
            self._on_sign_of_life(run, str(clean["gateway_id"]), clean["sent_at"])
        if "report_id" in clean and "incident_id" in clean:
            self._on_report(run, clean, raised)
        elif "hazard_id" in clean and "status" in clean:
            self._on_hazard(run, clean, raised)

    # -- alerts ---------------------------------------------------------------------------
    def _on_alert(self, run: _Pass, alert: Record, clean: Record | None) -> None:
        kind, subject_type, subject = alert["alert_type"], alert["subject_type"], \
            alert["subject_id"]
        key = f"{kind}|{subject_type}:{subject}"
        at = int(alert["event_time"])
        value = alert.get("value")
        peak = value if subject_type != "incident" else None
        e = run.state["alarms"].get(key)
        if e is None:
            gateway = ""
            metric = unit = ""
            if subject_type == "gateway":
                gateway = subject
            elif subject_type == "sensor":
                ref = self.reference.sensors.get(subject)
                gateway = str(clean.get("gateway_id") or "") if clean is not None else ""
                gateway = gateway or (ref.gateway_id if ref is not None else "")
                metric, unit = (ref.metric, ref.unit) if ref is not None else ("", "")
            e = {
                "id": alarm_id(kind, f"{subject_type}:{subject}", at, run.home), "type": kind,
                "severity": str(alert["severity"]), "subject_type": subject_type,
                "subject_id": subject, "enterprise_id": str(alert.get("enterprise_id") or ""),
                "gateway_id": gateway, "region_code": str(alert.get("region_code") or ""),
                "metric": metric, "unit": unit, "threshold": alert.get("threshold"),
                "raised_at": at, "changed_at": at, "last_at": at, "count": 1,
                "value": value, "peak": peak, "over": True, "clear_since": 0,
                "sent": [], "seen_alerts": [str(alert["alert_id"])],
                "detail": str(alert.get("message") or ""),
                "version": self._version(clean, None, alert),
                "tag": alert.get("tag") or canary_tag(subject, str(alert.get("enterprise_id")
                                                                   or "")),
            }
            run.raise_(key, e)
            return
        if str(alert["alert_id"]) in e["seen_alerts"]:
            return                      # the same alert again (a replay): counted once
        e["seen_alerts"] = [*e["seen_alerts"], str(alert["alert_id"])][-RECENT_ALERTS:]
        e["count"] += 1
        e["value"] = value
        e["peak"] = _max(e["peak"], peak)
        e["last_at"] = max(e["last_at"], at)
        e["clear_since"] = 0
        e["detail"] = str(alert.get("message") or e["detail"])
        if alert.get("threshold") is not None:
            e["threshold"] = alert["threshold"]
        if RANKS.get(str(alert["severity"]), 0) > RANKS.get(e["severity"], 0):
            e["severity"] = str(alert["severity"])
        e["version"] = max(e["version"], self._version(clean, e, alert))
        run.changed = True
        run.maybe_update(e, e["last_at"])

    @staticmethod
    def _version(clean: Record | None, e: AlarmEntry | None, alert: Record) -> int:
        if clean is not None and clean.get("hazard_id") == alert["subject_id"] and \
                isinstance(clean.get("version"), int):
            return int(clean["version"])
        return e["version"] if e is not None else 0

    # -- readings ---------------------------------------------------------------------------
    def _on_readings(self, run: _Pass, clean: Record) -> None:
        alarms, pending = run.state["alarms"], run.state["pending"]
        flags = {f["index"]: f for f in clean.get("flags") or ()}
        ids: list[str] = clean["sensor_id"]
        watched: dict[str, list[str]] = {}     # sensor -> its reading-class alarm keys
        interest: set[str] = set()
        for key, e in alarms.items():
            if e["subject_type"] == "sensor":
                end = self.ends(e["type"])
                if end == "reading":
                    watched.setdefault(e["subject_id"], []).append(key)
                    interest.add(e["subject_id"])
                elif end == "limit":
                    interest.add(e["subject_id"])
        interest.update(key.split("|sensor:", 1)[1] for key in pending)
        if self._limit_types:
            interest.update(ids[i] for i, f in flags.items() if f.get("alarm_level"))
        if not interest:
            return
        values, times, quality = clean["value"], clean["event_time"], clean["quality"]
        sensors = self.reference.sensors
        for i, sid in enumerate(ids):
            if sid not in interest or quality[i] == "BAD":
                continue
            ref = sensors.get(sid)
            if ref is None:
                continue
            v, at = float(values[i]), int(times[i])
            band = self.policy.metric(ref.metric)
            for kind, attr in self._limit_types:
                limit = float(getattr(ref, attr))
                if limit != float("inf"):
                    self._limit(run, f"{kind}|sensor:{sid}", kind, ref, limit, band, v, at,
                                clean)
            for key in watched.get(sid, ()):
                entry = alarms.get(key)
                if entry is not None:
                    codes = (flags.get(i) or {}).get("anomalies") or ()
                    self._reading(run, key, entry, entry["type"] in codes, v, at,
                                  band.off_delay_ms)

    def _limit(self, run: _Pass, key: str, kind: str, ref: Any, limit: float, band: Any,
               v: float, at: int, clean: Record) -> None:
        alarms, pending = run.state["alarms"], run.state["pending"]
        over = v >= limit
        e = alarms.get(key)
        if e is None:
            if not over:
                if pending.pop(key, None) is not None:
                    run.changed = True
                return
            waiting = pending.get(key)
            if waiting is None:
                waiting = pending[key] = [at, v]
            else:
                waiting[1] = max(waiting[1], v)
            run.changed = True
            if at - waiting[0] < band.on_delay_ms:
                return
            del pending[key]
            enterprise = str(clean.get("enterprise_id") or ref.enterprise_id)
            e = {
                "id": alarm_id(kind, f"sensor:{ref.sensor_id}", at, run.home), "type": kind,
                "severity": SEVERITY.get(kind, "WARNING"), "subject_type": "sensor",
                "subject_id": ref.sensor_id, "enterprise_id": enterprise,
                "gateway_id": str(clean.get("gateway_id") or ref.gateway_id),
                "region_code": str(clean.get("region_code")
                                   or self.reference.region_of(enterprise)),
                "metric": ref.metric, "unit": ref.unit, "threshold": limit, "raised_at": at,
                "changed_at": at, "last_at": at, "count": 1, "value": v,
                "peak": float(waiting[1]), "over": True, "clear_since": 0, "sent": [],
                "seen_alerts": [], "detail": "", "version": 0,
                "tag": clean.get("tag") or canary_tag(ref.sensor_id, enterprise),
            }
            run.raise_(key, e)
            return
        run.changed = True
        e["value"] = v
        if over:
            if not e["over"]:
                e["count"] += 1      # back over the limit: one more occurrence, same alarm
            e["over"] = True
            e["peak"] = _max(e["peak"], v)
            e["last_at"] = max(e["last_at"], at)
            e["clear_since"] = 0
            run.maybe_update(e, e["last_at"])
            return
        e["over"] = False
        if v >= limit - band.deadband:
            e["clear_since"] = 0     # inside the deadband: the alarm holds
            return
        if not e["clear_since"]:
            e["clear_since"] = at
        if at - e["clear_since"] >= band.off_delay_ms:
            run.clear(key, e["clear_since"] + band.off_delay_ms)

    @staticmethod
    def _reading(run: _Pass, key: str, e: AlarmEntry, coded: bool, v: float, at: int,
                 off_delay: int) -> None:
        run.changed = True
        e["value"] = v
        if coded:
            e["clear_since"] = 0
            e["last_at"] = max(e["last_at"], at)
            return
        if not e["clear_since"]:
            e["clear_since"] = at
        if at - e["clear_since"] >= off_delay:
            run.clear(key, e["clear_since"] + off_delay)

    # -- statuses and signs of life -------------------------------------------------------
    def _online_alarms(self, run: _Pass, gateway: str) -> list[tuple[str, AlarmEntry]]:
        return [(k, e) for k, e in run.state["alarms"].items()
                if e["subject_type"] == "gateway" and e["subject_id"] == gateway
                and self.ends(e["type"]) == "online"]

    def _on_status(self, run: _Pass, status: Record) -> None:
        for key, e in self._online_alarms(run, str(status["gateway_id"])):
            run.changed = True
            if status["status"] != "ONLINE":
                e["clear_since"] = 0
                continue
            e["clear_since"] = int(status["changed_at"])
            if self.policy.off_delay(e["type"]) <= 0:
                run.clear(key, e["clear_since"])

    def _on_sign_of_life(self, run: _Pass, gateway: str, sent_at: int) -> None:
        for key, e in self._online_alarms(run, gateway):
            delay = self.policy.off_delay(e["type"])
            if e["clear_since"] and sent_at - e["clear_since"] >= delay:
                run.clear(key, e["clear_since"] + delay)

    # -- reports and hidden dangers ---------------------------------------------------------
    def _on_report(self, run: _Pass, report: Record, raised: set[tuple[str, str, str]]) -> None:
        incident = str(report["incident_id"])
        at = int(report.get("reported_at") or 0)
        for key, e in list(run.state["alarms"].items()):
            if e["subject_type"] == "incident" and e["subject_id"] == incident and \
                    self.ends(e["type"]) == "report" and \
                    ("incident", incident, e["type"]) not in raised:
                run.clear(key, at, f"report {report['report_id']} ({report.get('stage')}) "
                                   f"filed")

    def _on_hazard(self, run: _Pass, hazard: Record, raised: set[tuple[str, str, str]]) -> None:
        hazard_id = str(hazard["hazard_id"])
        version = int(hazard.get("version") or 0)
        ended = hazard.get("status") == "CLOSED" or not hazard.get("overdue")
        at = int(hazard.get("updated_at") or 0)
        for key, e in list(run.state["alarms"].items()):
            if e["subject_type"] != "hazard" or e["subject_id"] != hazard_id or \
                    self.ends(e["type"]) != "hazard" or \
                    ("hazard", hazard_id, e["type"]) in raised:
                continue
            if ended and version >= e["version"]:
                run.clear(key, at, f"version {version} is {hazard.get('status')}")

    # -- acknowledgement --------------------------------------------------------------------
    def acknowledge(self, state: BookState, home: str, command: Record) -> list[Record] | None:
        """The ACKNOWLEDGED event of a command (the same again for a command seen before);
        None when the alarm is not active in this book."""
        target = command["alarm_id"]
        run = _Pass(self, home, state)
        for e in state["alarms"].values():
            if e["id"] != target:
                continue
            command_id = str(command["command_id"])
            if e.get("ack_id") != command_id:
                e["acked_by"] = str(command["by"])
                e["note"] = command.get("note")
                e["ack_id"] = command_id
                e["acked_at"] = int(command["issued_at"])
            run.publish(e, "ACKNOWLEDGED", int(e.get("acked_at", command["issued_at"])),
                        command_id)
            return run.events
        return None

    # -- the clock --------------------------------------------------------------------------
    def tick(self, store: StateStore, now_ms: int,
             trusted: Callable[[int | None], bool]) -> tuple[Outputs, list[bytes]]:
        """Ends that need no record (off-delays run out without readings, events gone
        quiet, alarms with no news past ``expire_after``), updates held back by
        ``update_every``, re-sends of standing alarms; and the ``ebi_alarms_active`` gauge."""
        out = Outputs()
        changed: list[bytes] = []
        counts: dict[tuple[str, str, str], int] = {}
        for key in store.owned_keys():
            state: BookState | None = store.get(key)
            if state is None:
                continue
            run = _Pass(self, key.decode("utf-8", errors="replace"), state)
            if trusted(store.partition_of(key)):
                self._tick_home(run, now_ms)
            for e in state["alarms"].values():
                label = (e["type"], e["severity"].lower(), e["region_code"][:2])
                counts[label] = counts.get(label, 0) + 1
            if run.changed:
                out.alarms.extend(run.events)
                store.put(key, state if state["alarms"] or state["pending"] else None)
                changed.append(key)
        gauge = self.metrics.alarms_active
        for label in self._labels - counts.keys():
            gauge.labels(*label).set(0)
        for label, n in counts.items():
            gauge.labels(*label).set(n)
        self._labels |= counts.keys()
        return out, changed

    def _tick_home(self, run: _Pass, now: int) -> None:
        p = self.policy
        for key, e in list(run.state["alarms"].items()):
            end = self.ends(e["type"])
            if end in ("limit", "reading", "online") and e["clear_since"]:
                if end == "online":
                    delay = p.off_delay(e["type"])
                else:
                    delay = p.metric(e["metric"]).off_delay_ms
                if now - e["clear_since"] >= delay:
                    run.clear(key, e["clear_since"] + delay)
                    continue
            if end == "quiet" and now - e["last_at"] >= p.quiet_after_ms:
                run.clear(key, e["last_at"] + p.quiet_after_ms,
                          f"not recurred for {p.quiet_after_ms // 60000} min")
                continue
            if now - e["last_at"] >= p.expire_after_ms:    # news: the condition seen again
                run.clear(key, e["last_at"] + p.expire_after_ms,
                          f"no news for {p.expire_after_ms // 86_400_000} days")
                continue
            sent_at = int(e["sent"][3]) if e["sent"] else e["raised_at"]
            if (e["count"], e["peak"], e["severity"]) != tuple(e["sent"][:3]) and \
                    now - sent_at >= p.update_every_ms:
                run.publish(e, "UPDATED", max(e["last_at"], sent_at + p.update_every_ms))
            elif now - sent_at >= p.refresh_every_ms:
                run.publish(e, "UPDATED", sent_at + p.refresh_every_ms)
        stale = [k for k, (since, _) in run.state["pending"].items()
                 if now - since > p.quiet_after_ms + self._on_delay(k)]
        for k in stale:
            del run.state["pending"][k]
            run.changed = True

    def _on_delay(self, pending_key: str) -> int:
        ref = self.reference.sensors.get(pending_key.split("|sensor:", 1)[-1])
        return self.policy.metric(ref.metric).on_delay_ms if ref is not None else 0


class AlarmClock:
    """The ``alarms`` table's clock: :meth:`AlarmBook.tick`."""

    def __init__(self, ctx: ProcessorContext) -> None:
        self.book = AlarmBook(ctx)

    def tick(self, store: StateStore, now_ms: int,
             trusted: Callable[[int | None], bool]) -> tuple[Outputs, list[bytes]]:
        return self.book.tick(store, now_ms, trusted)
