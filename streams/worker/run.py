"""Run the worker in this process until SIGTERM/SIGINT (or ``duration`` seconds).

Before faust starts: the topics are created if missing (faust must not subscribe to topics
the broker would auto-create with the wrong partition count), telemetry and heartbeats are
checked to be co-partitioned, and the status server (``/metrics``, ``/healthz``,
``/readyz``) starts on ``settings.metrics_port`` when it is not 0.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

import faust

from streams import clients
from streams.httpserver import StatusServer
from streams.metrics import Metrics
from streams.policy import Policy
from streams.readiness import CheckResult, KafkaCheck
from streams.settings import Settings
from streams.worker.app import WorkerApp, build, changelog_topic
from streams.worker.pipeline import INPUTS, STATE_OF
from streams.worker.topics import ensure_topics, partition_counts

log = logging.getLogger(__name__)


class WorkerError(RuntimeError):
    """The worker cannot start (e.g. input topics not co-partitioned)."""


def prepare(settings: Settings, metrics: Metrics, policy: Policy | None = None) -> WorkerApp:
    create = settings.create_topics   # else the admin created them (streams.access.topics)
    ensure_topics(settings, create=create)
    counts = partition_counts(settings, list(INPUTS))
    if counts.get("telemetry") != counts.get("heartbeats"):
        raise WorkerError(f"telemetry ({counts.get('telemetry')} partitions) and heartbeats "
                          f"({counts.get('heartbeats')}) must have the same partition count: "
                          "their gateway state is one table")
    for name in ("incidents", "hazards"):
        ensure_topics(settings, changelogs=[changelog_topic(settings, STATE_OF[name][0])],
                      partitions=counts[name], create=create)
    ensure_topics(settings, changelogs=[changelog_topic(settings, "gateways")],
                  partitions=counts["telemetry"], create=create)
    return build(settings, metrics, policy=policy, partitions=counts["telemetry"],
                 table_partitions={"gateways": counts["telemetry"],
                                   "incidents": counts["incidents"],
                                   "hazards": counts["hazards"]})


def _readiness(worker: WorkerApp) -> dict[str, Any]:
    settings = worker.settings

    def reference() -> CheckResult:
        ref = worker.feed.reference
        return CheckResult(worker.ready.is_set(), f"{len(ref.enterprises)} enterprises, "
                           f"{len(ref.sensors)} sensors")

    return {"kafka": KafkaCheck(settings.bootstrap, config=clients.kafka_config(settings),
                                topics=[settings.topic(name) for name in INPUTS]),
            "registry": clients.registry_check(settings), "reference_data": reference}


def run_worker(settings: Settings, *, duration: float | None = None,
               metrics: Metrics | None = None, policy: Policy | None = None) -> int:
    metrics = metrics or Metrics.create()
    worker = prepare(settings, metrics, policy)
    server = StatusServer.from_settings(settings, "worker", metrics.registry,
                                        heartbeat=worker.heartbeat, checks=_readiness(worker))
    if server is not None:
        server.start()
    runner = faust.Worker(worker.app, loglevel=settings.log_level.lower(), quiet=True,
                          redirect_stdouts=False, override_logging=False)
    runner.spinner = None
    if duration:
        runner.loop.call_later(duration, os.kill, os.getpid(), signal.SIGTERM)
    code = 0
    try:
        runner.execute_from_commandline()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        worker.feed.stop()
        if server is not None:
            server.stop()
    return code
