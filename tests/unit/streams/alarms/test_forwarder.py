import logging
from datetime import timedelta

import pytest

from streams.alarms.forwarder import AlarmForwarder, AlertmanagerError, Throttle
from streams.alarms.labels import rfc3339
from tests.unit.streams.alarms.factories import T0, alarm_event
from tests.unit.streams.alarms.fakes import FakeAlertmanager

START = T0.timestamp()


class Clock:
    def __init__(self, at: float = 0.0) -> None:
        self.t = START + at

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture()
def am() -> FakeAlertmanager:
    return FakeAlertmanager()


@pytest.fixture()
def clock() -> Clock:
    return Clock(1.0)


def forwarder(am: FakeAlertmanager, clock: Clock, **options: object) -> AlarmForwarder:
    settings: dict[str, object] = {"repost_every": 60.0, "lease": 240.0,
                                   "silence_lease": 3600.0, **options}
    return AlarmForwarder(am, clock=clock, **settings)  # type: ignore[arg-type]


def iso(seconds_after_t0: float) -> str:
    return rfc3339((START + seconds_after_t0) * 1000)


# -- posting and re-posting ----------------------------------------------------------------
def test_a_raised_alarm_is_posted_with_a_lease_and_reposted_on_schedule(
        am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    assert fw.apply(alarm_event("A1"))
    assert am.requests == []  # apply is pure state
    assert fw.flush()
    [alert] = am.alerts()
    assert alert["labels"]["alarm_id"] == "A1"
    assert alert["startsAt"] == iso(0) and alert["endsAt"] == iso(1 + 240)
    clock.advance(30)
    assert fw.flush()
    assert len(am.alerts()) == 1  # not due yet
    clock.advance(30)
    assert fw.flush()
    assert [a["endsAt"] for a in am.alerts()] == [iso(241), iso(61 + 240)]
    assert fw.stats.posted == 2


def test_an_update_is_posted_at_the_next_flush_with_the_new_annotations(
        am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    fw.apply(alarm_event("A1"))
    fw.flush()
    clock.advance(5)
    fw.apply(alarm_event("A1", "UPDATED", at=5, count=4, peak=2.2))
    fw.flush()
    latest = am.alerts("A1")[-1]
    assert len(am.alerts("A1")) == 2
    assert "峰值 2.2" in latest["annotations"]["description"]
    assert latest["labels"] == am.alerts("A1")[0]["labels"]


def test_many_updates_between_flushes_are_one_post(am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    fw.apply(alarm_event("A1"))
    for count in range(2, 50):
        fw.apply(alarm_event("A1", "UPDATED", at=count, count=count))
    fw.flush()
    assert len(am.posts()) == 1 and len(am.alerts()) == 1
    assert "发生 49 次" in am.alerts()[0]["annotations"]["description"]


def test_active_alarms_are_posted_in_batches(am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock, batch=2)
    for n in range(5):
        fw.apply(alarm_event(f"A{n}", subject_id=f"S{n}"))
    fw.flush()
    assert [len(body) for body in am.posts()] == [2, 2, 1]


# -- clearing ------------------------------------------------------------------------------
def test_a_clear_is_posted_once_as_resolved(am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    fw.apply(alarm_event("A1"))
    fw.flush()
    clock.advance(10)
    fw.apply(alarm_event("A1", "CLEARED", at=8))
    assert "A1" not in fw.active
    fw.flush()
    resolved = am.alerts("A1")[-1]
    assert resolved["endsAt"] == iso(8)
    clock.advance(120)
    fw.flush()
    assert len(am.alerts("A1")) == 2
    assert fw.stats.resolved == 1


def test_a_clear_in_the_future_resolves_now(am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    fw.apply(alarm_event("A1", "CLEARED", at=300))
    fw.flush()
    assert am.alerts("A1")[0]["endsAt"] == iso(1)


def test_events_after_a_clear_do_not_bring_the_alarm_back(
        am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    fw.apply(alarm_event("A1"))
    fw.apply(alarm_event("A1", "CLEARED", at=5))
    assert not fw.apply(alarm_event("A1", "UPDATED", at=6))
    assert not fw.apply(alarm_event("A1", "ACKNOWLEDGED", at=7, acknowledged_by="王工"))
    assert fw.active == {} and fw.stats.late == 2


def test_an_older_update_is_stale(am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    fw.apply(alarm_event("A1", "UPDATED", at=10, count=5))
    assert not fw.apply(alarm_event("A1", "UPDATED", at=5, count=3))
    assert fw.active["A1"].event["count"] == 5 and fw.stats.stale == 1


def test_an_escalation_resolves_the_old_label_set(am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    fw.apply(alarm_event("A1", severity="WARNING"))
    fw.flush()
    clock.advance(5)
    fw.apply(alarm_event("A1", "UPDATED", at=5, severity="CRITICAL"))
    fw.flush()
    old, new = am.posts()[1][0], am.posts()[2][0]
    assert old["labels"]["severity"] == "warning" and old["endsAt"] == iso(6)
    assert new["labels"]["severity"] == "critical" and new["endsAt"] == iso(6 + 240)


# -- replay --------------------------------------------------------------------------------
def test_replayed_history_sends_only_what_alertmanager_may_still_hold(
        am: FakeAlertmanager, clock: Clock) -> None:
    clock.advance(3600)
    fw = forwarder(am, clock)
    fw.apply(alarm_event("OLD"), replay=True)
    fw.apply(alarm_event("OLD", "CLEARED", at=60), replay=True)          # an hour ago
    fw.apply(alarm_event("RECENT", subject_id="S2"), replay=True)
    fw.apply(alarm_event("RECENT", "CLEARED", at=3550, subject_id="S2"), replay=True)
    fw.apply(alarm_event("ACTIVE", subject_id="S3"), replay=True)
    fw.flush()
    assert {a["labels"]["alarm_id"] for a in am.alerts()} == {"RECENT", "ACTIVE"}
    assert am.alerts("RECENT")[0]["endsAt"] == iso(3550)
    live = forwarder(FakeAlertmanager(), clock)
    live.apply(alarm_event("OLD", "CLEARED", at=60))
    live.flush()
    assert live.stats.resolved == 1  # live, a clear is always sent on


# -- acknowledgements and silences ---------------------------------------------------------
def test_an_acknowledgement_becomes_a_silence_that_ends_with_the_alarm(
        am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    fw.apply(alarm_event("A1", count=3))
    fw.flush()
    fw.apply(alarm_event("A1", "ACKNOWLEDGED", at=20, acknowledged_by="王工",
                         note="已派人现场处置", count=1))
    fw.flush()
    [silence] = am.active_silences()
    assert silence["matchers"] == [{"name": "alarm_id", "value": "A1", "isRegex": False,
                                    "isEqual": True}]
    assert silence["createdBy"] == "王工" and silence["comment"] == "已派人现场处置"
    assert silence["startsAt"] == iso(1) and silence["endsAt"] == iso(1 + 3600)
    assert fw.active["A1"].event["count"] == 3  # the ack does not undo the measurements
    # a later update without the ack fields keeps the alarm acknowledged, no second silence
    fw.apply(alarm_event("A1", "UPDATED", at=30, count=4))
    fw.flush()
    assert fw.active["A1"].event["acknowledged_by"] == "王工"
    assert len(am.calls("POST", "/api/v2/silences")) == 1
    fw.apply(alarm_event("A1", "CLEARED", at=40))
    fw.flush()
    assert am.active_silences() == []
    assert fw.stats.silences_created == 1 and fw.stats.silences_expired == 1


def test_an_acknowledgement_without_a_note_still_says_who(
        am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    fw.apply(alarm_event("A1", "ACKNOWLEDGED", acknowledged_by="li"))
    fw.apply(alarm_event("A2", "ACKNOWLEDGED", subject_id="S2"))
    fw.flush()
    comments = {s["matchers"][0]["value"]: (s["createdBy"], s["comment"])
                for s in am.active_silences()}
    assert comments == {"A1": ("li", "acknowledged by li (ALARM_L2 on sensor:S-7)"),
                        "A2": ("ebi", "acknowledged by ebi (ALARM_L2 on sensor:S2)")}
    assert set(fw.active) == {"A1", "A2"}  # an ack of an alarm not seen yet makes it known


def test_an_existing_silence_is_adopted_not_doubled(am: FakeAlertmanager, clock: Clock) -> None:
    first, second = forwarder(am, clock), forwarder(am, clock)
    acked = alarm_event("A1", "ACKNOWLEDGED", acknowledged_by="王工")
    for fw in (first, second):
        fw.apply(acked)
        fw.flush()
    assert len(am.silences) == 1
    assert second.stats.silences_adopted == 1
    assert second.active["A1"].silence_id == first.active["A1"].silence_id


def test_a_silence_is_renewed_while_the_alarm_lasts(am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    fw.apply(alarm_event("A1", "ACKNOWLEDGED", acknowledged_by="王工"))
    fw.flush()
    clock.advance(1000)
    fw.flush()
    assert fw.stats.silences_renewed == 0
    clock.advance(900)  # less than half the silence left
    fw.flush()
    [silence] = am.silences.values()
    assert fw.stats.silences_renewed == 1
    assert silence["startsAt"] == iso(1)  # the same silence, extended
    assert silence["endsAt"] == iso(1901 + 3600)


def test_a_silence_lifted_by_an_operator_is_not_put_back(
        am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    fw.apply(alarm_event("A1", "ACKNOWLEDGED", acknowledged_by="王工"))
    fw.flush()
    next(iter(am.silences.values()))["status"] = {"state": "expired"}
    clock.advance(2000)
    fw.flush()
    clock.advance(2000)
    fw.flush()
    assert am.active_silences() == [] and fw.stats.silences_renewed == 0


def test_a_replayed_clear_of_an_acknowledged_alarm_expires_its_silence(
        am: FakeAlertmanager, clock: Clock) -> None:
    am.silences["s-old"] = {"id": "s-old", "status": {"state": "active"}, "matchers": [
        {"name": "alarm_id", "value": "A1", "isRegex": False, "isEqual": True}]}
    am.silences["s-other"] = {"id": "s-other", "status": {"state": "active"}, "matchers": [
        {"name": "alarm_id", "value": "A1", "isRegex": True, "isEqual": True}]}
    fw = forwarder(am, clock)
    fw.apply(alarm_event("A1", "ACKNOWLEDGED", acknowledged_by="王工"), replay=True)
    fw.apply(alarm_event("A1", "CLEARED", acknowledged_by="王工"), replay=True)
    fw.flush()
    assert [s["id"] for s in am.active_silences()] == ["s-other"]  # not one of ours


# -- limits --------------------------------------------------------------------------------
def test_when_full_a_lesser_alarm_makes_room_and_a_lesser_new_one_is_refused(
        am: FakeAlertmanager, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    fw = forwarder(am, clock, max_active=2)
    fw.apply(alarm_event("W1", severity="WARNING", subject_id="S1"))
    fw.apply(alarm_event("W2", severity="WARNING", subject_id="S2", at=1))
    with caplog.at_level(logging.ERROR, logger="ebi.alarms"):
        assert fw.apply(alarm_event("C1", severity="CRITICAL", subject_id="S3"))
        assert set(fw.active) == {"W2", "C1"}
        assert fw.apply(alarm_event("C2", severity="CRITICAL", subject_id="S4"))
        assert set(fw.active) == {"C1", "C2"}
        assert not fw.apply(alarm_event("I1", severity="INFO", subject_id="S5"))
    assert set(fw.active) == {"C1", "C2"}
    assert fw.stats.evicted == 2 and fw.stats.dropped == 1
    assert "W1" in caplog.text and "raise --max-active" in caplog.text


def test_the_queue_of_resolved_alerts_is_bounded(am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock, max_pending=3)
    for n in range(5):
        fw.apply(alarm_event(f"A{n}", "CLEARED", subject_id=f"S{n}"))
    fw.flush()
    assert [a["labels"]["alarm_id"] for a in am.alerts()] == ["A2", "A3", "A4"]
    assert fw.stats.overflow == 2


def test_invalid_events_are_counted_and_skipped(am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    assert not fw.apply(alarm_event(alarm_id=""))
    assert not fw.apply(alarm_event(transition="EXPLODED"))
    assert not fw.apply(alarm_event(changed_at=None))
    assert fw.stats.invalid == 3 and fw.active == {}


def test_repost_must_be_shorter_than_the_lease(am: FakeAlertmanager) -> None:
    with pytest.raises(ValueError, match="shorter than the lease"):
        AlarmForwarder(am, repost_every=300, lease=240)


# -- failures ------------------------------------------------------------------------------
def test_an_unreachable_alertmanager_is_retried_with_backoff_and_nothing_is_lost(
        am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    fw.apply(alarm_event("A1"))
    fw.apply(alarm_event("A2", "CLEARED", subject_id="S2"))
    am.fail = [AlertmanagerError("POST", "/api/v2/alerts", 0, "no answer")]
    assert not fw.flush()
    assert fw.stats.errors == 1
    requests = len(am.requests)
    clock.advance(0.5)
    assert not fw.flush()  # backing off: not even tried
    assert len(am.requests) == requests
    clock.advance(5)
    assert fw.flush()
    assert {a["labels"]["alarm_id"] for a in am.alerts()} == {"A1", "A2"}
    assert fw.last_ok == clock()


def test_the_backoff_grows_to_a_limit(am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock, max_backoff=8.0)
    fw.apply(alarm_event("A1"))
    waits = []
    for _ in range(6):
        am.fail = [AlertmanagerError("POST", "/api/v2/alerts", 503, "busy")]
        fw.flush()
        waits.append(fw._retry_at - clock())
        clock.t = fw._retry_at
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_failures_are_logged_at_most_once_per_interval(
        am: FakeAlertmanager, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    fw = forwarder(am, clock, log_every=3600.0, max_backoff=0.0)
    fw.apply(alarm_event("A1"))
    with caplog.at_level(logging.WARNING, logger="ebi.alarms"):
        for _ in range(20):
            am.fail = [AlertmanagerError("POST", "/api/v2/alerts", 0, "connection refused")]
            assert not fw.flush()
    assert sum("alarm delivery failed" in r.getMessage() for r in caplog.records) == 1
    assert fw.stats.errors == 20


def test_an_unexpected_error_does_not_escape(am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    fw.apply(alarm_event("A1"))
    am.fail = [KeyError("surprise")]
    assert fw.flush() is False
    clock.advance(5)
    assert fw.flush()


def test_a_refused_alert_costs_only_itself(am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    for name in ("A1", "BAD", "A3"):
        fw.apply(alarm_event(name, subject_id=name))
    am.refuse = {"BAD"}
    assert fw.flush()
    assert set(fw.active) == {"A1", "A3"}
    assert fw.stats.rejected == 1 and fw.stats.posted == 2
    clock.advance(60)
    fw.flush()
    assert "BAD" not in {a["labels"]["alarm_id"] for a in am.posts()[-1]}


def test_expiring_a_silence_that_is_gone_is_fine(am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    fw.apply(alarm_event("A1", "ACKNOWLEDGED", acknowledged_by="王工"))
    fw.flush()
    am.silences.clear()
    fw.apply(alarm_event("A1", "CLEARED", at=5))
    assert fw.flush()
    assert fw.pending()["expire"] == 0


def test_throttle_counts_what_it_holds_back() -> None:
    now = [0.0]
    throttle = Throttle(10.0, clock=lambda: now[0])
    assert throttle("x") == 0
    assert throttle("x") is None and throttle("x") is None
    assert throttle("y") == 0
    now[0] = 11.0
    assert throttle("x") == 2


def test_pending_work_is_visible(am: FakeAlertmanager, clock: Clock) -> None:
    fw = forwarder(am, clock)
    fw.apply(alarm_event("A1", "ACKNOWLEDGED", acknowledged_by="王工"))
    fw.apply(alarm_event("A2", "CLEARED", subject_id="S2"))
    assert fw.pending() == {"post": 1, "resolved": 1, "silence": 1, "expire": 0}
    fw.flush()
    assert fw.pending() == {"post": 0, "resolved": 0, "silence": 0, "expire": 0}
    clock.advance(timedelta(minutes=1).total_seconds())
    assert fw.pending()["post"] == 1
