"""Which credentials a process presents: those given in the settings, or else the ones the
local stack generated for the process's ``identity``.

The local stack keeps its secrets under ``data_dir/secrets`` (directory 0700, files 0600;
created by :mod:`streams.stack.pki`):

- ``ca.pem`` the local certificate authority; ``kafka.pem``/``registry.pem`` and their keys,
  the servers' certificates for 127.0.0.1/localhost;
- ``credentials.toml``: one generated password per principal of deploy/access/local.toml
  (section ``[principals]``; the Kafka SCRAM user and the registry user of that name) and
  the ClickHouse users (section ``[clickhouse]``).

Nothing here prints a password: values travel as :class:`~streams.settings.Secret`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from streams.settings import Secret, Settings

SECRETS_DIR = "secrets"
CREDENTIALS_FILE = "credentials.toml"
CA_FILE = "ca.pem"
# identity -> the ClickHouse user of the local stack
CLICKHOUSE_USERS = {"admin": "ebi_admin", "sink": "ebi_sink"}


class CredentialsError(RuntimeError):
    """A process needs credentials and none are given or generated."""


@dataclass(frozen=True)
class Login:
    username: str
    password: Secret

    def __repr__(self) -> str:
        return f"Login({self.username!r}, ******)"


def secrets_dir(data_dir: Path) -> Path:
    return data_dir / SECRETS_DIR


def read_credentials(data_dir: Path) -> dict[str, dict[str, str]]:
    """The local stack's generated passwords ({} when the stack has generated none)."""
    path = secrets_dir(data_dir) / CREDENTIALS_FILE
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CredentialsError(f"cannot read the local stack's credentials {path}: {exc}"
                               ) from None
    return {section: {k: str(v) for k, v in values.items()}
            for section, values in data.items() if isinstance(values, dict)}


def _generated(settings: Settings, section: str, name: str, what: str) -> Login:
    table = read_credentials(settings.data_dir).get(section, {})
    if name not in table:
        where = secrets_dir(settings.data_dir) / CREDENTIALS_FILE
        known = ", ".join(sorted(table)) or "none"
        raise CredentialsError(
            f"no {what} credentials for identity {name!r}: the settings give none and "
            f"{where} has none for it (generated there: {known}); run `ebi stack up` for the "
            "local stack, or set the username and password settings (docs/security.md)")
    return Login(name, Secret(table[name]))


def kafka_login(settings: Settings) -> Login:
    if settings.kafka_username:
        return Login(settings.kafka_username, settings.kafka_password)
    return _generated(settings, "principals", settings.identity, "Kafka")


def registry_login(settings: Settings) -> Login | None:
    """None: anonymous (an external registry without authentication)."""
    if settings.registry_username:
        return Login(settings.registry_username, settings.registry_password)
    if settings.schema_registry_url and not read_credentials(settings.data_dir):
        return None
    return _generated(settings, "principals", settings.identity, "schema registry")


def clickhouse_login(settings: Settings) -> Login | None:
    """None: the URL's own user part (or ClickHouse's default user) is used. A user given
    without a password gets the local stack's generated one, if it has one (the ClickHouse
    users of deploy/access/local.toml: ``EBI_CLICKHOUSE_USER=analyst_32 ebi query ...``)."""
    if settings.clickhouse_user:
        password = settings.clickhouse_password
        if not password:
            generated = read_credentials(settings.data_dir).get("clickhouse", {})
            password = Secret(generated.get(settings.clickhouse_user, ""))
        return Login(settings.clickhouse_user, password)
    user = CLICKHOUSE_USERS.get(settings.identity)
    table = read_credentials(settings.data_dir).get("clickhouse", {})
    if user is None or user not in table:
        return None
    return Login(user, Secret(table[user]))


def ca_file(settings: Settings, explicit: str) -> str:
    """The CA bundle to verify servers with: ``explicit``, else the local stack's CA if it
    exists, else "" (the system's trust store)."""
    if explicit:
        return explicit
    local = secrets_dir(settings.data_dir) / CA_FILE
    return str(local) if local.exists() else ""


def all_passwords(data_dir: Path) -> list[str]:
    """Every generated password (tests grep logs for them; error messages are scrubbed)."""
    return [v for table in read_credentials(data_dir).values() for v in table.values()]


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every occurrence of any of ``secrets`` masked."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, Secret.MASK)
    return text
