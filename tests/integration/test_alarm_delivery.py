"""Alarms reach people through the real Alertmanager (Debian's prometheus-alertmanager).

The session's Alertmanager runs the repo's routing (deploy/alertmanager/alertmanager.yml)
with group_wait and group_interval at 1 s and every receiver posting to a webhook server of
the test. Most tests drive the forwarder directly (apply + flush); the last one goes through
Kafka and the registry end to end.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.alarms.forwarder import AlarmForwarder, HttpTransport
from streams.settings import Settings
from tests.integration.webhook import WebhookReceiver

pytestmark = pytest.mark.integration

SETTLE = 3.0  # seconds of re-posting after a notification: several group intervals (1 s)


def now() -> datetime:
    return datetime.now(UTC)


def event(alarm_id: str, transition: str = "RAISED", *, alarm_type: str = "ALARM_L2",
          severity: str = "CRITICAL", region: str = "320506", enterprise: str = "",
          gateway: str = "", subject: tuple[str, str] = ("sensor", ""), count: int = 1,
          value: float | None = 1.6, peak: float | None = 1.6, raised: datetime | None = None,
          changed: datetime | None = None, cleared: datetime | None = None,
          acknowledged_by: str | None = None, note: str | None = None) -> dict[str, Any]:
    raised = raised or now()
    return {
        "event_id": f"{alarm_id}:{transition}:{count}", "alarm_id": alarm_id,
        "alarm_type": alarm_type, "severity": severity, "transition": transition,
        "subject_type": subject[0], "subject_id": subject[1] or f"S-{alarm_id}",
        "enterprise_id": enterprise or f"E-{alarm_id}", "gateway_id": gateway,
        "region_code": region, "raised_at": raised, "changed_at": changed or now(),
        "cleared_at": cleared, "value": value, "peak": peak, "threshold": 1.0, "count": count,
        "message_zh": f"{alarm_type} 甲烷浓度超限",
        "message_en": f"{alarm_type} methane above limit",
        "acknowledged_by": acknowledged_by, "note": note, "tag": None,
    }


def new_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def forwarder(alertmanager_url: str) -> AlarmForwarder:
    return AlarmForwarder(HttpTransport(alertmanager_url, timeout=5), repost_every=0.5,
                          lease=60.0, silence_lease=600.0)


def keep_posting(forwarder: AlarmForwarder, seconds: float = SETTLE) -> None:
    """Flush as the loop does (the re-posts included) for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert forwarder.flush(), forwarder.stats
        time.sleep(0.2)


def am_get(url: str, path: str, **params: str) -> Any:
    query = ("?" + urllib.parse.urlencode(params)) if params else ""
    with urllib.request.urlopen(f"{url}{path}{query}", timeout=10) as rsp:
        return json.loads(rsp.read())


def am_alert(url: str, alarm_id: str) -> dict[str, Any]:
    alerts = am_get(url, "/api/v2/alerts", filter=f'alarm_id="{alarm_id}"')
    assert len(alerts) == 1, alerts
    alert: dict[str, Any] = alerts[0]
    return alert


def firing(hook: WebhookReceiver, alarm_id: str, receiver: str | None = None) -> list[Any]:
    return hook.about(alarm_id, status="firing", receiver=receiver)


def test_raised_alarm_reaches_its_bureau_and_the_pager_once(
        forwarder: AlarmForwarder, alarm_webhook: WebhookReceiver) -> None:
    alarm = new_id("raised")
    assert forwarder.apply(event(alarm, region="320506", severity="CRITICAL"))
    assert forwarder.flush()
    note = alarm_webhook.wait_for(lambda n: alarm in n.alarm_ids("firing")
                                  and n.receiver == "bureau-32", what=f"bureau-32 for {alarm}")
    assert note.path == "/alarms/bureau-32"
    alert = next(a for a in note.alerts if a["labels"]["alarm_id"] == alarm)
    assert alert["labels"]["province"] == "32" and alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == "ALARM_L2 甲烷浓度超限"
    alarm_webhook.wait_for(lambda n: alarm in n.alarm_ids() and n.receiver == "oncall-pager",
                           what=f"the pager for {alarm}")
    keep_posting(forwarder)
    assert len(firing(alarm_webhook, alarm, "bureau-32")) == 1
    assert len(firing(alarm_webhook, alarm, "oncall-pager")) == 1
    assert {n.receiver for n in alarm_webhook.about(alarm)} == {"bureau-32", "oncall-pager"}


def test_warning_of_a_province_without_a_bureau_goes_to_the_national_desk_only(
        forwarder: AlarmForwarder, alarm_webhook: WebhookReceiver) -> None:
    alarm = new_id("national")
    forwarder.apply(event(alarm, alarm_type="HAZARD_OVERDUE", severity="WARNING",
                          region="440305", subject=("hazard", "H-1")))
    assert forwarder.flush()
    alarm_webhook.wait_for(lambda n: alarm in n.alarm_ids() and n.receiver == "bureau-national")
    keep_posting(forwarder, 2.0)
    assert [n.receiver for n in alarm_webhook.about(alarm)] == ["bureau-national"]


def test_cleared_alarm_sends_a_resolved_notification(
        forwarder: AlarmForwarder, alarm_webhook: WebhookReceiver, alertmanager_url: str) -> None:
    alarm = new_id("cleared")
    raised = event(alarm, severity="WARNING", region="420102")
    forwarder.apply(raised)
    assert forwarder.flush()
    alarm_webhook.wait_for(lambda n: alarm in n.alarm_ids("firing") and n.receiver == "bureau-42")
    forwarder.apply(event(alarm, "CLEARED", severity="WARNING", region="420102",
                          raised=raised["raised_at"], cleared=now()))
    assert alarm not in forwarder.active
    assert forwarder.flush()
    note = alarm_webhook.wait_for(lambda n: alarm in n.alarm_ids("resolved")
                                  and n.receiver == "bureau-42", what="the resolved notification")
    assert note.status == "resolved"
    assert am_get(alertmanager_url, "/api/v2/alerts", filter=f'alarm_id="{alarm}"') == []
    keep_posting(forwarder, 2.0)
    assert len(alarm_webhook.about(alarm, receiver="bureau-42")) == 2  # firing, resolved


def test_acknowledged_alarm_is_silenced_until_it_clears(
        forwarder: AlarmForwarder, alarm_webhook: WebhookReceiver, alertmanager_url: str) -> None:
    first, second = new_id("acked"), new_id("other")
    enterprise = new_id("E")  # both alarms in one notification group
    forwarder.apply(event(first, severity="WARNING", region="110105", enterprise=enterprise))
    assert forwarder.flush()
    alarm_webhook.wait_for(lambda n: first in n.alarm_ids("firing") and n.receiver == "bureau-11")

    forwarder.apply(event(first, "ACKNOWLEDGED", severity="WARNING", region="110105",
                          enterprise=enterprise, acknowledged_by="王工",
                          note="已派人现场处置"))
    assert forwarder.flush()
    silences = am_get(alertmanager_url, "/api/v2/silences", filter=f'alarm_id="{first}"')
    assert len(silences) == 1
    silence = silences[0]
    assert silence["status"]["state"] == "active"
    assert silence["createdBy"] == "王工" and silence["comment"] == "已派人现场处置"
    assert silence["matchers"] == [{"name": "alarm_id", "value": first, "isRegex": False,
                                    "isEqual": True}]
    assert am_alert(alertmanager_url, first)["status"]["silencedBy"] == [silence["id"]]

    # A new alarm in the same group is notified; the acknowledged one is no longer in it.
    forwarder.apply(event(second, severity="WARNING", region="110105", enterprise=enterprise))
    forwarder.apply(event(first, "UPDATED", severity="WARNING", region="110105",
                          enterprise=enterprise, count=2, peak=2.5))
    assert forwarder.flush()
    note = alarm_webhook.wait_for(lambda n: second in n.alarm_ids("firing"))
    assert first not in note.alarm_ids()
    keep_posting(forwarder)
    assert len(alarm_webhook.about(first)) == 1  # only the notification before the ack

    # Cleared: the silence ends with the alarm.
    forwarder.apply(event(first, "CLEARED", severity="WARNING", region="110105",
                          enterprise=enterprise, cleared=now()))
    assert forwarder.flush()
    states = {s["status"]["state"] for s in
              am_get(alertmanager_url, "/api/v2/silences", filter=f'alarm_id="{first}"')}
    assert states == {"expired"}
    assert forwarder.stats.silences_created == 1 and forwarder.stats.silences_expired == 1
    # ... and whoever was told about the alarm learns that it is over.
    alarm_webhook.wait_for(lambda n: first in n.alarm_ids("resolved")
                           and n.receiver == "bureau-11", what="the resolved acknowledged alarm")


def test_a_second_forwarder_adopts_the_silence_instead_of_doubling_it(
        alertmanager_url: str) -> None:
    alarm = new_id("adopt")
    acked = event(alarm, "ACKNOWLEDGED", severity="INFO", region="320100",
                  acknowledged_by="李工", note="观察中")
    forwarders = [AlarmForwarder(HttpTransport(alertmanager_url), repost_every=0.5, lease=60)
                  for _ in range(2)]
    for forwarder in forwarders:
        forwarder.apply(acked)
        assert forwarder.flush()
    silences = am_get(alertmanager_url, "/api/v2/silences", filter=f'alarm_id="{alarm}"')
    assert [s["status"]["state"] for s in silences] == ["active"]
    assert forwarders[1].stats.silences_adopted == 1
    for forwarder in forwarders:
        forwarder.apply(event(alarm, "CLEARED", severity="INFO", region="320100", cleared=now()))
        assert forwarder.flush()
    states = [s["status"]["state"] for s in
              am_get(alertmanager_url, "/api/v2/silences", filter=f'alarm_id="{alarm}"')]
    assert states == ["expired"]


def test_a_chattering_alarm_is_one_notification(
        forwarder: AlarmForwarder, alarm_webhook: WebhookReceiver) -> None:
    alarm = new_id("chatter")
    raised = event(alarm, alarm_type="SPIKE", severity="WARNING", region="320211")
    forwarder.apply(raised)
    assert forwarder.flush()
    for count in range(2, 32):  # 30 updates over about 3 s: several group intervals
        forwarder.apply(event(alarm, "UPDATED", alarm_type="SPIKE", severity="WARNING",
                              region="320211", count=count, value=1.0 + count / 10,
                              peak=1.0 + count / 10, raised=raised["raised_at"]))
        assert forwarder.flush()
        time.sleep(0.1)
    alarm_webhook.wait_for(lambda n: alarm in n.alarm_ids())
    keep_posting(forwarder)
    notes = alarm_webhook.about(alarm)
    assert [n.receiver for n in notes] == ["bureau-32"]
    assert forwarder.stats.posted > 30


def test_an_offline_gateway_inhibits_its_sensors_alarms(
        forwarder: AlarmForwarder, alarm_webhook: WebhookReceiver, alertmanager_url: str) -> None:
    gateway, sensor_alarm, gateway_alarm = new_id("G"), new_id("silent"), new_id("offline")
    enterprise = new_id("E")
    common = {"severity": "WARNING", "region": "320582", "enterprise": enterprise,
              "gateway": gateway, "value": None, "peak": None}
    forwarder.apply(event(gateway_alarm, alarm_type="GATEWAY_OFFLINE",
                          subject=("gateway", gateway), **common))  # type: ignore[arg-type]
    forwarder.apply(event(sensor_alarm, alarm_type="SENSOR_SILENT",
                          subject=("sensor", new_id("S")), **common))  # type: ignore[arg-type]
    assert forwarder.flush()
    alarm_webhook.wait_for(lambda n: gateway_alarm in n.alarm_ids() and n.receiver == "bureau-32")
    keep_posting(forwarder)
    assert alarm_webhook.about(sensor_alarm) == []
    status = am_alert(alertmanager_url, sensor_alarm)["status"]
    assert status["state"] == "suppressed" and status["inhibitedBy"]

    # The gateway is back while its sensor is still silent: now that alarm is news.
    forwarder.apply(event(gateway_alarm, "CLEARED", alarm_type="GATEWAY_OFFLINE",
                          subject=("gateway", gateway), cleared=now(),
                          **common))  # type: ignore[arg-type]
    assert forwarder.flush()
    alarm_webhook.wait_for(lambda n: sensor_alarm in n.alarm_ids("firing"),
                           what="the sensor alarm after the gateway came back")


def test_a_critical_alarm_covers_the_warning_of_the_same_sensor(
        forwarder: AlarmForwarder, alarm_webhook: WebhookReceiver, alertmanager_url: str) -> None:
    sensor = new_id("S")
    first_level, second_level = new_id("l1"), new_id("l2")
    forwarder.apply(event(second_level, alarm_type="ALARM_L2", severity="CRITICAL",
                          subject=("sensor", sensor)))
    forwarder.apply(event(first_level, alarm_type="ALARM_L1", severity="WARNING",
                          subject=("sensor", sensor)))
    assert forwarder.flush()
    alarm_webhook.wait_for(lambda n: second_level in n.alarm_ids() and n.receiver == "bureau-32")
    keep_posting(forwarder)
    assert alarm_webhook.about(first_level) == []
    assert am_alert(alertmanager_url, first_level)["status"]["inhibitedBy"]


# -- end to end through Kafka ------------------------------------------------------------------
@pytest.fixture()
def alarm_settings(settings: Settings, alertmanager_url: str) -> Settings:
    return settings.replace(topic_prefix=f"{settings.topic_prefix}{uuid.uuid4().hex[:6]}.",
                            alertmanager_url=alertmanager_url)


@pytest.fixture()
def alarm_topic(alarm_settings: Settings) -> Iterator[str]:
    from confluent_kafka.admin import NewTopic

    from streams import clients
    from streams.alarms.run import events_topic

    name = alarm_settings.topic(events_topic().name)
    admin = clients.admin(alarm_settings)
    futures = admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1,
                                            config={"cleanup.policy": "compact"})])
    futures[name].result(30)
    yield name
    admin.delete_topics([name])


def produce(settings: Settings, topic: str, events: list[dict[str, Any]]) -> None:
    from schemas.codec import AvroSerializer, SerializationContext
    from streams import clients
    from streams.alarms.run import events_topic

    serialize = AvroSerializer(clients.registry(settings))
    context = SerializationContext(topic, events_topic().record)
    producer = clients.producer(settings, acks="all")
    for item in events:
        producer.produce(topic, key=item["alarm_id"].encode(), value=serialize(item, context))
    assert producer.flush(30) == 0


def test_alarms_from_kafka_reach_people_end_to_end(
        alarm_settings: Settings, alarm_topic: str, alarm_webhook: WebhookReceiver) -> None:
    from schemas.codec import AvroDeserializer, SerializationContext
    from streams import clients
    from streams.alarms.run import AlarmSource, events_topic, forward

    past, active, live = new_id("past"), new_id("active"), new_id("live")
    hour_ago = now() - timedelta(hours=1)
    history = [
        event(past, region="320300", raised=hour_ago, changed=hour_ago),
        event(past, "CLEARED", region="320300", raised=hour_ago,
              changed=hour_ago + timedelta(minutes=5), cleared=hour_ago + timedelta(minutes=5)),
        event(active, severity="WARNING", region="320400"),
    ]
    produce(alarm_settings, alarm_topic, history)

    deserializer = AvroDeserializer(clients.registry(alarm_settings))
    context = SerializationContext(alarm_topic, events_topic().record)
    consumer = clients.consumer(alarm_settings, f"alarms-{uuid.uuid4().hex[:6]}")
    source = AlarmSource(consumer, lambda data: deserializer(data, context)[0], alarm_topic)
    forwarder = AlarmForwarder(HttpTransport(alarm_settings.alertmanager_address),
                               repost_every=0.5, lease=60.0)
    stop = threading.Event()
    assert source.open(stop.is_set)
    loop = threading.Thread(target=forward, args=(source, forwarder, stop.is_set),
                            kwargs={"flush_every": 0.3}, daemon=True)
    loop.start()
    try:
        alarm_webhook.wait_for(lambda n: active in n.alarm_ids("firing")
                               and n.receiver == "bureau-32", timeout=60,
                               what="the alarm active in the history")
        assert source.replayed == 3 and not source.replaying
        produce(alarm_settings, alarm_topic, [
            event(active, "CLEARED", severity="WARNING", region="320400", cleared=now()),
            event(live, region="320500"),
        ])
        alarm_webhook.wait_for(lambda n: active in n.alarm_ids("resolved"), timeout=60,
                               what="the resolved notification from Kafka")
        alarm_webhook.wait_for(lambda n: live in n.alarm_ids("firing")
                               and n.receiver == "oncall-pager", timeout=60,
                               what="the live critical alarm on the pager")
    finally:
        stop.set()
        loop.join(timeout=15)
        consumer.close()
    assert not loop.is_alive()
    assert alarm_webhook.about(past) == []  # raised and cleared in the history: never news
    assert set(forwarder.active) == {live}


def test_the_ebi_alarms_forward_command(alarm_settings: Settings, alarm_topic: str,
                                        alarm_webhook: WebhookReceiver) -> None:
    import os
    import subprocess
    import sys

    alarm = new_id("cli")
    produce(alarm_settings, alarm_topic, [event(alarm, severity="WARNING", region="321000")])
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBI_")}
    env.update({"EBI_KAFKA_BOOTSTRAP": alarm_settings.bootstrap,
                "EBI_SCHEMA_REGISTRY_URL": alarm_settings.registry_url,
                "EBI_TOPIC_PREFIX": alarm_settings.topic_prefix,
                "EBI_ALERTMANAGER_URL": alarm_settings.alertmanager_address,
                "EBI_DATA_DIR": str(alarm_settings.data_dir), "EBI_LOG_LEVEL": "INFO"})
    command = [sys.executable, "-m", "streams", "alarms", "forward", "--duration", "60",
               "--repost-every", "1", "--lease", "30"]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        try:
            alarm_webhook.wait_for(lambda n: alarm in n.alarm_ids("firing")
                                   and n.receiver == "bureau-32", timeout=45,
                                   what="the alarm forwarded by `ebi alarms forward`")
        finally:
            proc.terminate()
            output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "alarm replay done: 1 event(s), 1 active alarm(s)" in output
