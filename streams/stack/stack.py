"""``ebi stack up | down | status``: start, stop and inspect the services in order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from streams.settings import Settings
from streams.stack.process import StackError


class Service(Protocol):
    name: str

    @property
    def managed(self) -> bool: ...

    @property
    def address(self) -> str: ...

    def healthy(self) -> bool: ...

    def up(self) -> None: ...

    def down(self) -> bool: ...


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    managed: bool
    running: bool
    healthy: bool

    def line(self) -> str:
        owner = "local" if self.managed else "external"
        if self.address.startswith("chdb://"):
            return f"{self.name:<11} {'embedded':<9} {'in-process (chdb)':<19} {self.address}"
        if self.healthy:
            state = "healthy"
        elif self.running:
            state = "running, not ready"
        else:
            state = "stopped"
        return f"{self.name:<11} {owner:<9} {state:<19} {self.address}"


class Stack:
    def __init__(self, settings: Settings, services: list[Service] | None = None) -> None:
        self.settings = settings
        self.services = services if services is not None else default_services(settings)

    def up(self) -> None:
        for service in self.services:
            if service.managed:
                service.up()
            elif not service.healthy():
                raise StackError(f"{service.name}: the external service at {service.address} "
                                 "is not reachable")

    def down(self) -> list[str]:
        stopped = []
        for service in reversed(self.services):
            if service.managed and service.down():
                stopped.append(service.name)
        return stopped

    def status(self) -> list[ServiceStatus]:
        out = []
        for service in self.services:
            running = getattr(service, "proc", None)
            is_running = running.running() if running is not None else False
            out.append(ServiceStatus(service.name, service.address, service.managed,
                                     is_running, service.healthy()))
        return out

    def leftover_processes(self) -> list[str]:
        """Names of managed services whose process is still alive."""
        return [s.name for s in self.status() if s.managed and s.running]


def default_services(settings: Settings) -> list[Service]:
    from streams.stack.clickhouse import ClickHouseReplicas
    from streams.stack.kafka import Kafka
    from streams.stack.registry import Registry

    services: list[Service] = [Kafka(settings), Registry(settings)]
    if settings.clickhouse_replicas > 1 or (settings.run_dir / "zookeeper.pid").exists():
        from streams.stack.zookeeper import ZooKeeper

        services.append(ZooKeeper(settings, wanted=settings.clickhouse_replicas > 1))
    services.append(ClickHouseReplicas(settings))
    if settings.alertmanager:
        from streams.stack.alertmanager import Alertmanager

        services.append(Alertmanager(settings))
    return services
