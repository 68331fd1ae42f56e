"""Two workers in one group with rebalances mid-stream lose nothing and let no duplicate
through.

Worker A runs alone, worker B joins while traffic flows (partitions move to B with their
table state), then A is killed with SIGKILL (its partitions move back to B once the group
notices). The same checks as the SIGKILL test: every input message has a ledger output and
no reading or report id is accepted from two different source messages (the same source
message output twice is deduplicated by the ClickHouse sink by source coordinates).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from streams.settings import Settings
from tests.integration.conftest import unique
from tests.integration.test_worker_kit import (
    PacedPublisher,
    WorkerProcess,
    accepted_twice,
    ledger_sources,
    past_config,
    reader,
    wait_for_ledger,
)

pytestmark = pytest.mark.integration


def test_two_workers_with_rebalances_lose_nothing(settings: Settings) -> None:
    st = settings.replace(topic_prefix=f"{unique('wreb')}.", worker_id=unique("ebi-wreb"))
    a = WorkerProcess(st, "a").start()
    b = WorkerProcess(st, "b")
    try:
        publisher = PacedPublisher(st, past_config(seed=31, duration_s=40.0, rate=3000.0,
                                                   duplicate_rate=0.003,
                                                   incidents_per_min=30.0), seconds=24.0)
        outputs = reader(st)
        outputs.until(lambda outs: len(outs) > 50, 60)
        b.start()                                   # rebalance: A gives partitions to B
        outputs.until(lambda outs: False, 8)
        a.kill()                                    # rebalance: B takes everything
        coords = publisher.join()
        missing = wait_for_ledger(outputs, coords, timeout=120)
        assert b.alive(), b.tail()
    finally:
        a.stop()
        b.stop()
    outputs.poll(2.0)
    assert not missing, f"{len(missing)} of {len(coords)} inputs lost, e.g. {sorted(missing)[:3]}"
    twice = accepted_twice(outputs)
    assert not twice, f"accepted from two different messages: {twice[:5]}"
    injected = sum(1 for line in publisher.sim.truth if line.get("fault") == "duplicate")
    dropped = sum(e["duplicates"] for e in outputs.of("telemetry.clean")) + \
        sum(1 for r in outputs.of("incidents.clean") if r["duplicate"])
    assert dropped >= injected
    replays = Counter(n for n in ledger_sources(outputs).values() if n > 1)
    skipped = sum(int(n) for w in (a, b)
                  for n in re.findall(r"skipped (\d+) message", w.log.read_text()))
    print(f"\n[rebalance] {len(coords)} inputs; skipped after a rebalance (outputs already "
          f"delivered): {skipped}; source messages output more than once (deduplicated by "
          f"the sink): {sum(replays.values())}; injected duplicates {injected}, dropped "
          f"{dropped}; restarts after missing input offsets: {a.restarts + b.restarts}")
