"""Prometheus metrics, built from an injected registry: ``Metrics.create(CollectorRegistry())``.

Labels are bounded: topic, record type, reason code, alert type, kind, stage, region
(province, 2 digits) and partition. No per-sensor, per-gateway or per-event labels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

# Reason codes of the dead letters (decoding and validation), primed at 0 by ``prime``.
REJECT_REASONS = (
    "EMPTY_MESSAGE", "OVERSIZE", "NOT_CONFLUENT_FRAMED", "UNKNOWN_SCHEMA_ID", "WRONG_SCHEMA",
    "TRUNCATED_AVRO", "INVALID_UTF8", "INVALID_AVRO", "TRAILING_BYTES", "BAD_REGION_CODE",
    "OUT_OF_RANGE", "UNIT_MISMATCH", "FUTURE_EVENT_TIME", "UNKNOWN_ENTERPRISE",
    "UNKNOWN_SENSOR", "NEGATIVE_FIGURE", "STAGE_ORDER", "BAD_TIMESTAMP",
    "UNKNOWN_REGION_CODE",
)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
INSERT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    records_in: Counter          # topic, type: Kafka messages consumed
    readings_in: Counter         # readings inside telemetry envelopes
    records_out: Counter         # topic, type: messages produced
    rejects: Counter             # topic, reason: dead letters by reason code
    duplicates: Counter          # type: replays dropped
    replays_skipped: Counter     # topic: messages already applied before a crash/rebalance
    late_reports: Counter        # kind: telemetry / PRODUCTION_SAFETY / NATURAL_DISASTER
    anomalies: Counter           # type: SPIKE, FLATLINE, OUTLIER, ALARM_L1, ...
    alerts: Counter              # type
    deadletter_writes: Counter   # stage: decode / validate / sink
    processing_lag: Gauge        # topic: now - event time of the last processed record
    gateways: Gauge              # state: online / offline
    gateways_offline: Gauge      # province: offline gateways per 2-digit region prefix
    open_incidents: Gauge
    reports_overdue: Gauge       # open incidents whose next report is overdue
    sink_rows: Counter           # table
    sink_batches: Counter        # table
    sink_errors: Counter         # table, kind: transient / permanent
    sink_retries: Counter        # table
    sink_insert_seconds: Histogram  # table
    sink_last_insert: Gauge      # table: unix time of the last successful insert
    sink_paused: Gauge           # 1 while consumption is paused for backpressure
    end_to_end_seconds: Histogram   # table: event time to row inserted
    consumer_lag: Gauge          # group, topic, partition
    reference_behind: Gauge      # reference-topic messages the feed has not applied yet
    quarantined: Counter         # stage: messages set aside after failing poison_attempts times
    alarms_active: Gauge         # type, severity, province: alarms standing (the alarm book)
    clock_keys: Gauge            # table: state keys the last clock tick looked at
    hazards: Gauge               # state: open / overdue hidden dangers (canary excluded)
    build: Info

    def prime(self, topics: Iterable[str], reasons: Iterable[str] = REJECT_REASONS) -> None:
        """Create the reject series at 0 for every (topic, reason) before any traffic: a
        series that first appears at its final value shows no increase to ``rate()``, and
        the dead-letter ratio alert would never see the first burst."""
        reasons = tuple(reasons)
        for topic in topics:
            for reason in reasons:
                self.rejects.labels(topic, reason)

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        reg = registry if registry is not None else CollectorRegistry()

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, registry=reg)

        def gauge(name: str, doc: str, *labels: str) -> Gauge:
            return Gauge(name, doc, labels, registry=reg)

        return cls(
            registry=reg,
            records_in=counter("ebi_records_in", "Kafka messages consumed", "topic", "type"),
            readings_in=counter("ebi_readings_in", "Sensor readings consumed inside envelopes"),
            records_out=counter("ebi_records_out", "Kafka messages produced", "topic", "type"),
            rejects=counter("ebi_rejects", "Inputs rejected to the dead letters", "topic",
                            "reason"),
            duplicates=counter("ebi_duplicates_dropped", "Replays dropped by deduplication",
                               "type"),
            replays_skipped=counter("ebi_replays_skipped", "Messages read again after a crash or "
                                    "rebalance whose outputs were already delivered", "topic"),
            late_reports=counter("ebi_late_reports", "Reports or readings flagged late",
                                 "kind"),
            anomalies=counter("ebi_anomalies", "Anomalies detected", "type"),
            alerts=counter("ebi_alerts", "Alerts raised", "type"),
            deadletter_writes=counter("ebi_deadletter_writes", "Dead letters written",
                                      "stage"),
            processing_lag=gauge("ebi_processing_lag_seconds",
                                 "Now minus the event time of the last processed record",
                                 "topic"),
            gateways=gauge("ebi_gateways", "Gateways known to the worker by state", "state"),
            gateways_offline=gauge("ebi_gateways_offline", "Offline gateways by province "
                                   "(first 2 digits of the region code)", "province"),
            open_incidents=gauge("ebi_open_incidents", "Incidents without a final report"),
            reports_overdue=gauge("ebi_reports_overdue",
                                  "Open incidents whose next report is overdue"),
            sink_rows=counter("ebi_sink_rows", "Rows inserted into ClickHouse", "table"),
            sink_batches=counter("ebi_sink_batches", "Insert batches", "table"),
            sink_errors=counter("ebi_sink_errors", "Insert errors", "table", "kind"),
            sink_retries=counter("ebi_sink_retries", "Insert retries", "table"),
            sink_insert_seconds=Histogram("ebi_sink_insert_seconds", "Insert latency",
                                          ["table"], buckets=INSERT_BUCKETS, registry=reg),
            sink_last_insert=gauge("ebi_sink_last_insert_timestamp_seconds",
                                   "Unix time of the last successful insert", "table"),
            sink_paused=gauge("ebi_sink_paused", "1 while the sink pauses consumption"),
            end_to_end_seconds=Histogram("ebi_end_to_end_seconds",
                                         "Event time to row inserted", ["table"],
                                         buckets=LATENCY_BUCKETS, registry=reg),
            consumer_lag=gauge("ebi_consumer_lag_messages", "Messages behind the high "
                               "watermark", "group", "topic", "partition"),
            reference_behind=gauge("ebi_reference_behind_messages", "Reference-topic "
                                   "messages (registrations) not yet applied by the worker"),
            quarantined=counter("ebi_quarantined", "Messages set aside to the dead letters after "
                                "processing failed on them poison_attempts times in a row",
                                "stage"),
            alarms_active=gauge("ebi_alarms_active", "Alarms raised and not cleared yet, of the "
                                "partitions this worker owns", "type", "severity", "province"),
            clock_keys=gauge("ebi_clock_keys_visited", "State keys the last clock tick looked "
                             "at (the due ones, for clocks with a due index)", "table"),
            hazards=gauge("ebi_hazards", "Hidden dangers not closed, by state (open, overdue)",
                          "state"),
            build=Info("ebi_build", "Build information", registry=reg),
        )
