"""One typed, frozen settings object for every ebi process.

Settings come from three layers, later ones winning: the defaults below, an optional
TOML file (``EBI_SETTINGS_FILE`` or ``--settings``; keys are the field names), and the
environment (``EBI_`` + the field name in upper case). Unknown keys in either layer are
rejected with a message that names them. Nothing here runs at import time:
callers build a ``Settings`` with :func:`load` and pass it down.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "EBI_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A settings layer holds an unknown key or a value of the wrong type."""


def _default_data_dir() -> Path:
    return PROJECT_ROOT / "var"


@dataclass(frozen=True, slots=True)
class Settings:
    # Where the local stack keeps its data, logs, pid files and downloaded jars.
    data_dir: Path = field(default_factory=_default_data_dir)
    # Existing services. Empty means "the local stack starts its own".
    kafka_bootstrap: str = ""
    schema_registry_url: str = ""
    # clickhouse://host:port/db (native protocol) or chdb:///path (embedded); empty means
    # embedded under data_dir/chdb.
    clickhouse_url: str = ""
    # Ports of the services the local stack starts (loopback only).
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    registry_port: int = 18081
    clickhouse_tcp_port: int = 19000
    clickhouse_http_port: int = 18123
    # Topic names get this prefix, so tests and tenants can share a cluster.
    topic_prefix: str = "ebi."
    topic_partitions: int = 4
    # Worker and sink.
    worker_id: str = "ebi-worker"
    # Several workers of one group on one host need their own state dirs (rocksdb locks):
    # data_dir/worker/<worker_id>/<worker_instance>.
    worker_instance: str = "0"
    sink_group: str = "ebi-sink"
    metrics_port: int = 0  # 0: do not serve /metrics
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in containers (deploy/compose.yaml)
    # A message on which the worker or the sink fails this many times in a row is set aside
    # to the dead letters (QUARANTINED, with the exception) and processing moves on.
    poison_attempts: int = 3
    sink_batch_rows: int = 50_000
    sink_batch_seconds: float = 1.0
    policy_file: str = ""  # empty: the bundled policy (streams/policy/default.toml)
    region_table: str = ""  # empty: the bundled GB/T 2260 table (streams/records/data)
    # The record types: "package.module:function" returning a Catalog; empty: ebi's own
    # (schemas/catalog/declarations.py).
    catalog: str = ""
    # Alarm delivery (`ebi alarms forward`). alertmanager_url empty: the local stack's own
    # Alertmanager on alertmanager_port, which `ebi stack up` starts when alertmanager = true.
    alertmanager: bool = False
    alertmanager_url: str = ""
    alertmanager_port: int = 19094
    # Base URL of the notification gateway the receivers of deploy/alertmanager/alertmanager.yml
    # post to; empty: the URLs as written there.
    alertmanager_receiver_url: str = ""
    # Tests: a service that cannot start fails the run instead of skipping.
    require_services: bool = False
    log_level: str = "WARNING"

    # -- derived values -------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def registry_url(self) -> str:
        return self.schema_registry_url or f"http://127.0.0.1:{self.registry_port}/apis/ccompat/v7"

    @property
    def clickhouse(self) -> str:
        return self.clickhouse_url or f"chdb://{self.data_dir / 'chdb'}"

    @property
    def alertmanager_address(self) -> str:
        return (self.alertmanager_url or f"http://127.0.0.1:{self.alertmanager_port}").rstrip("/")

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def replace(self, **changes: object) -> Settings:
        _check_keys(changes, "replace()")
        coerced: dict[str, Any] = {k: _coerce(k, v) for k, v in changes.items()}
        return dataclasses.replace(self, **coerced)


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_TYPES = typing.get_type_hints(Settings)


def _check_keys(keys: typing.Iterable[str], where: str) -> None:
    unknown = sorted(k for k in keys if k not in _FIELDS)
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, _FIELDS, n=1)
        hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
    raise SettingsError(
        f"unknown setting(s) in {where}: {', '.join(hints)}; "
        f"known settings: {', '.join(sorted(_FIELDS))}"
    )


def _coerce(name: str, value: object) -> object:
    kind = _TYPES[name]
    if isinstance(kind, types.UnionType):  # pragma: no cover - no optional fields yet
        kind = next(t for t in typing.get_args(kind) if t is not type(None))
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(f"expected a boolean (1/0, true/false), got {value!r}")
        if kind is Path:
            return Path(str(value)).expanduser()
        if kind is int:
            if isinstance(value, bool):
                raise ValueError("expected an integer, got a boolean")
            return int(str(value))
        if kind is float:
            return float(str(value))
        return str(value)
    except ValueError as exc:
        raise SettingsError(f"setting {name}: {exc}") from exc


def load(
    environ: Mapping[str, str] | None = None,
    settings_file: str | Path | None = None,
) -> Settings:
    """Build the settings from a settings file and the environment (``EBI_*``)."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, object] = {}
    path = settings_file or env.pop(f"{ENV_PREFIX}SETTINGS_FILE", "")
    if path:
        try:
            with open(path, "rb") as handle:
                from_file = tomllib.load(handle)
        except OSError as exc:
            raise SettingsError(f"cannot read settings file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from exc
        _check_keys(from_file, f"settings file {path}")
        values.update(from_file)
    env.pop(f"{ENV_PREFIX}SETTINGS_FILE", None)
    from_env = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in env.items()
        if key.startswith(ENV_PREFIX)
    }
    _check_keys(from_env, "the environment (EBI_* variables)")
    values.update(from_env)
    return Settings(**{k: _coerce(k, v) for k, v in values.items()})  # type: ignore[arg-type]
