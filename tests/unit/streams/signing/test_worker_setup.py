"""How the worker is set up to verify: trust anchors required, the opt-out."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.catalog import default_catalog
from streams.policy import load_policy
from streams.processors.reference import ReferenceData
from streams.settings import Settings, load
from streams.signing.devkeys import ensure
from streams.signing.keys import SigningError
from streams.worker.app import worker_verifier

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
