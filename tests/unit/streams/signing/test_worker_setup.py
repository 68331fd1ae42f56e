"""How the worker is set up to verify: trust anchors required, the opt-out, the key syncs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from schemas.catalog import default_catalog
from schemas.registry import InMemoryRegistry
from streams.metrics import Metrics
from streams.policy import load_policy
from streams.processors.reference import ReferenceData
from streams.settings import Settings, load
from streams.signing.devkeys import ensure
from streams.signing.keys import SigningError
from streams.worker.app import worker_verifier
from streams.worker.reference import ReferenceFeed

CATALOG = default_catalog()


def test_verification_is_on_by_default_and_needs_trust_anchors(tmp_path: Path) -> None:
    assert Settings().verify_signatures is True
    reference = ReferenceData(load_policy())
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(SigningError, match="no trust file"):
        worker_verifier(settings, CATALOG, reference)
    ensure(settings)
    verifier = worker_verifier(settings, CATALOG, reference)
    assert verifier is not None and len(verifier.anchors) == 1
    assert verifier.keys is reference.keys          # the live map the feed fills
    other = tmp_path / "trust.toml"
    other.write_text("# nobody\n")
    with pytest.raises(SigningError, match="holds no"):
        worker_verifier(settings.replace(signing_trust_file=str(other)), CATALOG, reference)


def test_turning_verification_off_is_an_explicit_setting(tmp_path: Path) -> None:
    off = load({"EBI_VERIFY_SIGNATURES": "false", "EBI_DATA_DIR": str(tmp_path)})
    assert off.verify_signatures is False
    assert worker_verifier(off, CATALOG, ReferenceData(load_policy())) is None


def test_an_unknown_key_makes_the_worker_sync_once_per_burst(tmp_path: Path) -> None:
    feed = ReferenceFeed(Settings(data_dir=tmp_path), CATALOG, InMemoryRegistry(),
                         ReferenceData(load_policy()), Metrics.create(CollectorRegistry()))
    feed.sync = lambda timeout=30.0: True  # type: ignore[method-assign]
    received = int(time.time() * 1000) - 1000
    assert feed.may_sync_key("k1", received)
    assert feed.sync_for_key()
    # the sync began after these messages reached the broker: a key registered before them
    # would have been found, so none of them (forged ids included) makes us sync again
    assert not feed.may_sync_key("k1", received)
    assert not feed.may_sync_key("k2", received)
    assert feed.may_sync_key("k2", int(time.time() * 1000) + 1000)   # received later
    assert feed.may_sync_key("k3")           # no receipt time: ask
    assert not feed.may_sync_key(None)
    began = time.monotonic()
    feed.sync_for_key()
    assert time.monotonic() - began >= 0.04  # at most 20 syncs a second


def test_a_failed_key_sync_lets_the_next_message_ask_again(tmp_path: Path) -> None:
    feed = ReferenceFeed(Settings(data_dir=tmp_path), CATALOG, InMemoryRegistry(),
                         ReferenceData(load_policy()), Metrics.create(CollectorRegistry()))
    feed.sync = lambda timeout=30.0: False  # type: ignore[method-assign]
    received = int(time.time() * 1000) - 1000
    assert not feed.sync_for_key(received)
    assert feed.may_sync_key("k1", received)     # nothing proved the key absent


def test_a_message_waits_for_the_key_sync_under_way(tmp_path: Path) -> None:
    """Two agents meet unknown keys of messages that arrived together: the second waits for
    the sync the first began (after both arrived) and verifies after it, syncing no more."""
    feed = ReferenceFeed(Settings(data_dir=tmp_path), CATALOG, InMemoryRegistry(),
                         ReferenceData(load_policy()), Metrics.create(CollectorRegistry()))
    entered, release = threading.Event(), threading.Event()
    syncs: list[float] = []

    def slow_sync(timeout: float = 30.0) -> bool:
        syncs.append(time.monotonic())
        entered.set()
        release.wait(5)
        return True

    feed.sync = slow_sync  # type: ignore[method-assign]
    received = int(time.time() * 1000) - 1000
    first = threading.Thread(target=feed.sync_for_key, args=(received,))
    first.start()
    assert entered.wait(5)
    assert feed.may_sync_key("k2", received)     # the sync under way has not ended yet
    answers: list[bool] = []
    second = threading.Thread(target=lambda: answers.append(feed.sync_for_key(received)))
    second.start()
    second.join(0.2)
    assert second.is_alive()                     # waits for the first sync to end
    release.set()
    first.join(5)
    second.join(5)
    assert answers == [True] and len(syncs) == 1
    assert not feed.may_sync_key("k2", received)
