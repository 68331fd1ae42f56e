"""Migrations on both backends: idempotent, safe on tables that hold data, and a field new
in an Avro schema becomes a column."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sinks.clickhouse import connect
from sinks.clickhouse.migrations import migrate
from tests.integration.conftest import unique
from tests.integration.test_sink_kit import env_for, load_in_process, with_database
from tests.unit.sinks import factories as f

pytestmark = pytest.mark.integration


def test_migrate_twice_and_on_tables_with_data(clickhouse_url: str) -> None:
    url = with_database(clickhouse_url, unique("mig"))
    backend = connect(url, create_database=True)
    try:
        first = migrate(backend)
        assert [s.version for s in first.applied][:3] == ["0001", "0002", "0003"]
        assert migrate(backend).applied == []
        load_in_process(backend, {
            "telemetry.clean": [f.telemetry(i, readings=5) for i in range(4)],
            "alerts": [f.alert(i) for i in range(3)]})
        # as if `tag` were a new optional field of Alert.avsc: the table lacks it
        backend.command(f"ALTER TABLE {backend.config.database}.alerts_raw DROP COLUMN tag")
        report = migrate(backend)
        assert [s.version for s in report.applied] == ["column:alerts_raw.tag"]
        assert backend.query("SELECT count(), countIf(tag IS NULL) FROM alerts").rows == [
            (3, 3)]
        assert backend.query("SELECT count() FROM readings").scalar() == 20
        assert migrate(backend).applied == []
        versions = backend.query("SELECT count() FROM schema_migrations FINAL").scalar()
        assert versions == len(first.applied) + 1
    finally:
        backend.close()


def test_ebi_migrate_command_is_idempotent(clickhouse_url: str, stack_settings: object
                                           ) -> None:
    from streams.settings import Settings

    assert isinstance(stack_settings, Settings)
    s = stack_settings.replace(clickhouse_url=with_database(clickhouse_url, unique("cli")))

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "streams", "migrate"], env=env_for(s),
                              capture_output=True, text=True, timeout=60)

    first, second = run(), run()
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout and "0001" in first.stdout
    assert second.returncode == 0 and "up to date" in second.stdout
