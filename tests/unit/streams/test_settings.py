from pathlib import Path

import pytest

from streams.settings import Settings, SettingsError, load


def test_defaults_without_environment() -> None:
    settings = load(environ={})
    assert settings == Settings()
    assert settings.bootstrap == "127.0.0.1:19092"
    assert settings.clickhouse.startswith("chdb://")


def test_environment_overrides_and_types() -> None:
    settings = load(environ={"EBI_KAFKA_PORT": "29092", "EBI_REQUIRE_SERVICES": "1",
                             "EBI_SINK_BATCH_SECONDS": "0.5", "PATH": "/bin"})
    assert settings.kafka_port == 29092
    assert settings.require_services is True
    assert settings.sink_batch_seconds == 0.5


def test_unknown_environment_key_is_named_with_a_hint() -> None:
    with pytest.raises(SettingsError, match=r"kafka_bootstrp \(did you mean kafka_bootstrap\?\)"):
        load(environ={"EBI_KAFKA_BOOTSTRP": "x:1"})


def test_bad_value_names_the_setting() -> None:
    with pytest.raises(SettingsError, match="setting kafka_port"):
        load(environ={"EBI_KAFKA_PORT": "many"})
    with pytest.raises(SettingsError, match="boolean"):
        load(environ={"EBI_REQUIRE_SERVICES": "perhaps"})


def test_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "ebi.toml"
    path.write_text('topic_prefix = "prod."\nkafka_port = 1\n')
    settings = load(environ={"EBI_SETTINGS_FILE": str(path), "EBI_KAFKA_PORT": "2"})
    assert settings.topic("telemetry") == "prod.telemetry"
    assert settings.kafka_port == 2


def test_unknown_file_key_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "ebi.toml"
    path.write_text("colour = 'red'\n")
    with pytest.raises(SettingsError, match=f"settings file {path}: colour"):
        load(environ={}, settings_file=path)


def test_settings_are_frozen_and_replace_checks_keys() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.kafka_port = 1  # type: ignore[misc]
    assert settings.replace(kafka_port="5").kafka_port == 5
    with pytest.raises(SettingsError):
        settings.replace(nonsense=1)


def test_worker_input_is_fetches_unless_faust_s_stream_is_asked_for() -> None:
    assert load({}).worker_input == "fetches"
    assert load({"EBI_WORKER_INPUT": "stream"}).worker_input == "stream"
    with pytest.raises(SettingsError, match="setting worker_input: expected one of fetches, "
                       "stream"):
        load({"EBI_WORKER_INPUT": "events"})
