"""``ebi keys new`` and ``ebi keys trust``: offline, nothing secret printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.cli import main
from streams.signing.keys import key_id_of, read_private_key
from streams.signing.trust import load_trust


def test_new_key_and_its_trust_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EBI_DATA_DIR", str(tmp_path))
    path = tmp_path / "registrar.key"
    assert main(["keys", "new", "--out", str(path)]) == 0
    key = read_private_key(path)
    out = capsys.readouterr().out
    assert key_id_of(key) in out and "PRIVATE" not in out and path.read_text() not in out
    assert main(["keys", "new", "--out", str(path)]) == 1            # never overwritten
    assert "never overwritten" in capsys.readouterr().err
    assert main(["keys", "trust", "--key-file", str(path), "--note", "authority"]) == 0
    trust = tmp_path / "trust.toml"
    trust.write_text(capsys.readouterr().out)
    assert list(load_trust(trust)) == [key_id_of(key)]
    assert main(["keys", "register", "--kind", "GATEWAY", "--owner", "gw-1"]) == 2
