"""Who may publish: the policy's [publication] section."""

from __future__ import annotations

import pytest

from streams.policy import load_policy
from streams.signing.keys import KeyRef, new_private_key
from streams.signing.publication import PublicationPolicyError, Publishers, publishers


def regional(code: str, key_id: str = "") -> KeyRef:
    return KeyRef(key_id or f"k-{code}", "REGIONAL", code, "", new_private_key().public_key())


def test_the_bundled_policy_names_the_ministry_and_the_provinces() -> None:
    p = publishers(load_policy().raw)
    assert p.authorised(regional("000000"), "320102")          # the ministry
    assert p.authorised(regional("320000"), "320102")          # its own province
    assert not p.authorised(regional("330000"), "320102")      # another province
    assert not p.authorised(regional("320100"), "320102")      # a city bureau
    assert not p.authorised(regional("320102"), "320102")      # a county system
    assert not p.authorised(None, "320102")                    # nothing verified
    gateway = KeyRef("g", "GATEWAY", "gw", "ent", new_private_key().public_key())
    assert not p.authorised(gateway, "320102")


def test_regions_and_keys_can_be_named() -> None:
    p = publishers({"publication": {"levels": ["national"], "regions": ["320100"],
                                    "keys": ["k-special"]}})
    assert p.authorised(regional("320100"), "320102")
    assert not p.authorised(regional("320100"), "320200")      # still its own region only
    assert p.authorised(regional("320102", "k-special"), "320102")
    assert not p.authorised(regional("320000"), "320102")
    assert publishers({}) == Publishers()


@pytest.mark.parametrize("section", [{"levels": ["galaxy"]}, {"who": []}, "all"])
def test_bad_sections_are_refused(section: object) -> None:
    with pytest.raises(PublicationPolicyError):
        publishers({"publication": section})
