"""deploy/alertmanager/alertmanager.yml: amtool (Debian package prometheus-alertmanager)
checks it and resolves the routes of real alarm labels; the file's own conventions."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.alarms.labels import alarm_labels
from streams.stack.alertmanager import CONFIG, RECEIVER_BASE, render_config
from tests.unit.deploy.promql import rules
from tests.unit.streams.alarms.factories import alarm_event


def amtool() -> str:
    found = shutil.which("amtool")
    if found is None:
        pytest.fail("amtool not found: install the Debian package 'prometheus-alertmanager' "
                    "(make system-deps)", pytrace=False)
    return found


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([amtool(), "check-config", str(path)], capture_output=True, text=True,
                          timeout=60)


def receivers_for(labels: dict[str, str], config: Path = CONFIG) -> list[str]:
    result = subprocess.run(
        [amtool(), "config", "routes", "test", f"--config.file={config}",
         *(f"{name}={value}" for name, value in labels.items())],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[0].split(",")


def config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CONFIG.read_text("utf-8"))
    return data


def test_amtool_accepts_the_config() -> None:
    result = check_config(CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_amtool_refuses_a_broken_config(tmp_path: Path) -> None:
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(CONFIG.read_text("utf-8").replace("receiver: bureau-32", "receiver: nobody"))
    result = check_config(broken)
    assert result.returncode != 0
    assert 'undefined receiver "nobody"' in result.stdout + result.stderr


def alarm(**fields: Any) -> dict[str, str]:
    return alarm_labels(alarm_event(**fields))


ALARM_ROUTES = [
    ({"region_code": "320506", "severity": "CRITICAL"}, ["oncall-pager", "bureau-32"]),
    ({"region_code": "320506", "severity": "WARNING"}, ["bureau-32"]),
    ({"region_code": "110105", "severity": "WARNING"}, ["bureau-11"]),
    ({"region_code": "420102", "severity": "INFO"}, ["bureau-42"]),
    ({"region_code": "420102", "severity": "CRITICAL", "alarm_type": "GATEWAY_OFFLINE",
      "subject_type": "gateway", "subject_id": "G-3"}, ["oncall-pager", "bureau-42"]),
    ({"region_code": "440305", "severity": "CRITICAL"}, ["oncall-pager", "bureau-national"]),
    ({"region_code": "440305", "severity": "WARNING"}, ["bureau-national"]),
    ({"region_code": "", "severity": "WARNING", "alarm_type": "REPORT_OVERDUE",
      "subject_type": "incident", "subject_id": "I-1"}, ["bureau-national"]),
    ({"region_code": "320506", "severity": "CRITICAL", "tag": "canary-7"}, ["canary"]),
]


@pytest.mark.parametrize(("fields", "expected"), ALARM_ROUTES,
                         ids=[f"{f['region_code'][:2] or 'none'}-{f['severity']}-{i}"
                              for i, (f, _) in enumerate(ALARM_ROUTES)])
def test_alarm_routes(fields: dict[str, Any], expected: list[str]) -> None:
    assert receivers_for(alarm(**fields)) == expected


def _rule_labels(rule: dict[str, Any], severity: str) -> dict[str, str]:
    return {"alertname": rule["alert"], "severity": severity,
            "category": rule["labels"]["category"], "province": "32"}


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_pipeline_alerts_still_go_to_ops(rule: dict[str, Any]) -> None:
    severities = re.findall(r"\b(critical|warning)\b", rule["labels"]["severity"])
    for severity in set(severities):
        expected = ["ops-pager"] if severity == "critical" else ["ops-tickets"]
        if rule["labels"]["category"] == "regulatory":
            expected = ["regulator", *expected]
        assert receivers_for(_rule_labels(rule, severity)) == expected


def test_every_receiver_url_is_on_the_gateway_base() -> None:
    urls = [hook["url"] for receiver in config()["receivers"]
            for hook in receiver.get("webhook_configs", [])]
    assert urls and all(url.startswith(RECEIVER_BASE + "/") for url in urls)
    names = {receiver["name"] for receiver in config()["receivers"]}
    assert {"bureau-national", "bureau-11", "bureau-32", "bureau-42", "oncall-pager",
            "canary", "ops-pager", "ops-tickets", "regulator"} <= names


def test_a_rendered_config_points_every_receiver_at_the_given_base(tmp_path: Path) -> None:
    rendered = render_config(CONFIG.read_text("utf-8"), "http://127.0.0.1:45678/hooks/")
    assert RECEIVER_BASE not in rendered
    urls = [hook["url"] for receiver in yaml.safe_load(rendered)["receivers"]
            for hook in receiver.get("webhook_configs", [])]
    assert all(url.startswith("http://127.0.0.1:45678/hooks/") for url in urls)
    assert "http://127.0.0.1:45678/hooks/alarms/bureau-32" in urls
    path = tmp_path / "alertmanager.yml"
    path.write_text(rendered)
    assert check_config(path).returncode == 0
    assert render_config("x", "") == "x"


def test_alarms_group_by_type_province_and_enterprise() -> None:
    [alarms] = [r for r in config()["route"]["routes"] if r["receiver"] == "bureau-national"]
    assert alarms["group_by"] == ["alertname", "province", "enterprise_id"]
    assert not alarms.get("continue")  # safety alarms do not reach ops' pipeline receivers


def test_inhibition_rules_for_alarms() -> None:
    inhibit = config()["inhibit_rules"]
    gateway = next(r for r in inhibit if 'alertname="GATEWAY_OFFLINE"' in r["source_matchers"])
    assert gateway["equal"] == ["gateway_id"]
    assert 'gateway_id=~".+"' in gateway["source_matchers"]  # never "all without a gateway"
    assert 'alertname!="GATEWAY_OFFLINE"' in gateway["target_matchers"]
    critical = next(r for r in inhibit if r.get("equal") == ["subject"])
    assert 'severity="critical"' in critical["source_matchers"]
    assert 'severity=~"warning|info"' in critical["target_matchers"]
    # every label an inhibition compares is one the forwarder sets
    labels = alarm(gateway_id="G-3")
    for rule in (gateway, critical):
        assert set(rule["equal"]) <= set(labels)
