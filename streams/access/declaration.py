"""A deployment's access declaration: which principals exist and which roles they hold.

    [principals]
    worker = ["worker"]
    gateway-a = ["gateway"]

Role names are those of :data:`ROLES`; unknown roles and malformed names are rejected with
the file and the principal named. ``[clickhouse.users]`` declares the ClickHouse users and
their data-access roles (read and checked by :mod:`streams.access.clickhouse_roles`).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.settings import PROJECT_ROOT

DEFAULT_FILE = PROJECT_ROOT / "deploy" / "access" / "local.toml"
ROLES = ("admin", "worker", "sink", "gateway", "regional", "registrar", "operator")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class DeclarationError(ValueError):
    """The access declaration cannot be read or names something unknown."""


@dataclass(frozen=True)
class Declaration:
    path: Path
    principals: dict[str, tuple[str, ...]]   # principal name -> roles
    # ClickHouse user -> {role, region, clearance} (streams/access/clickhouse_roles.py)
    clickhouse_users: dict[str, Any] = field(default_factory=dict)

    def holding(self, role: str) -> list[str]:
        return sorted(p for p, roles in self.principals.items() if role in roles)


def load_declaration(path: str | Path | None = None) -> Declaration:
    file = Path(path) if path else DEFAULT_FILE
    try:
        with open(file, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise DeclarationError(f"cannot read access declaration {file}: {exc.strerror}"
                               ) from None
    except tomllib.TOMLDecodeError as exc:
        raise DeclarationError(f"access declaration {file} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"principals", "clickhouse"})
    if unknown:
        raise DeclarationError(f"{file}: unknown section(s) {', '.join(unknown)}; "
                               "expected [principals] and [clickhouse.users]")
    clickhouse = data.get("clickhouse", {})
    if set(clickhouse) - {"users"} or not isinstance(clickhouse.get("users", {}), dict):
        raise DeclarationError(f"{file}: [clickhouse] holds one table, [clickhouse.users]")
    principals: dict[str, tuple[str, ...]] = {}
    for name, roles in data.get("principals", {}).items():
        if not _NAME.match(name):
            raise DeclarationError(f"{file}: principal name {name!r} must be letters, digits, "
                                   "'.', '_' or '-' (at most 64)")
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise DeclarationError(f"{file}: principal {name!r}: expected a list of roles")
        bad = sorted(set(roles) - set(ROLES))
        if bad:
            raise DeclarationError(f"{file}: principal {name!r}: unknown role(s) "
                                   f"{', '.join(bad)}; known: {', '.join(ROLES)}")
        principals[name] = tuple(roles)
    if not principals:
        raise DeclarationError(f"{file}: no principals declared")
    return Declaration(file, principals, dict(clickhouse.get("users", {})))
