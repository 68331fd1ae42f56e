"""The catalog contract on real services: a toy record type (tests/toy: its .avsc files, one
catalog entry, its processor) run by the real `ebi worker` and `ebi sink` (EBI_CATALOG names
the toy catalog) on Kafka, Apicurio and chdb, and accounted for by `ebi reconcile`."""

from __future__ import annotations

import time
from typing import Any

import pytest

from schemas.catalog import load_catalog
from streams.kafkaio import OutputReader, publish
from streams.settings import Settings
from streams.worker.topics import ensure_topics
from tests.integration.conftest import unique
from tests.integration.test_sink_kit import ebi, start_sink, wait_exit
from tests.integration.test_worker_kit import WorkerProcess
from tests.toy.processor import WELL_LEVEL

pytestmark = pytest.mark.integration
TOY = "tests.toy.processor:toy_catalog"


def levels(now: int) -> list[tuple[str, str, dict[str, Any]]]:
    rows = [(0, 3.0), (1, 3.2), (2, 4.9), (1, 3.2), (3, 2.0)]
    return [(WELL_LEVEL.input.name, "site-1", {"reading_id": f"w-{n}", "site_id": "site-1",
                                               "level_m": v, "measured_at": now - 60_000 + n})
            for n, v in rows]


def test_a_toy_record_type_runs_end_to_end(settings: Settings,
                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    store = tmp_path_factory.mktemp("toy-chdb")
    s = settings.replace(catalog=TOY, topic_prefix=f"{unique('toy')}.", topic_partitions=1,
                         worker_id=unique("toy-worker"), sink_group=unique("toy-sink"),
                         clickhouse_url=f"chdb://{store}?database=toy")
    catalog = load_catalog(TOY)
    for step in (["schemas", "register"], ["migrate"]):
        done = ebi(s, *step)
        assert done.returncode == 0, done.stdout + done.stderr
    ensure_topics(s, catalog)
    from streams import clients

    registry = clients.registry(s)
    clean = catalog.type(WELL_LEVEL.name).clean
    assert clean is not None
    reader = OutputReader(s, registry, [clean.name], catalog=catalog)
    publish(s, registry, levels(int(time.time() * 1000)), catalog=catalog)
    worker = WorkerProcess(s).start()
    try:
        assert reader.until(lambda outs: len(outs) >= 5, 90), worker.tail()
    finally:
        assert worker.stop() == 0, worker.tail()
        reader.close()
    assert sorted(o.record["reading_id"] for o in reader.outputs) == [
        "w-0", "w-1", "w-1", "w-2", "w-3"]
    wait_exit(start_sink(s, "--idle-exit", "2"), 90)
    rows = ebi(s, "query", "--format", "csv",
               "SELECT reading_id, round(rise_m, 2) AS rise FROM well_levels_raw FINAL "
               "ORDER BY reading_id")
    assert rows.returncode == 0, rows.stderr
    assert rows.stdout.split() == ["reading_id,rise", "w-0,0", "w-1,0.2",
                                   "w-2,1.7", "w-3,-2.9"]
    checked = ebi(s, "reconcile")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{s.topic('wells')}" in checked.stdout and "all 1 input and " in \
        checked.stdout
