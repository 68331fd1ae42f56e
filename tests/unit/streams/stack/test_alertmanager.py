from pathlib import Path

import pytest

from streams.settings import Settings
from streams.stack import alertmanager
from streams.stack.alertmanager import Alertmanager, render_config
from streams.stack.process import StackError
from streams.stack.stack import default_services


def test_the_stack_runs_alertmanager_only_when_asked(tmp_path: Path) -> None:
    names = [s.name for s in default_services(Settings(data_dir=tmp_path))]
    assert "alertmanager" not in names
    names = [s.name for s in default_services(Settings(data_dir=tmp_path, alertmanager=True))]
    assert names[-1] == "alertmanager"


def test_own_or_existing_alertmanager(tmp_path: Path) -> None:
    own = Alertmanager(Settings(data_dir=tmp_path, alertmanager_port=19555))
    assert own.managed and own.address == "http://127.0.0.1:19555"
    other = Alertmanager(Settings(data_dir=tmp_path, alertmanager_url="http://am.internal:9093/"))
    assert not other.managed and other.address == "http://am.internal:9093"
    other.up()  # an existing Alertmanager is not started


def test_a_missing_binary_names_the_debian_package(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alertmanager, "binary", lambda: None)
    with pytest.raises(StackError, match="apt-get install prometheus-alertmanager"):
        Alertmanager(Settings(data_dir=tmp_path)).up()


def test_render_moves_every_receiver_to_the_setting() -> None:
    text = "url: http://127.0.0.1:5001/a\nurl: http://127.0.0.1:5001/b\n"
    assert render_config(text, "http://127.0.0.1:7/x/") == (
        "url: http://127.0.0.1:7/x/a\nurl: http://127.0.0.1:7/x/b\n")
    assert render_config(text) == text
