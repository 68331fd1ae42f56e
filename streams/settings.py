"""One typed, frozen settings object for every ebi process.

Settings come from three layers, later ones winning: the defaults below, an optional
TOML file (``EBI_SETTINGS_FILE`` or ``--settings``; keys are the field names), and the
environment (``EBI_`` + the field name in upper case). Unknown keys in either layer are
rejected with a message that names them. Nothing here runs at import time:
callers build a ``Settings`` with :func:`load` and pass it down.

Credentials are :class:`Secret` fields: printed, logged or formatted they show ``******``,
and ``.reveal()`` gives the value to the one call that needs it. Every secret field ``x``
can instead be read from a file named by ``x_file`` (``EBI_KAFKA_PASSWORD_FILE=/run/...``,
or ``kafka_password_file = "..."`` in the TOML file; one trailing newline is dropped);
giving both ``x`` and ``x_file`` is an error.
"""

from __future__ import annotations

import dataclasses
import difflib
import hmac
import os
import re
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


class Secret:
    """A credential: a string that never shows itself. ``repr``, ``str`` and format give
    ``******``; :meth:`reveal` returns the value (call it where the value is used, never to
    build a message)."""

    __slots__ = ("_value",)
    MASK = "******"

    def __init__(self, value: str = "") -> None:
        self._value = str(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return self.MASK

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return self.MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[object, ...]:  # pickling would write the value out
        raise TypeError("a Secret is not picklable")


def _default_data_dir() -> Path:
    return PROJECT_ROOT / "var"


def redact_url(url: str) -> str:
    """``url`` with the password of its user part (``//user:password@``) masked, for
    messages and logs; anything that is not such a URL comes back unchanged."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{Secret.MASK}@", url)


_URL_PASSWORD = re.compile(r"(//[^/@:\s]*:)[^@\s]*@")


@dataclass(frozen=True, slots=True, repr=False)
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
    # How the worker takes its input: "fetches" (whole fetches from the consumer, see
    # streams/worker/fetches.py) or "stream" (faust's per-message stream, noack_take).
    worker_input: str = "fetches"
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
    alertmanager_port: int = 19096
    # Base URL of the notification gateway the receivers of deploy/alertmanager/alertmanager.yml
    # post to; empty: the URLs as written there.
    alertmanager_receiver_url: str = ""
    # -- security (docs/security.md) --------------------------------------------------
    # Kafka: sasl_ssl (default), ssl or sasl_plaintext for an external cluster, plaintext
    # only as an explicit development opt-in (the local broker then runs without TLS, SASL
    # and ACLs).
    kafka_security: str = "sasl_ssl"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    # Empty username: the local stack's generated credentials of `identity`
    # (data_dir/secrets/credentials.toml); empty CA file: the local stack's CA
    # (data_dir/secrets/ca.pem) if present, else the system's trust store.
    kafka_username: str = ""
    kafka_password: Secret = field(default_factory=Secret)
    kafka_ca_file: str = ""
    # The local broker's inter-broker listener (mutual TLS, loopback only).
    kafka_broker_port: int = 19094
    # Schema registry (HTTP basic auth over TLS), same rules as Kafka's.
    registry_username: str = ""
    registry_password: Secret = field(default_factory=Secret)
    registry_ca_file: str = ""
    # ClickHouse server login (the URL may carry none); empty: the local stack's user
    # for `identity` (admin -> ebi_admin, sink -> ebi_sink).
    clickhouse_user: str = ""
    clickhouse_password: Secret = field(default_factory=Secret)
    # Whose generated local-stack credentials this process uses when none are given
    # above: a principal of deploy/access/local.toml (admin, worker, sink, simulator, ...).
    identity: str = "admin"
    # The worker and the sink create missing topics themselves (as an admin identity
    # may); otherwise topics are created by `ebi stack up` / `ebi access apply` and the
    # worker and sink only check that they exist.
    create_topics: bool = False
    # -- record signing (docs/security.md, streams/signing) --------------------------
    # The worker checks every record's signature and sender before anything else;
    # false is a development opt-in (records are then accepted unverified).
    verify_signatures: bool = True
    # The registration authority's public keys (TOML; every registration must be signed by
    # one of them); empty: the local dev keyring's (data_dir/signing/trust.toml).
    signing_trust_file: str = ""
    # This sender's private key (PEM, PKCS#8 Ed25519, `ebi keys new`); empty: the local dev
    # keyring derives a key per gateway, enterprise and region (data_dir/secrets/signing).
    signing_key_file: str = ""
    # Tests: a service that cannot start fails the run instead of skipping.
    require_services: bool = False
    log_level: str = "WARNING"
    # -- past one machine (docs/scaling.md) -----------------------------------------------
    # Replicas of every topic ebi creates (the catalog's, faust's changelogs) and the
    # in-sync replicas a write with acks=all needs (min.insync.replicas). Partitions:
    # topic_partitions, or a topic's own count in the catalog.
    topic_replication_factor: int = 1
    topic_min_insync_replicas: int = 1
    # Brokers the local stack starts (KRaft, each broker and controller); broker i (from 0)
    # listens on kafka_port, kafka_broker_port, kafka_controller_port + i * kafka_port_step
    # and keeps its data in data_dir/kafka (i = 0) or data_dir/kafka-<i+1>.
    kafka_brokers: int = 1
    kafka_port_step: int = 10
    # The ClickHouse cluster (a remote_servers name) the tables are replicated across:
    # `ebi migrate` then makes Replicated*MergeTree tables (<name>_local) under Distributed
    # ones (<name>) ON CLUSTER; empty: one server, plain tables. clickhouse_replicas > 1:
    # the local stack starts that many clickhouse-server replicas (replica i on the ports
    # + i * clickhouse_port_step) and ZooKeeper, as cluster clickhouse_cluster or "ebi".
    clickhouse_cluster: str = ""
    clickhouse_replicas: int = 1
    clickhouse_port_step: int = 10
    clickhouse_interserver_port: int = 19009
    zookeeper_port: int = 12181

    def __post_init__(self) -> None:
        checks = (
            (self.topic_replication_factor >= 1, "topic_replication_factor must be >= 1"),
            (1 <= self.topic_min_insync_replicas <= self.topic_replication_factor,
             f"topic_min_insync_replicas ({self.topic_min_insync_replicas}) must be between 1 "
             f"and topic_replication_factor ({self.topic_replication_factor})"),
            (self.kafka_brokers >= 1, "kafka_brokers must be >= 1"),
            (self.kafka_bootstrap or self.topic_replication_factor <= self.kafka_brokers,
             f"topic_replication_factor ({self.topic_replication_factor}) is more than the "
             f"local stack's kafka_brokers ({self.kafka_brokers}); start more brokers "
             "(EBI_KAFKA_BROKERS) or lower the replication"),
            (self.clickhouse_replicas >= 1, "clickhouse_replicas must be >= 1"),
        )
        wrong = [why for ok, why in checks if not ok]
        if wrong:
            raise SettingsError("; ".join(wrong))

    # -- derived values -------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def bootstrap(self) -> str:
        """The given bootstrap servers, or every broker of the local stack."""
        return self.kafka_bootstrap or ",".join(
            f"127.0.0.1:{self.kafka_port + i * self.kafka_port_step}"
            for i in range(self.kafka_brokers))

    @property
    def clickhouse_cluster_name(self) -> str:
        """The cluster the tables are replicated across ("" for one server)."""
        return self.clickhouse_cluster or ("ebi" if self.clickhouse_replicas > 1 else "")

    @property
    def registry_url(self) -> str:
        return (self.schema_registry_url
                or f"https://127.0.0.1:{self.registry_port}/apis/ccompat/v7")

    @property
    def clickhouse(self) -> str:
        return self.clickhouse_url or f"chdb://{self.data_dir / 'chdb'}"

    @property
    def alertmanager_address(self) -> str:
        return (self.alertmanager_url or f"http://127.0.0.1:{self.alertmanager_port}").rstrip("/")

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            shown = redact_url(value) if isinstance(value, str) else value
            parts.append(f"{f.name}={shown!r}")
        return f"Settings({', '.join(parts)})"

    def replace(self, **changes: object) -> Settings:
        _check_keys(changes, "replace()")
        coerced: dict[str, Any] = {k: _coerce(k, v) for k, v in changes.items()}
        return dataclasses.replace(self, **coerced)


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_TYPES = typing.get_type_hints(Settings)
# Every Secret field `x` may be given as a file name `x_file` instead.
_SECRET_FILES = {f"{name}_file": name for name, kind in _TYPES.items() if kind is Secret}
_CHOICES = {"kafka_security": {"sasl_ssl", "ssl", "sasl_plaintext", "plaintext"},
            "worker_input": {"fetches", "stream"},
            "kafka_sasl_mechanism": {"SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"}}


def _check_keys(keys: typing.Iterable[str], where: str, files: bool = False) -> None:
    unknown = sorted(k for k in keys if k not in _FIELDS and not (files and k in _SECRET_FILES))
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
        if kind is Secret:
            return value if isinstance(value, Secret) else Secret(str(value))
        text = str(value)
        if name in _CHOICES and text not in _CHOICES[name]:
            raise ValueError(f"expected one of {', '.join(sorted(_CHOICES[name]))}, "
                             f"got {text!r}")
        return text
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
        _check_keys(from_file, f"settings file {path}", files=True)
        values.update(_read_secret_files(from_file, f"settings file {path}"))
    env.pop(f"{ENV_PREFIX}SETTINGS_FILE", None)
    from_env = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in env.items()
        if key.startswith(ENV_PREFIX)
    }
    _check_keys(from_env, "the environment (EBI_* variables)", files=True)
    values.update(_read_secret_files(from_env, "the environment"))
    return Settings(**{k: _coerce(k, v) for k, v in values.items()})  # type: ignore[arg-type]


def _read_secret_files(layer: Mapping[str, object], where: str) -> dict[str, object]:
    """The layer with each ``x_file`` key replaced by ``x`` = the file's content."""
    out: dict[str, object] = {k: v for k, v in layer.items() if k not in _SECRET_FILES}
    for key, name in _SECRET_FILES.items():
        if key not in layer:
            continue
        if name in layer:
            raise SettingsError(f"{where}: both {name} and {key} are given; use one")
        path = Path(str(layer[key])).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"{where}: {key}: cannot read {path}: {exc.strerror}") from None
        out[name] = Secret(text[:-1] if text.endswith("\n") else text)
    return out
