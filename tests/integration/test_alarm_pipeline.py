"""Alarms through the live pipeline, end to end: telemetry and heartbeats are published to
Kafka, a real ``ebi worker`` keeps the alarm book and writes AlarmEvents, the forwarder (the
code of ``ebi alarms forward``) posts them to the session's real Alertmanager (Debian's
prometheus-alertmanager, the repo's routing, group_wait and group_interval at 1 s through
its config), which notifies the webhook receiver of the test; an operator acknowledges
with ``ebi alarms ack`` (a real subprocess, as the ``operator`` principal with the ACLs the
catalog gives that role).

- raised: ONE notification, to the province's bureau (and the pager for a critical alarm);
- cleared: the value back under its limit minus the deadband -> a resolved notification;
- acknowledged: Alertmanager silences the alarm; later updates notify nobody;
- a sensor chattering at its limit for 10 minutes (simulated time): one alarm, one
  notification.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from schemas.catalog import default_catalog
from schemas.codec import AvroDeserializer, SerializationContext
from streams import clients
from streams.alarms.forwarder import AlarmForwarder, HttpTransport
from streams.alarms.run import AlarmSource, events_topic, forward
from streams.kafkaio import OutputReader, publish
from streams.settings import Settings
from streams.worker.topics import ensure_topics
from tests.integration.conftest import as_principal, security_env, unique
from tests.integration.test_worker_kit import WorkerProcess
from tests.integration.webhook import Notification, WebhookReceiver

pytestmark = pytest.mark.integration

S = 1000
ALERTS = default_catalog().output("alert").topic.name
SETTLE = 4.0     # seconds of re-posting after a notification: several group intervals (1 s)


@dataclass
class Live:
    settings: Settings
    worker: WorkerProcess
    hook: WebhookReceiver
    alertmanager: str
    run: str
    sequence: dict[str, int] = field(default_factory=dict)

    def id(self, name: str) -> str:
        return f"{self.run}-{name}"

    def publish(self, items: list[tuple[str, str, dict[str, Any]]]) -> None:
        publish(self.settings, clients.registry(self.settings), items)

    def envelope(self, gateway: str, enterprise: str,
                 readings: list[tuple[str, float, int]]) -> tuple[str, str, dict[str, Any]]:
        seq = self.sequence[gateway] = self.sequence.get(gateway, 0) + 1
        rows = [{"reading_id": f"{gateway}-{seq}-{i}", "sensor_id": sensor, "metric": "METHANE",
                 "value": value, "unit": "PERCENT_VOL", "quality": "GOOD", "event_time": at}
                for i, (sensor, value, at) in enumerate(readings)]
        return ("telemetry", gateway, {"gateway_id": gateway, "enterprise_id": enterprise,
                                       "sent_at": max(at for _, _, at in readings),
                                       "sequence": seq, "readings": rows})

    def notes(self, sensor: str, alertname: str, status: str | None = None,
              receiver: str | None = None) -> list[Notification]:
        """Notifications carrying the alarm of ``sensor`` and type ``alertname``."""
        def about(n: Notification) -> bool:
            return (receiver is None or n.receiver == receiver) and any(
                a["labels"].get("subject") == f"sensor:{self.id(sensor)}"
                and a["labels"].get("alertname") == alertname
                and (status is None or a.get("status") == status) for a in n.alerts)
        return self.hook.notifications(about)

    def wait_note(self, sensor: str, alertname: str, status: str, receiver: str,
                  timeout: float = 120.0) -> dict[str, Any]:
        """The alert of the first matching notification (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.notes(sensor, alertname, status, receiver)
            if found:
                return next(a for a in found[0].alerts
                            if a["labels"].get("subject") == f"sensor:{self.id(sensor)}")
            assert self.worker.alive(), self.worker.tail()
            time.sleep(0.2)
        seen = [(n.receiver, n.status, [a["labels"].get("subject") for a in n.alerts])
                for n in self.hook.notifications()][-8:]
        raise AssertionError(f"no {status} {alertname} of {sensor} at {receiver} within "
                             f"{timeout:g} s; last notifications: {seen}\n{self.worker.tail()}")

    def am(self, path: str, **params: str) -> Any:
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        with urllib.request.urlopen(f"{self.alertmanager}{path}{query}", timeout=10) as rsp:
            return json.loads(rsp.read())


ENTERPRISES = (("ent-js", "320506"), ("ent-bj", "110105"), ("ent-zjg", "320582"))
# sensor -> (gateway, enterprise)
SENSORS = {"chA": ("gwA", "ent-js"), "chB": ("gwB", "ent-bj"), "chB2": ("gwB", "ent-bj"),
           "chC": ("gwC", "ent-zjg")}


@pytest.fixture(scope="module")
def live(settings: Settings, alertmanager_url: str,
         alarm_webhook: WebhookReceiver) -> Iterator[Live]:
    st = settings.replace(topic_prefix=f"{unique('alarms')}.", worker_id=unique("ebi-alarms"),
                          alertmanager_url=alertmanager_url)
    ensure_topics(st)
    run = unique("al").replace("_", "")
    live = Live(st, WorkerProcess(st), alarm_webhook, alertmanager_url, run)
    granted = _grant_operator(st)
    topic = st.topic(events_topic().name)
    deserializer = AvroDeserializer(clients.registry(st))
    context = SerializationContext(topic, events_topic().record)
    consumer = clients.consumer(st, f"{st.worker_id}-forwarder")
    source = AlarmSource(consumer, lambda data: deserializer(data, context)[0], topic)
    forwarder = AlarmForwarder(HttpTransport(alertmanager_url), repost_every=0.5, lease=60.0)
    stop = threading.Event()
    assert source.open(stop.is_set)
    loop = threading.Thread(target=forward, args=(source, forwarder, stop.is_set),
                            kwargs={"flush_every": 0.3}, daemon=True)
    loop.start()
    now = int(time.time() * 1000)
    live.publish([("enterprises", live.id(ent), {"enterprise_id": live.id(ent), "name": ent,
                                                 "region_code": region, "industry": "coal",
                                                 "updated_at": now - 86_400_000})
                  for ent, region in ENTERPRISES] +
                 [("sensors", live.id(sensor), {
                     "sensor_id": live.id(sensor), "enterprise_id": live.id(ent),
                     "gateway_id": live.id(gw), "metric": "METHANE", "unit": "PERCENT_VOL",
                     "alarm_level1": None, "alarm_level2": None, "updated_at": now - 86_400_000})
                  for sensor, (gw, ent) in SENSORS.items()])
    # an hour between heartbeats: no gateway goes offline while the test runs
    live.publish([("heartbeats", live.id(gw), {
        "gateway_id": live.id(gw), "enterprise_id": live.id(ent), "sent_at": now - 15 * 60 * S,
        "sequence": 0, "interval_s": 3600, "firmware": "it"})
        for gw, ent in {(g, e) for g, e in SENSORS.values()}])
    live.worker.start()
    try:
        yield live
    finally:
        stop.set()
        loop.join(timeout=15)
        consumer.close()
        live.worker.stop()
        _revoke(st, granted)
    assert not loop.is_alive()


def _grant_operator(settings: Settings) -> list[Any]:
    """The operator role's ACLs on this test's topics (added next to the session's, removed
    at the end: provisioning again would replace the session's)."""
    from streams.access import kafka_acls

    admin = clients.admin(settings)
    have = kafka_acls.current(admin, ["operator"])
    grants = sorted(set(kafka_acls.role_grants("operator", "operator", settings)) - have)
    if grants:
        for future in admin.create_acls([kafka_acls._binding(g) for g in grants],
                                        request_timeout=30).values():
            future.result()
    return grants


def _revoke(settings: Settings, grants: list[Any]) -> None:
    from confluent_kafka.admin import AclBindingFilter

    from streams.access import kafka_acls

    op, perm, pattern, rtype = kafka_acls._enums()
    filters = [AclBindingFilter(rtype[kafka_acls._RESOURCE[g.resource]], g.name,
                                pattern[g.pattern.upper()], g.principal, "*",
                                op[g.operation], perm.ALLOW) for g in grants]
    if filters:
        admin = clients.admin(settings)      # kept alive until the futures resolve
        for future in admin.delete_acls(filters, request_timeout=30).values():
            future.result()


def ack(live: Live, alarm: str, by: str, note: str) -> subprocess.CompletedProcess[str]:
    operator = as_principal(live.settings, "operator")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBI_")}
    env.update({"EBI_KAFKA_BOOTSTRAP": operator.bootstrap,
                "EBI_SCHEMA_REGISTRY_URL": operator.registry_url,
                "EBI_TOPIC_PREFIX": operator.topic_prefix, "EBI_WORKER_ID": "operator-ack",
                "EBI_DATA_DIR": str(operator.data_dir), **security_env(operator)})
    return subprocess.run([sys.executable, "-m", "streams", "alarms", "ack", alarm, "--by", by,
                           "--note", note, "--wait", "90"], env=env, capture_output=True,
                          text=True, timeout=180)


def settle(live: Live, seconds: float = SETTLE) -> None:
    time.sleep(seconds)      # the forwarder keeps re-posting meanwhile (every 0.5 s)


def test_raised_alarm_is_one_notification_and_its_clear_a_resolved_one(live: Live) -> None:
    sensor, gw, ent = live.id("chA"), live.id("gwA"), live.id("ent-js")
    t0 = int(time.time() * 1000) - 90 * S
    rising = [0.4, 0.8, 1.2, 1.6, 1.7]        # steps under the spike threshold
    # one envelope: the first- and second-level alarms are raised by the same message, so
    # they reach Alertmanager together and the inhibition decides (readings arriving apart
    # would rightly notify the first-level alarm before the second exists)
    live.publish([live.envelope(gw, ent, [(sensor, v, t0 + i * 10 * S)
                                          for i, v in enumerate(rising)])])
    critical = live.wait_note("chA", "ALARM_L2", "firing", "bureau-32")
    labels = critical["labels"]
    assert (labels["severity"], labels["province"], labels["region_code"]) == (
        "critical", "32", "320506")
    assert (labels["enterprise_id"], labels["gateway_id"]) == (ent, gw)
    assert labels["alarm_id"].endswith(f"@{gw}")
    assert "二级报警" in critical["annotations"]["summary"]
    assert "second-level alarm" in critical["annotations"]["summary_en"].lower()
    live.wait_note("chA", "ALARM_L2", "firing", "oncall-pager")
    settle(live)
    assert len(live.notes("chA", "ALARM_L2", "firing", "bureau-32")) == 1
    assert len(live.notes("chA", "ALARM_L2", "firing", "oncall-pager")) == 1
    assert {n.receiver for n in live.notes("chA", "ALARM_L2")} == {"bureau-32", "oncall-pager"}
    # the first-level alarm of the same sensor is covered by the critical one: Alertmanager
    # holds it inhibited. Both come from one message, but on two partitions of alarm.events;
    # should the forwarder read the first-level one a group wait (1 s here) before the other,
    # Alertmanager rightly notifies it once before the inhibition starts (timing, not the rule)
    first = [a for a in live.am("/api/v2/alerts", filter=f'subject="sensor:{sensor}"')
             if a["labels"]["alertname"] == "ALARM_L1"]
    assert len(first) == 1 and first[0]["status"]["state"] == "suppressed", first
    assert first[0]["status"]["inhibitedBy"]
    assert len(live.notes("chA", "ALARM_L1", "firing")) <= 1

    # back under the limits minus the deadband for the off-delay (30 s): both clear
    falling = [1.3, 0.85, 0.5, 0.3, 0.3]
    t1 = t0 + 50 * S
    live.publish([live.envelope(gw, ent, [(sensor, v, t1 + i * 10 * S)])
                  for i, v in enumerate(falling)])
    resolved = live.wait_note("chA", "ALARM_L2", "resolved", "bureau-32")
    assert resolved["labels"]["alarm_id"] == labels["alarm_id"]
    live.wait_note("chA", "ALARM_L2", "resolved", "oncall-pager")
    assert live.am("/api/v2/alerts", filter=f'alarm_id="{labels["alarm_id"]}"') == []


def test_an_acknowledged_alarm_is_silenced(live: Live) -> None:
    gw, ent = live.id("gwB"), live.id("ent-bj")
    t0 = int(time.time() * 1000) - 60 * S
    live.publish([live.envelope(gw, ent, [(live.id("chB"), 1.2, t0)])])
    alert = live.wait_note("chB", "ALARM_L1", "firing", "bureau-11")
    alarm = alert["labels"]["alarm_id"]

    done = ack(live, alarm, "王工", "已派人现场处置")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"alarm {alarm} (ALARM_L1 on sensor {live.id('chB')}) acknowledged by 王工" in \
        done.stdout
    deadline = time.monotonic() + 60
    while True:
        silences = [s for s in live.am("/api/v2/silences", filter=f'alarm_id="{alarm}"')
                    if s["status"]["state"] == "active"]
        if silences or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert len(silences) == 1, silences
    assert (silences[0]["createdBy"], silences[0]["comment"]) == ("王工", "已派人现场处置")
    status = live.am("/api/v2/alerts", filter=f'alarm_id="{alarm}"')[0]["status"]
    assert status["silencedBy"] == [silences[0]["id"]]

    # it keeps going (a higher peak, another crossing), and a second alarm joins its group:
    # the group's next notification carries the new alarm only
    live.publish([live.envelope(gw, ent, [(live.id("chB"), 0.95, t0 + 10 * S),
                                          (live.id("chB"), 1.45, t0 + 70 * S),
                                          (live.id("chB2"), 1.1, t0 + 70 * S)])])
    note = live.wait_note("chB2", "ALARM_L1", "firing", "bureau-11")
    assert note["labels"]["alarm_id"] != alarm
    settle(live)
    assert len(live.notes("chB", "ALARM_L1")) == 1       # only the one before the ack
    # a command about an alarm that is not active is refused, and says so
    refused = ack(live, "0123456789abcdef@" + gw, "王工", "")
    assert refused.returncode == 1 and "UNKNOWN_ALARM" in refused.stderr


def test_a_sensor_chattering_at_its_limit_is_one_alarm_and_one_notification(
        live: Live) -> None:
    sensor, gw, ent = live.id("chC"), live.id("gwC"), live.id("ent-zjg")
    start = int(time.time() * 1000) - 11 * 60 * S
    outputs = OutputReader(live.settings, clients.registry(live.settings),
                           [events_topic().name, ALERTS],
                           start=OutputReader.end_offsets(live.settings,
                                                          [events_topic().name, ALERTS]))
    try:
        # just under and just over the 1.0 % limit on every reading, 10 s apart, 10 minutes
        live.publish([live.envelope(gw, ent, [(sensor, 1.03 if i % 2 else 0.97,
                                               start + i * 10 * S)]) for i in range(61)])
        live.wait_note("chC", "ALARM_L1", "firing", "bureau-32")
        settle(live)
        assert len(live.notes("chC", "ALARM_L1")) == 1

        def all_crossings(_: Any) -> bool:
            return len([a for a in outputs.of(ALERTS) if a["subject_id"] == sensor
                        and a["alert_type"] == "ALARM_L1"]) >= 30

        assert outputs.until(all_crossings, 60)
    finally:
        outputs.close()
    events = [e for e in outputs.of(events_topic().name) if e["subject_id"] == sensor
              and e["alarm_type"] == "ALARM_L1"]
    assert [e["transition"] for e in events].count("RAISED") == 1
    assert len({e["alarm_id"] for e in events}) == 1 and "CLEARED" not in {
        e["transition"] for e in events}
    crossings = [a for a in outputs.of(ALERTS) if a["subject_id"] == sensor
                 and a["alert_type"] == "ALARM_L1"]
    assert len(crossings) == 30            # the chatter the alarm book absorbed
