"""``ebi alarms forward``: the subcommand is registered and refuses settings that would let
alarms resolve between posts."""

import os

import pytest

from streams.cli import COMMANDS, _modules, build_parser, main


def test_alarms_forward_is_a_subcommand() -> None:
    assert COMMANDS["alarms"][0] == "streams.cli.alarms"
    args = build_parser(_modules()).parse_args(["alarms", "forward", "--repost-every", "30",
                                                "--duration", "5"])
    assert (args.command, args.action, args.repost_every, args.lease) == (
        "alarms", "forward", 30.0, 240.0)


def test_alarms_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser(_modules()).parse_args(["alarms"])
    assert "required: ACTION" in capsys.readouterr().err


def test_a_repost_longer_than_the_lease_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for key in [k for k in os.environ if k.startswith("EBI_")]:
        monkeypatch.delenv(key)
    assert main(["alarms", "forward", "--repost-every", "300", "--lease", "240"]) == 2
    assert "shorter than the lease" in capsys.readouterr().err
