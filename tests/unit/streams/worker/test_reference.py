"""The reference feed's catch-ups: when a message names a key, sensor or enterprise not
known yet, one sync serves a burst, a sync under way is waited for, a failed one proves
nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from schemas.catalog import default_catalog
from schemas.registry import InMemoryRegistry
from streams.metrics import Metrics
from streams.policy import load_policy
from streams.processors.reference import ReferenceData
from streams.settings import Settings
from streams.worker.reference import ReferenceFeed

CATALOG = default_catalog()


def _feed(tmp_path: Path) -> ReferenceFeed:
    return ReferenceFeed(Settings(data_dir=tmp_path), CATALOG, InMemoryRegistry(),
                         ReferenceData(load_policy()), Metrics.create(CollectorRegistry()))


def test_an_unknown_key_makes_the_worker_catch_up_once_per_burst(tmp_path: Path) -> None:
    feed = _feed(tmp_path)
    feed.sync = lambda timeout=30.0: True  # type: ignore[method-assign]
    received = int(time.time() * 1000) - 1000
    assert feed.may_sync_key("k1", received)
    assert feed.catch_up()
    # the sync began after these messages reached the broker: a key registered before them
    # would have been found, so none of them (forged ids included) makes us sync again
    assert not feed.may_sync_key("k1", received)
    assert not feed.may_sync_key("k2", received)
    assert feed.may_sync_key("k2", int(time.time() * 1000) + 1000)   # received later
    assert feed.may_sync_key("k3")           # no receipt time: ask
    assert not feed.may_sync_key(None)
    began = time.monotonic()
    feed.catch_up()
    assert time.monotonic() - began >= 0.04  # at most 20 syncs a second


def test_a_failed_key_sync_lets_the_next_message_ask_again(tmp_path: Path) -> None:
    feed = _feed(tmp_path)
    feed.sync = lambda timeout=30.0: False  # type: ignore[method-assign]
    received = int(time.time() * 1000) - 1000
    assert not feed.catch_up(received)
    assert feed.may_sync_key("k1", received)     # nothing proved the key absent


def test_a_message_waits_for_the_key_sync_under_way(tmp_path: Path) -> None:
    """Two agents meet unknown keys of messages that arrived together: the second waits for
    the sync the first began (after both arrived) and verifies after it, syncing no more."""
    feed = _feed(tmp_path)
    entered, release = threading.Event(), threading.Event()
    syncs: list[float] = []

    def slow_sync(timeout: float = 30.0) -> bool:
        syncs.append(time.monotonic())
        entered.set()
        release.wait(5)
        return True

    feed.sync = slow_sync  # type: ignore[method-assign]
    received = int(time.time() * 1000) - 1000
    first = threading.Thread(target=feed.catch_up, args=(received,))
    first.start()
    assert entered.wait(5)
    assert feed.may_sync_key("k2", received)     # the sync under way has not ended yet
    answers: list[bool] = []
    second = threading.Thread(target=lambda: answers.append(feed.catch_up(received)))
    second.start()
    second.join(0.2)
    assert second.is_alive()                     # waits for the first sync to end
    release.set()
    first.join(5)
    second.join(5)
    assert answers == [True] and len(syncs) == 1
    assert not feed.may_sync_key("k2", received)


def test_an_unknown_sensor_catches_up_once_per_interval_or_waits_for_one_under_way(
        tmp_path: Path) -> None:
    feed = _feed(tmp_path)
    feed.sync = lambda timeout=30.0: True  # type: ignore[method-assign]
    received = int(time.time() * 1000) - 1000
    assert feed.may_sync(received)
    assert feed.catch_up(received)
    assert not feed.may_sync(received)           # served by the catch-up that just ended
    later = int(time.time() * 1000) + 1000
    feed._last_sync = time.monotonic()
    assert not feed.may_sync(later)              # within min_sync_interval of the last sync
    with feed._catch_up_lock:                    # unless one is under way: wait for it
        assert feed.may_sync(later)
    feed._last_sync -= feed.min_sync_interval
    assert feed.may_sync(later)
