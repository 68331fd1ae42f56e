"""How the worker is set up to verify: trust anchors required, the opt-out, the key syncs."""

from __future__ import annotations

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


def test_unknown_keys_make_the_worker_sync_rarely(tmp_path: Path) -> None:
    feed = ReferenceFeed(Settings(data_dir=tmp_path), CATALOG, InMemoryRegistry(),
                         ReferenceData(load_policy()), Metrics.create(CollectorRegistry()))
    assert feed.may_sync_key("k1")
    assert not feed.may_sync_key("k2")       # within 50 ms of the last key sync
    feed._last_key_sync -= 1.0
    assert not feed.may_sync_key("k1")       # k1 already made us sync this minute
    assert feed.may_sync_key("k2")
    assert not feed.may_sync_key(None)
