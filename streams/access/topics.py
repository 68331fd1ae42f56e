"""Topic creation is an admin step: ``ebi stack up``, ``ebi run``, ``ebi access apply`` and
the test fixtures create every topic of the catalog and the worker's table changelogs up
front, as the admin principal. The worker and the sink only check that they exist
(``create_topics = false``, the default): with least privilege they may not create them.
"""

from __future__ import annotations

from streams.settings import Settings


def create_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create the missing topics of the catalog and the worker's changelog topics (with the
    partition counts of the inputs their tables follow); returns the names created."""
    from schemas.catalog import load_catalog
    from streams.worker.app import changelog_topic
    from streams.worker.topics import ensure_topics, partition_counts

    catalog = load_catalog(settings.catalog)
    created = ensure_topics(settings, catalog, timeout=timeout)
    counts = partition_counts(settings, catalog.input_topics(), timeout=timeout)
    for table, kinds in catalog.state_groups().items():
        partitions = counts.get(kinds[0].input.name, settings.topic_partitions)
        created += ensure_topics(settings, catalog, timeout=timeout, partitions=partitions,
                                 changelogs=[changelog_topic(settings, table)])
    return created
