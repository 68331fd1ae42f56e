"""Create the pipeline's topics if they are missing (partitions from the settings,
replication 1, compaction for the reference topics). Existing topics are left alone."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from schemas.catalog import TOPICS
from streams import clients
from streams.settings import Settings

log = logging.getLogger(__name__)


class MissingTopicsError(RuntimeError):
    """Topics this process needs do not exist, and it may not create them."""


def ensure_topics(settings: Settings, timeout: float = 30.0,
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

    admin = clients.admin(settings)
    existing = set(admin.list_topics(timeout=timeout).topics)
    if not create:
        _require(settings, existing, changelogs, needed)
        return []
    count = partitions or settings.topic_partitions
    wanted = []
    specs = [(settings.topic(spec.name), spec.compacted) for spec in TOPICS.values()]
    specs += [(name, True) for name in changelogs]
    for name, compacted in specs:
        if name in existing:
            continue
        config = {"cleanup.policy": "compact"} if compacted else {}
        wanted.append(NewTopic(name, num_partitions=count, replication_factor=1,
                               config=config))
    created: list[str] = []
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


def _require(settings: Settings, existing: set[str], changelogs: Iterable[str],
             needed: Iterable[str] | None) -> None:
    logical = list(TOPICS) if needed is None else list(needed)
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
