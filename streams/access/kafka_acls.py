"""Kafka ACLs of every role, derived from the catalog, and their provisioning.

The catalog (:mod:`schemas.catalog`) says who writes what: each record type names the roles
that may write its input topic (``senders``); *inputs* are the topics the worker processes,
*reference* topics the registrations (compacted), *outputs* everything the worker writes
(the clean topics, alerts, gateway.status, deadletter). Least privilege:

==========  ================================================================================
gateway     WRITE telemetry, heartbeats, hazards (a hazard is filed by the enterprise)
regional    WRITE incidents
registrar   WRITE enterprises, sensors
worker      READ inputs + reference; WRITE outputs; READ/WRITE/CREATE its faust topics
            (prefix ``<worker_id>-``: table changelogs, ``__assignor-__leader``); READ its
            groups (``<worker_id>`` and prefix ``<worker_id>-``)
sink        READ outputs; READ its group ``sink_group``
operator    DESCRIBE every topic of the deployment and every group, DESCRIBE the cluster;
            READ outputs with groups of prefix ``operator-``; WRITE alarm.commands
            (``ebi alarms ack``)
admin       a super user of the cluster (``super.users``): no ACLs
==========  ================================================================================

Writers also get IDEMPOTENT_WRITE on the cluster (idempotent producers). Nobody but the
admin may create topics (bar the worker's own faust topics), alter configs or ACLs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from schemas.catalog import load_catalog
from schemas.catalog.model import Catalog
from streams.access.declaration import Declaration
from streams.settings import Settings

OPERATOR_GROUPS = "operator-"


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW ACL: ``principal`` may ``operation`` on a resource."""

    principal: str      # "User:<name>"
    resource: str       # "topic", "group" or "cluster"
    pattern: str        # "literal" or "prefixed"
    name: str
    operation: str      # READ, WRITE, CREATE, DESCRIBE, IDEMPOTENT_WRITE, ...

    def line(self) -> str:
        where = self.name if self.pattern == "literal" else f"{self.name}*"
        return f"{self.principal:<22} {self.operation:<16} {self.resource:<7} {where}"


def inputs(catalog: Catalog) -> list[str]:
    return [kind.input.name for kind in catalog.processed]


def reference(catalog: Catalog) -> list[str]:
    return [kind.input.name for kind in catalog.reference]


def outputs(catalog: Catalog) -> list[str]:
    return [topic.name for topic in catalog.worker_outputs()]


def writes(catalog: Catalog, role: str) -> list[str]:
    """The input topics ``role`` may write."""
    return [kind.input.name for kind in catalog.types if role in kind.senders]


def role_grants(role: str, principal: str, settings: Settings,
                catalog: Catalog | None = None) -> list[Grant]:
    """The ACLs of ``role`` for ``principal`` (a name, without ``User:``)."""
    catalog = catalog or load_catalog(settings.catalog)
    who = f"User:{principal}"

    def topics(names: Iterable[str], *ops: str) -> list[Grant]:
        return [Grant(who, "topic", "literal", settings.topic(n), op)
                for n in names for op in ops]

    writing = [*topics(writes(catalog, role), "WRITE"),
               Grant(who, "cluster", "literal", "kafka-cluster", "IDEMPOTENT_WRITE")] \
        if writes(catalog, role) else []
    if writing and role != "operator":
        return writing
    if role == "worker":
        own = f"{settings.worker_id}-"
        return [
            *topics([*inputs(catalog), *reference(catalog)], "READ"),
            *topics(outputs(catalog), "WRITE"),
            *(Grant(who, "topic", "prefixed", own, op)
              for op in ("READ", "WRITE", "CREATE", "DESCRIBE")),
            Grant(who, "group", "literal", settings.worker_id, "READ"),
            Grant(who, "group", "prefixed", own, "READ"),
            Grant(who, "cluster", "literal", "kafka-cluster", "IDEMPOTENT_WRITE"),
        ]
    if role == "sink":
        return [*topics(outputs(catalog), "READ"),
                Grant(who, "group", "literal", settings.sink_group, "READ")]
    if role == "operator":   # and writes its commands (alarm acknowledgements)
        return [
            *writing,
            Grant(who, "topic", "prefixed", settings.topic_prefix, "DESCRIBE"),
            Grant(who, "topic", "prefixed", f"{settings.worker_id}-", "DESCRIBE"),
            *topics(outputs(catalog), "READ"),
            Grant(who, "group", "literal", "*", "DESCRIBE"),
            Grant(who, "group", "prefixed", OPERATOR_GROUPS, "READ"),
            Grant(who, "cluster", "literal", "kafka-cluster", "DESCRIBE"),
        ]
    if role == "admin":
        return []
    raise ValueError(f"unknown role {role!r}")


def desired(declaration: Declaration, settings: Settings) -> set[Grant]:
    out: set[Grant] = set()
    for principal, roles in declaration.principals.items():
        for role in roles:
            out.update(role_grants(role, principal, settings))
    return out


# -- the Admin API ---------------------------------------------------------------------------

def _enums() -> tuple[Any, Any, Any, Any]:
    from confluent_kafka.admin import (
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    return AclOperation, AclPermissionType, ResourcePatternType, ResourceType


# confluent-kafka calls Kafka's CLUSTER resource type BROKER (the same code, 4)
_RESOURCE = {"topic": "TOPIC", "group": "GROUP", "cluster": "BROKER"}
_RESOURCE_NAME = {v: k for k, v in _RESOURCE.items()}


def _binding(grant: Grant) -> Any:
    from confluent_kafka.admin import AclBinding

    op, perm, pattern, rtype = _enums()
    return AclBinding(rtype[_RESOURCE[grant.resource]], grant.name,
                      pattern[grant.pattern.upper()], grant.principal, "*",
                      op[grant.operation], perm.ALLOW)


def _grant(binding: Any) -> Grant | None:
    """The Grant of an ALLOW binding from any host; None for others (left alone)."""
    if binding.permission_type.name != "ALLOW" or binding.host != "*":
        return None
    return Grant(binding.principal, _RESOURCE_NAME.get(binding.restype.name,
                                                       binding.restype.name.lower()),
                 binding.resource_pattern_type.name.lower(), binding.name,
                 binding.operation.name)


def current(admin: Any, principals: Iterable[str] | None = None,
            timeout: float = 30.0) -> set[Grant]:
    """The ALLOW ACLs on the cluster (of ``principals`` if given: names without User:)."""
    from confluent_kafka.admin import AclBindingFilter

    op, perm, pattern, rtype = _enums()
    names = [f"User:{p}" for p in principals] if principals is not None else [None]
    found: set[Grant] = set()
    for who in names:
        query = AclBindingFilter(rtype.ANY, None, pattern.ANY, who, None,  # type: ignore[arg-type]
                                 op.ANY, perm.ANY)
        for binding in admin.describe_acls(query, request_timeout=timeout).result():
            grant = _grant(binding)
            if grant is not None:
                found.add(grant)
    return found


def grant(admin: Any, grants: Iterable[Grant], timeout: float = 30.0) -> None:
    """Create ACLs (additively: nothing is removed; existing ones are left as they are)."""
    bindings = [_binding(g) for g in sorted(set(grants))]
    if bindings:
        for future in admin.create_acls(bindings, request_timeout=timeout).values():
            future.result()


@dataclass(frozen=True)
class Change:
    created: list[Grant]
    removed: list[Grant]


def apply(admin: Any, declaration: Declaration, settings: Settings,
          timeout: float = 30.0) -> Change:
    """Make the ACLs of the declared principals exactly those of their roles: create what
    is missing, delete the ALLOW ACLs of those principals that no role gives. Idempotent.
    ACLs of principals not in the declaration are not touched."""
    from confluent_kafka.admin import AclBindingFilter

    want = desired(declaration, settings)
    have = current(admin, declaration.principals, timeout)
    create = sorted(want - have)
    remove = sorted(have - want)
    if create:
        for future in admin.create_acls([_binding(g) for g in create],
                                        request_timeout=timeout).values():
            future.result()
    if remove:
        op, perm, pattern, rtype = _enums()
        filters = [AclBindingFilter(rtype[_RESOURCE[g.resource]], g.name,
                                    pattern[g.pattern.upper()], g.principal, "*",
                                    op[g.operation], perm.ALLOW) for g in remove]
        for future in admin.delete_acls(filters, request_timeout=timeout).values():
            future.result()
    return Change(create, remove)
