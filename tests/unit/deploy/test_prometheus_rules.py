"""The alert rules: promtool checks and unit tests (deploy/prometheus/test-rules.sh) under
pytest, the shape of every rule, the scrape config, and the compose file."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.httpserver import ROLE_PORT_OFFSET
from tests.unit.deploy.promql import DEPLOY, ROOT, rules

SCRIPT = DEPLOY / "prometheus" / "test-rules.sh"
TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.test.yml"))
SEVERITIES = {"critical", "warning"}
CATEGORIES = {"pipeline", "data_quality", "regulatory"}


def _run(script: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run([bash, str(script)], capture_output=True, text=True, timeout=300,
                          env=env, cwd=script.parent)


def test_promtool_checks_and_rule_tests_pass() -> None:
    result = _run(SCRIPT)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines[-1] == f"{len(TESTS)} passed, 0 failed"


def test_a_broken_rule_fails_the_script(tmp_path: Path) -> None:
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY / "prometheus", copy / "prometheus")
    shutil.copytree(DEPLOY / "alertmanager", copy / "alertmanager")
    rules_file = copy / "prometheus" / "rules" / "ebi.rules.yml"
    rules_file.write_text(rules_file.read_text().replace("ebi_reports_overdue > 0",
                                                         "ebi_reports_overdue > 5"))
    result = _run(copy / "prometheus" / "test-rules.sh")
    assert result.returncode != 0
    assert result.stdout.strip().splitlines()[-1] == f"{len(TESTS) - 1} passed, 1 failed"
    assert "FAIL  promtool test rules deploy/prometheus/tests/reports_overdue" in result.stdout


def test_script_without_promtool_names_the_debian_package() -> None:
    result = _run(SCRIPT, env={"PATH": "/nonexistent"})
    assert result.returncode != 0
    assert "Debian package 'prometheus'" in result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0 passed, 1 failed"


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_rule_has_labels_annotations_and_a_runbook_section(rule: dict[str, Any]) -> None:
    labels, notes = rule["labels"], rule["annotations"]
    assert labels["category"] in CATEGORIES
    assert labels["severity"] in SEVERITIES or set(
        re.findall(r"\}\}(\w+)\{\{", labels["severity"])) <= SEVERITIES
    assert notes["summary"] and notes["description"]
    assert "$labels" in notes["description"] or "$value" in notes["description"]
    path, _, anchor = notes["runbook"].partition("#")
    assert path == "docs/runbook.md" and anchor == rule["alert"].lower()
    headings = {line[3:].strip().lower() for line in
                (ROOT / path).read_text().splitlines() if line.startswith("## ")}
    assert anchor in headings


def test_every_rule_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for test_file in TESTS:
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in rules()}
    assert names - firing == set(), "rules never tested firing"
    assert names - quiet == set(), "rules never tested not firing"


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_scrape_config_matches_the_status_server_ports(config: str) -> None:
    data = yaml.safe_load((DEPLOY / "prometheus" / config).read_text())
    assert data["rule_files"] == ["rules/*.rules.yml"]
    targets = {job["job_name"]: job["static_configs"][0]["targets"][0]
               for job in data["scrape_configs"]}
    worker_port = int(targets["ebi-worker"].rsplit(":", 1)[1])
    sink_port = int(targets["ebi-sink"].rsplit(":", 1)[1])
    assert sink_port - worker_port == ROLE_PORT_OFFSET["sink"] - ROLE_PORT_OFFSET["worker"]
    if config == "prometheus.yml":
        assert targets["ebi-worker"].startswith("127.0.0.1:")


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 timeout=60).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_file_validates() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("docker compose is not installed (a Docker client with the compose plugin)")
    result = subprocess.run([*command, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
