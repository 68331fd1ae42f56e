"""Run the worker in this process until SIGTERM/SIGINT (or ``duration`` seconds).

Before faust starts: the topics are created if missing (faust must not subscribe to topics
the broker would auto-create with the wrong partition count), the input topics of record
types sharing a state table (telemetry and heartbeats) are checked to be co-partitioned, and
the status server (``/metrics``, ``/healthz``,
``/readyz``) starts on ``settings.metrics_port`` when it is not 0.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

import faust

from schemas.catalog import load_catalog
from schemas.catalog.model import Catalog
from streams import clients
from streams.httpserver import StatusServer
from streams.metrics import Metrics
from streams.policy import Policy
from streams.readiness import CheckResult, KafkaCheck
from streams.settings import Settings
from streams.worker.app import WorkerApp, build, changelog_topic
from streams.worker.topics import ensure_topics, partition_counts

log = logging.getLogger(__name__)


class WorkerError(RuntimeError):
    """The worker cannot start (e.g. input topics not co-partitioned)."""


def prepare(settings: Settings, metrics: Metrics, policy: Policy | None = None,
            catalog: Catalog | None = None) -> WorkerApp:
    catalog = catalog or load_catalog(settings.catalog)
    create = settings.create_topics   # else the admin created them (streams.access.topics)
    ensure_topics(settings, catalog, create=create)
    counts = partition_counts(settings, catalog.input_topics())
    tables: dict[str, int] = {}
    for table, kinds in catalog.state_groups().items():
        found = {k.input.name: counts.get(k.input.name) for k in kinds}
        if len(set(found.values())) != 1 or None in found.values():
            shown = ", ".join(f"{name} ({n} partitions)" for name, n in found.items())
            raise WorkerError(f"{shown} must have the same partition count: their state is "
                              f"one table ({table})")
        tables[table] = next(iter(found.values())) or settings.topic_partitions
        ensure_topics(settings, catalog, changelogs=[changelog_topic(settings, table)],
                      partitions=tables[table], create=create)
    processed = {k.input.name: counts.get(k.input.name) for k in catalog.processed}
    if catalog.stages and len(set(processed.values())) > 1:
        shown = ", ".join(f"{name} ({n} partitions)" for name, n in processed.items())
        raise WorkerError(f"{shown} must have the same partition count: the alarm book's "
                          "table is written from every agent")
    return build(settings, metrics, policy=policy, catalog=catalog,
                 partitions=max(tables.values(), default=settings.topic_partitions),
                 table_partitions=tables)


def _readiness(worker: WorkerApp) -> dict[str, Any]:
    settings = worker.settings

    def reference() -> CheckResult:
        ok, detail = worker.feed.healthy()
        return CheckResult(ok and worker.ready.is_set(), detail)

    inputs = [settings.topic(kind.input.name) for kind in worker.catalog.processed]
    return {"kafka": KafkaCheck(settings.bootstrap, config=clients.kafka_config(settings),
                                topics=inputs),
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
