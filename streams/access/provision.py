"""The admin's provisioning step: topics, then ACLs (``ebi stack up``, ``ebi run``,
``ebi access apply``, the integration fixtures)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streams import clients
from streams.access import kafka_acls
from streams.access.declaration import Declaration, load_declaration
from streams.access.topics import create_topics
from streams.settings import Settings


@dataclass(frozen=True)
class Provisioned:
    topics: list[str]
    change: kafka_acls.Change | None = None   # None: the cluster has no authorizer
    lines: list[str] = field(default_factory=list)

    def summary(self) -> str:
        acls = ("ACLs not applied (kafka_security = plaintext: no authorizer)"
                if self.change is None else
                f"ACLs: {len(self.change.created)} created, {len(self.change.removed)} removed")
        return f"topics: {len(self.topics)} created; {acls}"


def provision(settings: Settings, declaration: Declaration | None = None,
              file: str | Path | None = None) -> Provisioned:
    """Create the missing topics and make the declared principals' ACLs those of their
    roles. Runs with the settings' own Kafka login, which must be the admin's."""
    declaration = declaration or load_declaration(file)
    topics = create_topics(settings)
    if settings.kafka_security == "plaintext":
        return Provisioned(topics)
    change = kafka_acls.apply(clients.admin(settings), declaration, settings)
    lines = [f"+ {g.line()}" for g in change.created] + [f"- {g.line()}" for g in
                                                         change.removed]
    return Provisioned(topics, change, lines)
