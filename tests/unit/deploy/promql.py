"""Reading the PromQL in deploy/: metric names and label names an expression uses, and the
series names streams/metrics.py exposes (counters get ``_total``, histograms ``_bucket``...)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
RULES_FILE = DEPLOY / "prometheus" / "rules" / "ebi.rules.yml"
DASHBOARD_FILE = DEPLOY / "grafana" / "dashboards" / "ebi.json"

# Labels Prometheus or histograms add to every series.
BUILTIN_LABELS = {"job", "instance", "le", "role"}


def exposed_series() -> dict[str, set[str]]:
    """Series name -> label names, for every metric in streams/metrics.py."""
    metrics = Metrics.create(CollectorRegistry())
    for value in vars(metrics).values():
        names = getattr(value, "_labelnames", ())
        if names and hasattr(value, "labels"):
            value.labels(*["x"] * len(names))
    series: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES_FILE.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return data


def dashboard_targets() -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) for every query of every panel."""
    return [(panel["title"], target) for panel in dashboard()["panels"]
            for target in panel.get("targets", [])]


_METRIC = re.compile(r"\bebi_[a-zA-Z0-9_]+\b")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
_SELECTOR = re.compile(r"\{([^{}]*)\}")


def metric_names(expr: str) -> set[str]:
    return set(_METRIC.findall(expr))


def label_names(expr: str) -> set[str]:
    found: set[str] = set()
    for group in _GROUPING.findall(expr):
        found.update(name.strip() for name in group.split(",") if name.strip())
    for selector in _SELECTOR.findall(expr):
        found.update(_MATCHER.findall(selector))
    return found
