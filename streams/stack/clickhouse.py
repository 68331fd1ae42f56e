"""Apicurio Registry (placeholder until the build is settled)."""
from __future__ import annotations
from streams.settings import Settings
from streams.stack.process import ManagedProcess


class ClickHouseServer:
    name = "clickhouse"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.proc = ManagedProcess("clickhouse", settings.run_dir, settings.log_dir / "clickhouse.log", marker="apicurio")

    @property
    def managed(self) -> bool:
        return False

    @property
    def address(self) -> str:
        return self.settings.clickhouse

    def healthy(self) -> bool:
        return False

    def up(self) -> None:
        pass

    def down(self) -> bool:
        return False
