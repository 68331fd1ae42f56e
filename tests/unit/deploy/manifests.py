"""Reading deploy/k8s and the compose files for the deploy tests, and finding the tools that
check them (kubeconform, docker compose, promtool): a missing tool skips a test, or fails it
when EBI_REQUIRE_SERVICES is set (CI, where `make test` installs every tool first)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.settings import load
from tests.unit.deploy.promql import DEPLOY, ROOT

K8S = DEPLOY / "k8s"
VALIDATE = K8S / "validate.sh"
SCHEMAS = K8S / "schemas"
COMPOSE_FILES = ["compose.yaml", "compose.cluster.yaml"]
# The client security settings the manifests pass and streams/settings.py on this branch does
# not have yet (deploy/k8s/README.md, "What ebi must support"; `x_file` reads secret `x` from
# a file). Every other EBI_* variable must be a field of Settings.
PLANNED_SETTINGS = {"kafka_security", "kafka_sasl_mechanism", "kafka_username",
                    "kafka_password", "kafka_password_file", "kafka_ca_file",
                    "clickhouse_user", "clickhouse_password", "clickhouse_password_file"}


def resources() -> list[str]:
    return list(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])


def documents() -> list[dict[str, Any]]:
    """Every Kubernetes object of the kustomization, in file order."""
    out = []
    for name in resources():
        out += [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]
    return out


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in documents() if doc["kind"] == kind}


def containers(deployment: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = deployment["spec"]["template"]["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def compose(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / name).read_text()))


def require_tool(found: str | None, what: str, how: str) -> str:
    if found:
        return found
    message = f"{what} is not installed ({how})"
    if load().require_services:
        pytest.fail(message)
    pytest.skip(message)


def kubeconform() -> str:
    local = ROOT / "var" / "tools" / "bin" / "kubeconform"
    found = str(local) if local.exists() else shutil.which("kubeconform")
    return require_tool(found, "kubeconform", "make k8s-tools")


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 timeout=60).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [require_tool(legacy, "docker compose", "deploy/system-deps.sh installs the Debian "
                         "package docker-compose")]


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    """deploy/k8s/validate.sh over ``paths`` (all of deploy/k8s when none)."""
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run([bash, str(VALIDATE), *map(str, paths)], capture_output=True,
                          text=True, timeout=120, env={"KUBECONFORM": kubeconform(),
                                                       "PATH": "/usr/bin:/bin"})
