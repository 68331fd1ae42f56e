"""``ebi sink``: write the clean topics, alerts and dead letters to ClickHouse.

Runs its own consumer group (``sink_group``), migrates the schema first (idempotent; a
sink user without DDL, as on a secured server, leaves that to ``ebi migrate``),
checks that its topics exist (creates them only with ``create_topics``: topic creation is
the admin's step), and stops cleanly on SIGTERM or
Ctrl-C (what is buffered is written and committed first).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType
from typing import Any

from sinks.clickhouse import ClickHouseError, SchemaError
from sinks.clickhouse.backend import DENIED_CODES
from sinks.clickhouse.migrations import migrate
from sinks.store import wait_for_store
from streams.settings import Settings


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-migrate", action="store_true",
                        help="do not run the migrations at start")
    parser.add_argument("--idle-exit", type=float, default=0.0, metavar="SECONDS",
                        help="stop once every partition has been read to its end and "
                             "written for this long (0: run until stopped)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.catalog import load_catalog
    from sinks.clickhouse.encoding import EnvelopeDecoder
    from sinks.clickhouse.sink import ClickHouseSink
    from sinks.consumer import CONSUMER_CONFIG, SinkLoop
    from streams import clients
    from streams.httpserver import Heartbeat, StatusServer
    from streams.metrics import Metrics
    from streams.readiness import ClickHouseCheck
    from streams.worker.topics import MissingTopicsError

    stop = {"now": False}

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    catalog = load_catalog(settings.catalog)
    backend = wait_for_store(settings, "sink", lambda: stop["now"], create_database=True)
    if backend is None:
        return 0 if stop["now"] else 1
    queries = _query_server(backend)   # as soon as the sink owns the store: no busy window
    try:
        if not args.no_migrate:
            report = migrate(backend, catalog=catalog)
            if report.applied:
                print(f"ebi sink: {report.summary()}", file=sys.stderr)
    except ClickHouseError as exc:
        if exc.code in DENIED_CODES:   # a sink user without DDL (docs/security.md)
            print(f"ebi sink: user {backend.config.user} may not migrate ({exc}); migrations "
                  "are the admin's step (`ebi migrate`): continuing with the schema as it is",
                  file=sys.stderr)
        else:
            _close(backend, queries)
            print(f"ebi sink: migrations failed: {exc}", file=sys.stderr)
            return 1
    try:
        if not _wait_for_kafka(settings, catalog, lambda: stop["now"]):
            _close(backend, queries)
            return 0
    except MissingTopicsError as exc:
        _close(backend, queries)
        print(f"ebi sink: {exc}", file=sys.stderr)
        return 1
    metrics = Metrics.create()
    decoder = EnvelopeDecoder(catalog, clients.registry(settings), settings.topic,
                              lambda topic, code: metrics.rejects.labels(topic, code).inc())
    sink = ClickHouseSink(backend, metrics, settings.sink_batch_rows,
                          settings.sink_batch_seconds, catalog=catalog,
                          poison_attempts=settings.poison_attempts)
    heartbeat = Heartbeat(max_age=60)
    server = StatusServer.from_settings(
        settings, "sink", metrics.registry, heartbeat=heartbeat,
        checks={"clickhouse": ClickHouseCheck(lambda: not sink.failures)})
    consumer = clients.consumer(settings, settings.sink_group, **CONSUMER_CONFIG)
    loop = SinkLoop(consumer, sink, decoder, metrics, settings.sink_group, decoder.topics(),
                    max_buffered_rows=4 * settings.sink_batch_rows, on_cycle=heartbeat.beat)
    idle: dict[str, float] = {"since": -1.0, "checked": 0.0}

    def should_stop() -> bool:
        if stop["now"]:
            return True
        if args.idle_exit <= 0:
            return False
        now = time.monotonic()
        if now - idle["checked"] < 0.5:
            return False
        idle["checked"] = now
        if not loop.caught_up():
            idle["since"] = -1.0
            return False
        if idle["since"] < 0:
            idle["since"] = now
        return now - idle["since"] >= args.idle_exit

    if server is not None:
        server.start()
    try:
        loop.run(should_stop)
    except SchemaError as exc:
        print(f"ebi sink: {exc} (run `ebi migrate`)", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
        _close(backend, queries)
    return 0


def _close(backend: Any, queries: Any) -> None:
    if queries is not None:
        queries.stop()
    backend.close()


def _query_server(backend: Any) -> Any:
    """For the embedded store, which the sink owns: read-only queries for everyone else."""
    from sinks.clickhouse.embedded import ChdbBackend
    from sinks.clickhouse.serve import QueryServer

    if not isinstance(backend, ChdbBackend) or backend.config.path is None:
        return None
    server = QueryServer(backend, backend.config.path)
    server.start()
    return server


def _wait_for_kafka(settings: Settings, catalog: Any, should_stop: Any,
                    every: float = 10.0) -> bool:
    """The topics exist (created if missing), waiting while the broker is unreachable;
    False when stopped first."""
    from streams.worker.topics import MissingTopicsError, ensure_topics

    said = 0.0
    while not should_stop():
        try:
            ensure_topics(settings, catalog, timeout=5.0, create=settings.create_topics,
                          needed=list(catalog.routes()))
            return True
        except MissingTopicsError:
            raise
        except Exception as exc:  # KafkaException and friends: say where we looked
            now = time.monotonic()
            if now - said >= every:
                print(f"ebi sink: waiting for Kafka at {settings.bootstrap}: {exc}",
                      file=sys.stderr, flush=True)
                said = now
            time.sleep(1.0)
    return False
