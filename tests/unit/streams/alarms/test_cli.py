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


def test_alarms_ack_is_a_subcommand() -> None:
    args = build_parser(_modules()).parse_args(
        ["alarms", "ack", "0123456789abcdef@gw-1", "--by", "王工", "--note", "已处置",
         "--wait", "20"])
    assert (args.action, args.alarm_id, args.by, args.note, args.wait) == (
        "ack", "0123456789abcdef@gw-1", "王工", "已处置", 20.0)


def test_alarms_ack_needs_who(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser(_modules()).parse_args(["alarms", "ack", "0123456789abcdef@gw-1"])
    assert "--by" in capsys.readouterr().err


@pytest.mark.parametrize("alarm", ["gw-1", "abc@gw-1", "0123456789abcdef@"])
def test_an_id_that_is_no_alarm_id_is_refused_before_anything_is_sent(
        alarm: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for key in [k for k in os.environ if k.startswith("EBI_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("EBI_KAFKA_BOOTSTRAP", "127.0.0.1:1")   # nothing listens there
    assert main(["alarms", "ack", alarm, "--by", "王工"]) == 2
    assert "is not an alarm id" in capsys.readouterr().err


def test_the_command_names_the_alarms_home() -> None:
    from schemas.catalog import default_catalog
    from streams.alarms.acknowledge import command_type
    from streams.alarms.commands import acknowledgement

    command = acknowledgement("0123456789abcdef@inc-7@x", "王工", "", 1_790_000_000_000)
    assert command["home"] == "inc-7@x" and command["note"] is None
    assert command["action"] == "ACKNOWLEDGE" and len(command["command_id"]) == 32
    kind = command_type(default_catalog())
    assert kind.input.key == "home" and kind.senders == ("operator",)
