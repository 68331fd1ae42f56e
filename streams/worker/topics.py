"""Create the pipeline's topics (every topic of the catalog) if they are missing, or check
that they exist: partitions from the catalog (a topic's own count) or the settings,
replication and ``min.insync.replicas`` from the settings (``topic_replication_factor``,
``topic_min_insync_replicas``), compaction where the catalog says, each topic's largest
message from the policy (inputs: ``max_message_bytes``; everything the worker writes, and
its changelogs: ``max_output_bytes``), and the broker's receipt time as the message
timestamp where the catalog declares it (``receipt_time``: the input topics). Existing
topics are left alone, except that a declared receipt time is set on an existing topic
still stamped with the sender's CreateTime (an upgrade)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from schemas.catalog import default_catalog
from schemas.catalog.model import Catalog
from streams import clients
from streams.policy import Limits, load_policy
from streams.settings import Settings

log = logging.getLogger(__name__)
BATCH_OVERHEAD = 64 * 1024   # a record batch's own bytes around one message
TIMESTAMP_TYPE = "message.timestamp.type"
LOG_APPEND_TIME = "LogAppendTime"


class MissingTopicsError(RuntimeError):
    """Topics this process needs do not exist, and it may not create them."""


def topic_config(catalog: Catalog, limits: Limits, min_insync_replicas: int = 1) -> dict[
        str, dict[str, str]]:
    """Logical topic -> its topic configuration."""
    inputs = set(catalog.input_topics())
    out = {}
    for topic in catalog.all_topics():
        size = limits.max_message_bytes if topic.name in inputs else limits.max_output_bytes
        config = {"max.message.bytes": str(size + BATCH_OVERHEAD)}
        if topic.compacted:
            config["cleanup.policy"] = "compact"
        if topic.receipt_time:
            config[TIMESTAMP_TYPE] = LOG_APPEND_TIME
        out[topic.name] = {**config, **replication_config(min_insync_replicas)}
    return out


def replication_config(min_insync_replicas: int) -> dict[str, str]:
    """The topic configuration for ``min_insync_replicas`` (none for 1, the default)."""
    return {"min.insync.replicas": str(min_insync_replicas)} if min_insync_replicas > 1 else {}


def partitions_of(settings: Settings, catalog: Catalog) -> dict[str, int]:
    """Logical topic -> the partitions it is created with."""
    return {t.name: t.partitions or settings.topic_partitions for t in catalog.all_topics()}


def ensure_topics(settings: Settings, catalog: Catalog | None = None, timeout: float = 30.0,
                  changelogs: Iterable[str] = (), partitions: int | None = None,
                  create: bool = True, needed: Iterable[str] | None = None) -> list[str]:
    """Create missing topics; returns the names created. ``changelogs`` are faust table
    changelog topics (compacted) created up front: faust creates them itself right before
    joining the group, and a topic the broker has not yet published in its metadata at that
    moment is left out of the assignment (PartitionsMismatch on the first table write).
    ``create=False`` (a least-privilege identity) only checks that they all exist and raises
    :class:`MissingTopicsError` naming the missing ones (of ``needed``, logical names, if
    given: a least-privilege identity sees only the topics it may use)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    catalog = catalog or default_catalog()
    admin = clients.admin(settings)
    existing = set(admin.list_topics(timeout=timeout).topics)
    if not create:
        _require(settings, catalog, existing, changelogs, needed)
        return []
    limits = load_policy(settings.policy_file or None).limits
    isr = settings.topic_min_insync_replicas
    configs = topic_config(catalog, limits, isr)
    counts = partitions_of(settings, catalog)
    specs = [(settings.topic(name), partitions or counts[name], config)
             for name, config in configs.items()]
    specs += [(name, partitions or settings.topic_partitions,
               {"cleanup.policy": "compact", "max.message.bytes":
                str(limits.max_output_bytes + BATCH_OVERHEAD), **replication_config(isr)})
              for name in changelogs]
    wanted = [NewTopic(name, num_partitions=count,
                       replication_factor=settings.topic_replication_factor, config=config)
              for name, count, config in specs if name not in existing]
    created: list[str] = []
    set_receipt_time(admin, [name for name, _, config in specs if name in existing and
                             config.get(TIMESTAMP_TYPE) == LOG_APPEND_TIME], timeout)
    if not wanted:
        return created
    for name, future in admin.create_topics(wanted, operation_timeout=timeout).items():
        try:
            future.result(timeout)
            created.append(name)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):   # another worker was faster
                raise
    if created:
        log.info("created topics: %s", ", ".join(sorted(created)))
        _await_metadata(admin, set(created), timeout)
    return created


def set_receipt_time(admin: object, names: list[str], timeout: float) -> list[str]:
    """Set ``message.timestamp.type=LogAppendTime`` on those of the existing topics
    ``names`` that have another timestamp type; returns the names changed."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    if not names:
        return []
    resources = [ConfigResource("TOPIC", name) for name in names]
    stale = []
    try:
        for resource, future in admin.describe_configs(  # type: ignore[attr-defined]
                resources, request_timeout=timeout).items():
            entry = future.result(timeout).get(TIMESTAMP_TYPE)
            if entry is None or entry.value != LOG_APPEND_TIME:
                stale.append(resource.name)
        if not stale:
            return []
        changes = [ConfigResource("TOPIC", name, incremental_configs=[ConfigEntry(
            TIMESTAMP_TYPE, LOG_APPEND_TIME, incremental_operation=AlterConfigOpType.SET)])
            for name in stale]
        for future in admin.incremental_alter_configs(  # type: ignore[attr-defined]
                changes, request_timeout=timeout).values():
            future.result(timeout)
    except KafkaException as exc:   # an identity that may create topics but not configure
        log.warning("cannot set %s=%s on %s (%s): lateness is then measured on the worker's "
                    "clock; run `ebi access apply` as the admin", TIMESTAMP_TYPE,
                    LOG_APPEND_TIME, ", ".join(stale or names), exc)
        return []
    log.info("set %s=%s on %s (timestamps are now the broker's receipt time)",
             TIMESTAMP_TYPE, LOG_APPEND_TIME, ", ".join(sorted(stale)))
    return sorted(stale)


def _require(settings: Settings, catalog: Catalog, existing: set[str],
             changelogs: Iterable[str], needed: Iterable[str] | None) -> None:
    logical = [t.name for t in catalog.all_topics()] if needed is None else list(needed)
    names = [settings.topic(name) for name in logical] + list(changelogs)
    missing = [name for name in names if name not in existing]
    if missing:
        raise MissingTopicsError(
            f"topics missing on {settings.bootstrap} (or not visible to "
            f"{settings.kafka_username or settings.identity!r}): {', '.join(missing)}; "
            "create them as the admin (`ebi stack up`, or `ebi access apply` on an existing "
            "cluster), or set create_topics = true for an identity that may create topics")


def _await_metadata(admin: object, names: set[str], timeout: float) -> None:
    """Wait until the broker lists the new topics with a leader for every partition."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=timeout).topics  # type: ignore[attr-defined]
        if all(name in topics and topics[name].partitions and
               all(p.leader >= 0 for p in topics[name].partitions.values()) for name in names):
            return
        time.sleep(0.1)


def partition_counts(settings: Settings, logical: list[str], timeout: float = 30.0) -> dict[
        str, int]:
    meta = clients.admin(settings).list_topics(timeout=timeout)
    return {name: len(meta.topics[settings.topic(name)].partitions) for name in logical
            if settings.topic(name) in meta.topics}
