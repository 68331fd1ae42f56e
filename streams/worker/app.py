"""The faust app: ``create_app(settings, metrics) -> faust.App`` (nothing global).

Agents (concurrency 1 each; scale out with partitions and more workers in one group): one
per state table of the catalog, over the input topics of the record types that keep their
state in it (co-partitioned: e.g. ``gateways`` over telemetry + heartbeats, both keyed by
gateway_id; ``incidents``; ``hazards``).

Each agent takes its input in batches, whole fetches at a time (:mod:`.fetches`;
``worker_input = "stream"``: faust's ``noack_take``), and (:mod:`.batches`) decodes and
processes every message, sends the outputs (exactly one ledger record per input message, plus
alerts/statuses/dead letters), and once every output is acknowledged writes each touched key's
state once to its table and acks the events. Outputs go through librdkafka
(:mod:`.delivery`) and are acknowledged before the acks; faust commits offsets after flushing
its own producer (the changelogs), so a committed offset always has its outputs and its state
change in Kafka (at-least-once). An error while sending ends the process at once (no ack, no
commit, no flush): the batch is read again by whoever gets the partitions.

A timer (``policy.check_every``) runs the state tables' clocks (silent gateways and
sensors, incident and hazard deadlines) over the locally owned state (only the due keys, see
:mod:`.due`) and updates the gauges; keys a clock expired are deleted from their table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import faust

from schemas.catalog import default_catalog
from schemas.catalog.model import Catalog, resolve
from schemas.codec import AvroDeserializer, AvroSerializer, SchemaSource
from streams import clients
from streams.httpserver import Heartbeat
from streams.metrics import Metrics
from streams.policy import Policy, load_policy
from streams.processors.context import ProcessorContext
from streams.processors.reference import ReferenceData
from streams.settings import Settings
from streams.signing.keys import SigningError
from streams.signing.senders import SenderCheck
from streams.signing.trust import default_trust_file, load_trust
from streams.signing.verify import Verifier
from streams.worker import faust_fixes, fetches, idempotence
from streams.worker.batches import BatchRunner, InputStalled, OffsetGuard, StallWatch, die
from streams.worker.delivery import OutputProducer
from streams.worker.outputs import OutputSender
from streams.worker.pipeline import Pipeline, now_ms
from streams.worker.reference import ReferenceFeed
from streams.worker.state import DELETE, StateCache

log = logging.getLogger(__name__)

BATCH_MAX = 2000         # events per batch
BATCH_WITHIN = 0.1       # seconds to wait for a batch to fill
WATCH_EVERY = 5.0        # seconds between input lag / stall checks


@dataclass
class WorkerApp:
    """The app and the pieces tests and the CLI need to reach."""

    app: faust.App
    settings: Settings
    catalog: Catalog
    pipeline: Pipeline
    feed: ReferenceFeed
    sender: OutputSender
    stores: dict[str, StateCache]
    heartbeat: Heartbeat
    ready: asyncio.Event = field(default_factory=asyncio.Event)


def create_app(settings: Settings, metrics: Metrics, *, policy: Policy | None = None,
               registry: SchemaSource | None = None, catalog: Catalog | None = None) -> faust.App:
    return build(settings, metrics, policy=policy, registry=registry, catalog=catalog).app


def state_dir(settings: Settings) -> str:
    return str(settings.data_dir / "worker" / settings.worker_id / settings.worker_instance)


def _faust_app(settings: Settings, partitions: int, max_output_bytes: int) -> faust.App:
    return faust.App(
        settings.worker_id,
        **clients.faust_broker(settings),
        store="rocksdb://",
        datadir=state_dir(settings),
        web_enabled=False,
        autodiscover=False,
        # faust's own topics (table changelogs, the assignor's) follow the catalog's
        topic_replication_factor=settings.topic_replication_factor,
        topic_partitions=partitions,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger_ms=5,
        producer_max_batch_size=256 * 1024,   # default 16 KiB: two enriched envelopes
        # default 1,000,000 bytes: an output may be up to the policy's max_output_bytes (a
        # record batch adds its own small overhead)
        producer_max_request_size=max_output_bytes + 64 * 1024,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        broker_commit_interval=1.0,
        stream_wait_empty=True,
        logging_config=None,
    )


def changelog_config(settings: Settings) -> dict[str, str]:
    """Topic configuration faust gives a changelog it creates itself (ebi creates them up
    front, with the same replication: streams/worker/topics.py)."""
    from streams.worker.topics import replication_config

    return replication_config(settings.topic_min_insync_replicas)


def changelog_topic(settings: Settings, table: str) -> str:
    """faust's name for a table's changelog topic."""
    return f"{settings.worker_id}-{table}-changelog"


def build(settings: Settings, metrics: Metrics, *, policy: Policy | None = None,
          registry: SchemaSource | None = None, catalog: Catalog | None = None,
          partitions: int | None = None,
          table_partitions: dict[str, int] | None = None) -> WorkerApp:
    """Construct everything (no I/O: connections start with the app)."""
    if registry is None:
        registry = clients.registry(settings)
    catalog = catalog or default_catalog()
    policy = policy or load_policy(settings.policy_file or None)
    partitions = partitions or settings.topic_partitions
    metrics.prime(catalog.input_topics())
    Path(state_dir(settings)).mkdir(parents=True, exist_ok=True)
    faust_fixes.apply()
    idempotence.apply()
    fetches.apply()
    app = _faust_app(settings, partitions, policy.limits.max_output_bytes)
    reference = ReferenceData(policy)

    def table(name: str) -> Any:
        # bytes keys and values: faust uses the "raw" codec; values are our JSON.
        # Partitions: those of the table's input topics (co-partitioned).
        return app.Table(name, default=None, key_type=bytes, value_type=bytes,
                         partitions=(table_partitions or {}).get(name, partitions),
                         extra_topic_configs=changelog_config(settings))

    groups = catalog.state_groups()
    states = catalog.states()
    stores = {name: StateCache(table(name), name,
                               resolve(states[name].upgrade) if states[name].upgrade else None)
              for name in groups}
    ctx = ProcessorContext(policy, reference, metrics)
    limits = policy.limits
    verifier = worker_verifier(settings, catalog, reference)
    pipeline = Pipeline(catalog, ctx, AvroDeserializer(registry, catalog.schemas, millis=True,
                                                       max_bytes=limits.max_message_bytes),
                        stores, poison_attempts=settings.poison_attempts,
                        senders=SenderCheck(verifier, policy.raw))
    feed = ReferenceFeed(settings, catalog, registry, reference, metrics, verifier=verifier)
    sender = OutputSender(OutputProducer.for_settings(settings, policy.limits.max_output_bytes
                                                      + 64 * 1024), settings, catalog,
                          AvroSerializer(registry, catalog.schemas, millis=True), metrics,
                          max_bytes=limits.max_output_bytes)
    worker = WorkerApp(app, settings, catalog, pipeline, feed, sender, stores,
                       Heartbeat(max_age=60))
    logical = {settings.topic(kind.input.name): kind.input.name for kind in catalog.processed}

    def topic(*names: str) -> Any:
        return app.topic(*(settings.topic(n) for n in names), key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw")

    guard = OffsetGuard()

    async def start(tps: list[Any]) -> list[int | None]:
        # Where reading each partition starts after an assignment: its committed offset,
        # asked of the broker (faust's own record is set only when its seek has run, which
        # can be after the first events), or the log start when nothing was committed.
        # One request of each kind for all partitions: every call into the consumer thread
        # waits for its next turn (~1.5 s).
        from faust.transport.drivers.aiokafka import ensure_aiokafka_TP

        earliest = await app.consumer.earliest_offsets(*tps)
        thread = getattr(app.consumer, "_thread", None)
        if thread is None:
            return [None] * len(tps)
        consumer = thread._ensure_consumer()

        async def committed_all() -> list[int | None]:
            return [await consumer.committed(ensure_aiokafka_TP(tp)) for tp in tps]

        out: list[int | None] = []
        for tp, committed in zip(tps, await thread.call_thread(committed_all), strict=True):
            first = earliest.get(tp)
            out.append(first if committed is None or committed < 0
                       else max(int(committed), first or 0))
        return out

    stalls = StallWatch()
    starts: dict[Any, int | None] = {}      # partition -> its start, until it processes
    runner = BatchRunner(pipeline, feed, sender, stores, logical, worker.heartbeat, guard,
                         lambda: int(app.consumer_generation_id or 0), start, stalls)

    agents = {name: f"ebi.{name}" for name in groups}    # state table -> faust agent name
    tap: fetches.FetchTap | None = None
    if settings.worker_input == "fetches":
        tap = fetches.FetchTap({agents[name]: {settings.topic(k.input.name) for k in kinds}
                                for name, kinds in groups.items()}, max_queued=4 * BATCH_MAX)
        app.ebi_tap = tap  # type: ignore[attr-defined]

    def consume_as(agent: str) -> Any:
        async def consume(stream: Any) -> None:
            await worker.ready.wait()
            if tap is None:
                await runner.consume(fetches.StreamInput(stream, BATCH_MAX, BATCH_WITHIN))
                return
            aiter(stream.channel)    # subscribes the agent's topics (faust's conductor)
            await runner.consume(fetches.FetchInput(app, tap, agent, BATCH_MAX))
        return consume

    for agent_name, kinds in groups.items():
        consume_fn = _named(consume_as(agents[agent_name]), agent_name)
        app.agent(topic(*(k.input.name for k in kinds)), name=agents[agent_name],
                  concurrency=1)(consume_fn)

    inputs_of = {name: {settings.topic(k.input.name) for k in kinds}
                 for name, kinds in groups.items()}

    @app.timer(interval=policy.check_every.total_seconds())
    async def clocks() -> None:
        if not worker.ready.is_set():
            return
        assignment = app.consumer.assignment()
        for name, topics in inputs_of.items():
            pipeline.assign(name, frozenset(tp.partition for tp in assignment
                                            if tp.topic in topics),
                            (table_partitions or {}).get(name, partitions))
        # State changed here (gateway offline, clock alerts raised) stays in the cache and is
        # written with the next batch that touches the key: writing it now could also write
        # effects of a batch whose outputs are not acknowledged yet. After a restart the same
        # alerts may be raised again, with the same deterministic ids.
        out, changed = pipeline.tick(now_ms())
        pending = sender.batch()
        try:
            sender.send("", out, pending)
            await sender.flush(pending)
            # expired keys (their state dropped by the clock) leave the table now: no batch
            # will write them again
            for c in changed:
                if stores[c.store].snapshot(c.key) == DELETE:
                    stores[c.store].expire(c.key)
        except BaseException as exc:
            die(exc)
        worker.heartbeat.beat()

    @app.timer(interval=WATCH_EVERY)
    async def watch_inputs() -> None:
        """Consumer lag per input partition, and a restart when one stops flowing."""
        if not worker.ready.is_set():
            return
        tps = [tp for tp in app.consumer.assignment() if tp.topic in logical]
        if not tps:
            return
        highwaters = await app.consumer.highwaters(*tps)
        # where a partition that has had nothing to process starts: asked once per
        # assignment, for all such partitions in one call (a call crosses to the consumer's
        # thread)
        unknown = [tp for tp in tps if guard.next.get(tp) is None and tp not in starts]
        if unknown:
            starts.update(zip(unknown, await start(unknown), strict=True))
        now = time.monotonic()
        for tp in tps:
            position = guard.next.get(tp)
            if position is None:
                position = starts.get(tp)
            high = highwaters.get(tp)
            if position is None or high is None:
                continue
            metrics.consumer_lag.labels(settings.worker_id, logical[tp.topic],
                                        str(tp.partition)).set(max(0, high - position))
            stuck = stalls.observe(tp, position, high, now)
            if stuck > stalls.stall_after:
                die(InputStalled(f"{tp.topic}[{tp.partition}]: {high - position} message(s) "
                                 f"waiting at offset {position}, none processed for "
                                 f"{stuck:.0f} s"))

    @app.task
    async def startup() -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sender.register_schemas)
        await loop.run_in_executor(None, feed.start)
        if not await loop.run_in_executor(None, feed.sync, 120.0):
            log.error("reference data not loaded within 120 s; starting anyway")
        log.info("reference data: %d enterprises, %d sensors", len(feed.reference.enterprises),
                 len(feed.reference.sensors))
        worker.ready.set()

    async def partitions_moved(sender_app: Any, *args: Any, signal: Any = None,
                               **kwargs: Any) -> None:
        for store in stores.values():
            store.clear()
        pipeline.reset_partitions()
        guard.reset()
        starts.clear()
        stalls.reset()

    async def recovered(sender_app: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        pipeline.reindex()     # the tables hold every owned key now: rebuild the due indexes

    app.on_partitions_revoked.connect(cast(Any, partitions_moved))
    app.on_partitions_assigned.connect(cast(Any, partitions_moved))
    app.on_rebalance_complete.connect(cast(Any, recovered))

    app.ebi = worker  # type: ignore[attr-defined]
    return worker


def worker_verifier(settings: Settings, catalog: Catalog,
                    reference: ReferenceData) -> Verifier | None:
    """The signature checks of the worker (None: ``verify_signatures = false``, the
    development opt-in): the registered keys as the reference feed loads them, and the
    registration authority's trust anchors (SigningError when none can be read)."""
    if not settings.verify_signatures:
        log.warning("verify_signatures is off: records are accepted without checking who "
                    "sent them (a development opt-in; never in production)")
        return None
    anchors: dict[str, Any] = {}
    if any(t.signed is not None and "REGISTRAR" in t.signed.kinds for t in catalog.types):
        path = default_trust_file(settings)
        if not path.exists():
            raise SigningError(
                f"verify_signatures is on but there is no trust file {path} with the "
                "registration authority's public keys: run `ebi stack up` (local dev "
                "keyring), set signing_trust_file, or (development only) set "
                "EBI_VERIFY_SIGNATURES=false")
        anchors = load_trust(path)
        if not anchors:
            raise SigningError(f"the trust file {path} holds no [[registrar]] key")
    return Verifier(reference.keys, anchors)


def _named(fn: Any, name: str) -> Any:
    async def agent(stream: Any) -> None:
        await fn(stream)

    agent.__name__ = agent.__qualname__ = name
    return agent
