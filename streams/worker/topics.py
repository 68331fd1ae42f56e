"""Create the pipeline's topics (every topic of the catalog) if they are missing: partitions
from the settings, replication 1, compaction where the catalog says. Existing topics are left
alone."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from schemas.catalog import default_catalog
from schemas.catalog.model import Catalog
from streams import clients
from streams.settings import Settings

log = logging.getLogger(__name__)


def ensure_topics(settings: Settings, catalog: Catalog | None = None, timeout: float = 30.0,
                  changelogs: Iterable[str] = (), partitions: int | None = None) -> list[str]:
    """Create missing topics; returns the names created. ``changelogs`` are faust table
    changelog topics (compacted) created up front: faust creates them itself right before
    joining the group, and a topic the broker has not yet published in its metadata at that
    moment is left out of the assignment (PartitionsMismatch on the first table write)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    admin = clients.admin(settings)
    existing = set(admin.list_topics(timeout=timeout).topics)
    count = partitions or settings.topic_partitions
    wanted = []
    catalog = catalog or default_catalog()
    specs = [(settings.topic(topic.name), topic.compacted) for topic in catalog.all_topics()]
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
