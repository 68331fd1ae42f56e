"""ebi's record types and outputs: one declaration each (see :mod:`.model`).

Adding a record type means: its ``.avsc`` files in ``schemas/avro``, one :class:`RecordType`
here, its processor (and its checks) — see docs/architecture.md. Topic names are logical;
``Settings.topic(name)`` adds the deployment's prefix.
"""

from __future__ import annotations

from schemas.catalog.model import (
    Ledger,
    Output,
    RecordType,
    Reference,
    Signed,
    State,
    Table,
    Topic,
    View,
)

GATEWAYS = State("gateways", "gateway_id", clock="streams.processors.gateways:GatewayClock",
                 upgrade="streams.processors.layouts:upgrade_gateway")
INCIDENTS = State("incidents", "incident_id", clock="streams.processors.incidents:IncidentClock",
                  upgrade="streams.processors.layouts:upgrade_incident")
HAZARDS = State("hazards", "hazard_id", clock="streams.processors.hazards:HazardClock",
                upgrade="streams.processors.layouts:upgrade_hazard")
# The alarm book (streams/alarms/book.py): the alarms of every subject, keyed like the record
# that was processed (gateway, incident or hazard id: "home"), so they share its partition.
ALARMS = State("alarms", "home", clock="streams.alarms.book:AlarmClock")

TELEMETRY = RecordType(
    "telemetry", Topic("telemetry", "TelemetryBatch", "gateway_id", receipt_time=True),
    checks="streams.records.rules:check_telemetry",
    processor="streams.processors.telemetry:TelemetryProcessor", state=GATEWAYS,
    clean=Topic("telemetry.clean", "EnrichedTelemetryBatch", "gateway_id"),
    table=Table("readings_raw", columnar=True, row_id="reading_id", row_time="event_time",
                skip=frozenset({"readings_in", "duplicates", "rejected", "recheck"}),
                order_by=("enterprise_id", "sensor_id", "event_time", "reading_id"),
                partition_by="toYYYYMM(event_time)", event_time="sent_at",
                views=(View("readings"),),
                doc="One row per accepted sensor reading (envelope fields repeated)."),
    ledger=Ledger("telemetry", ("gateway_id", "sequence"), counts="rows"),
    event_time="sent_at", flat_items="readings", canary=True, senders=("gateway",),
    signed=Signed(("GATEWAY",), gateway="gateway_id", enterprise="enterprise_id"))

HEARTBEAT = RecordType(
    "heartbeat", Topic("heartbeats", "GatewayHeartbeat", "gateway_id", receipt_time=True),
    checks="streams.records.rules:check_heartbeat",
    processor="streams.processors.gateways:HeartbeatProcessor", state=GATEWAYS,
    clean=Topic("heartbeats.clean", "EnrichedHeartbeat", "gateway_id"),
    table=Table("heartbeats_raw", order_by=("gateway_id", "sent_at", "sequence"),
                partition_by="toYYYYMM(sent_at)", event_time="sent_at",
                views=(View("heartbeats"),),
                doc="Every heartbeat of every gateway (a gateway's signs of life)."),
    ledger=Ledger("heartbeat", ("gateway_id", "sequence")),
    event_time="sent_at", canary=True, senders=("gateway",),
    signed=Signed(("GATEWAY",), gateway="gateway_id", enterprise="enterprise_id"))

HAZARD = RecordType(
    "hazard", Topic("hazards", "HazardRecord", "hazard_id", receipt_time=True),
    checks="streams.records.rules:check_hazard",
    processor="streams.processors.hazards:HazardProcessor", state=HAZARDS,
    clean=Topic("hazards.clean", "EnrichedHazardRecord", "hazard_id"),
    table=Table("hazards_raw", skip=frozenset({"duplicate"}), order_by=("hazard_id", "version"),
                event_time="updated_at",
                views=(View("hazard_versions"),
                       View("hazards", latest_by=("hazard_id",), order=("version DESC",),
                            columns=("days_overdue",))),
                doc="Every version of every hidden-danger record."),
    ledger=Ledger("hazard", ("hazard_id", "version")), event_time="updated_at",
    senders=("gateway",),  # an enterprise files its hidden dangers through its connection
    signed=Signed(("GATEWAY", "ENTERPRISE"), enterprise="enterprise_id",
                  owner=("enterprise", "enterprise_id"), evidence=True))

INCIDENT = RecordType(
    "incident", Topic("incidents", "IncidentReport", "incident_id", receipt_time=True),
    checks="streams.records.rules:check_incident",
    processor="streams.processors.incidents:IncidentProcessor", state=INCIDENTS,
    clean=Topic("incidents.clean", "EnrichedIncidentReport", "incident_id"),
    table=Table("incident_reports_raw", skip=frozenset({"duplicate"}),
                order_by=("incident_id", "report_id"), partition_by="toYYYYMM(occurred_at)",
                event_time="reported_at",
                views=(View("incident_reports"),
                       View("incidents", latest_by=("incident_id",),
                            order=("reported_at DESC", "received_at DESC")),
                       # what may be published: reports an authorised body released
                       View("published_incidents", latest_by=("incident_id",),
                            order=("reported_at DESC", "received_at DESC"),
                            where="publication = 'AUTHORISED'")),
                doc="Every incident report (the full history); replays are not stored."),
    ledger=Ledger("incident", ("report_id",)), event_time="reported_at", canary=True,
    senders=("regional",),
    signed=Signed(("REGIONAL",), region="region_code", owner=("region", "region_code"),
                  evidence=True, publication="publication"))

ENTERPRISE = RecordType(
    "enterprise", Topic("enterprises", "Enterprise", "enterprise_id", compacted=True,
                       receipt_time=True),
    checks="streams.records.rules:check_enterprise",
    reference=Reference("enterprises", "streams.processors.reference:enterprise_ref"),
    canary=True, senders=("registrar",), signed=Signed(("REGISTRAR",)))

SENSOR = RecordType(
    "sensor", Topic("sensors", "Sensor", "sensor_id", compacted=True, receipt_time=True),
    checks="streams.records.rules:check_sensor",
    reference=Reference("sensors", "streams.processors.reference:sensor_ref"), canary=True,
    senders=("registrar",), signed=Signed(("REGISTRAR",)))

# The senders' public keys (streams/signing): registered by the registration authority, its
# records signed by one of its trust anchors (the signing_trust_file setting).
SIGNING_KEY = RecordType(
    "signing-key", Topic("keys", "SigningKey", "key_id", compacted=True, receipt_time=True),
    checks="streams.signing.rules:check_signing_key",
    reference=Reference("keys", "streams.signing.keys:key_ref"), senders=("registrar",),
    signed=Signed(("REGISTRAR",)))

# Operators' commands about an alarm (ebi alarms ack): keyed by the alarm's home.
ALARM_COMMAND = RecordType(
    "alarm_command", Topic("alarm.commands", "AlarmCommand", "home", receipt_time=True),
    checks="streams.alarms.commands:check_command",
    processor="streams.alarms.commands:AlarmCommandProcessor", state=ALARMS,
    senders=("operator",))

GATEWAY_STATUS = Output(
    Topic("gateway.status", "GatewayStatus", "gateway_id"), "status", "statuses",
    Table("gateway_status_raw", order_by=("gateway_id", "changed_at", "status"),
          event_time="changed_at",
          views=(View("gateway_status"),
                 View("gateway_state", latest_by=("gateway_id",), order=("changed_at DESC",))),
          doc="Gateways going offline and coming back."))

# The registered sensors as the worker applies them (every worker writes each change it
# reads; the table keeps one row per sensor and registration time): the basis of the online
# spot check (网上巡查) of which registered sensors report.
SENSOR_REGISTRY = Output(
    Topic("sensors.registered", "SensorRegistration", "sensor_id"), "registration",
    "registrations",
    Table("sensor_registrations_raw", order_by=("sensor_id", "updated_at"),
          event_time="updated_at",
          views=(View("sensor_registry", latest_by=("sensor_id",), order=("updated_at DESC",)),),
          doc="Sensor registrations and removals as the worker applied them."))

ALERTS = Output(
    Topic("alerts", "Alert", "subject_id"), "alert", "alerts",
    Table("alerts_raw", order_by=("alert_id",), partition_by="toYYYYMM(event_time)",
          event_time="raised_at", views=(View("alerts"),), doc="Alerts raised by the worker."))

ALARM_EVENTS = Output(
    Topic("alarm.events", "AlarmEvent", "alarm_id"), "alarm", "alarms",
    Table("alarm_events_raw", order_by=("alarm_id", "event_id"),
          partition_by="toYYYYMM(raised_at)", event_time="changed_at",
          views=(View("alarm_events"),),
          doc="Every transition of every alarm (raised, updated, acknowledged, cleared); "
              "the view alarms has one row per alarm."),
    stage="streams.alarms.book:AlarmBook", state=ALARMS)

DEAD_LETTERS = Output(
    Topic("deadletter", "DeadLetter"), "deadletter", "dead_letters",
    Table("dead_letters_raw",
          order_by=("source_topic", "source_partition", "source_offset", "stage",
                    "ifNull(record_index, -1)"),
          event_time="failed_at", views=(View("dead_letters"),),
          shard_by=("source_topic", "source_partition", "source_offset"),
          doc="Inputs the pipeline rejected (decode, validate) and rows ClickHouse rejected "
              "(sink)."))

TYPES = (TELEMETRY, HEARTBEAT, INCIDENT, HAZARD, ENTERPRISE, SENSOR, SIGNING_KEY, ALARM_COMMAND)
OUTPUTS = (ALERTS, GATEWAY_STATUS, ALARM_EVENTS, SENSOR_REGISTRY, DEAD_LETTERS)
