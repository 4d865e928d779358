"""The Grafana dashboard (dashboards/ran-distill.json): loadable as is, has the panels the
deployment promises, and every PromQL expression uses metrics (and labels) that the
service really exports (service/metrics.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from deploy_support import DASHBOARD

METRIC_RE = re.compile(r"\bran_distill_[a-zA-Z0-9_]+")
SELECTOR_RE = re.compile(r"\b(ran_distill_[a-zA-Z0-9_]+)\{([^}]*)\}")
MATCHER_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
# labels Prometheus attaches at scrape time (ServiceMonitor / pod annotations)
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "container", "endpoint"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(d: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in d["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def exprs(d: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(d) for t in p.get("targets", [])]


def by_title(d: dict[str, Any], fragment: str) -> dict[str, Any]:
    found = [p for p in panels(d) if fragment.lower() in p["title"].lower() and p["type"] != "row"]
    assert found, f"no panel titled like {fragment!r}"
    return found[0]


@pytest.fixture(scope="module")
def exported() -> dict[str, dict[str, Any]]:
    """Every sample name the service's registry exposes -> {"type", "labels" (None: unknown)}."""
    from prometheus_client.metrics import MetricWrapperBase

    from service.metrics import ServiceMetrics

    metrics = ServiceMetrics()
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
        "info": ("_info",),
        "summary": ("", "_count", "_sum", "_created"),
        "unknown": ("",),
    }
    labels_by_family: dict[str, set[str]] = {}

    def walk(obj: Any) -> None:
        if isinstance(obj, MetricWrapperBase):
            labels_by_family[obj._name] = set(obj._labelnames)  # noqa: SLF001
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list | tuple):
            for v in obj:
                walk(v)

    walk(vars(metrics))
    names: dict[str, dict[str, Any]] = {}
    for family in metrics.registry.collect():
        labels = labels_by_family.get(family.name)
        for sample in family.samples:
            labels = (labels or set()) | set(sample.labels)
        if labels is not None and family.type == "histogram":
            labels = labels | {"le"}
        for suffix in suffixes[family.type]:
            names[family.name + suffix] = {"type": family.type, "labels": labels}
    assert names
    return names


def test_loads_as_a_grafana_dashboard(dashboard: dict) -> None:
    assert dashboard["title"] and dashboard["uid"] == "ran-distill-xapp"
    assert dashboard["id"] is None  # importable into any Grafana
    assert dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for p in panels(dashboard):
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert p["targets"] and len(refs) == len(set(refs)), p["title"]
        assert p.get("description"), p["title"]


def test_has_the_promised_panels(dashboard: dict) -> None:
    tput = by_title(dashboard, "throughput per cell vs reference")
    assert any("ran_distill_cell_throughput_deviation_ratio" in t["expr"] for t in tput["targets"])
    bler = by_title(dashboard, "BLER per cell vs reference")
    assert any(
        "ran_distill_cell_first_tx_bler_deviation_ratio" in t["expr"] for t in bler["targets"]
    )
    for title in ("Throughput deviation", "BLER deviation"):
        assert by_title(dashboard, title)["fieldConfig"]["defaults"]["unit"] == "percentunit"
    latency = by_title(dashboard, "Latency percentiles per stage")
    for t in latency["targets"]:
        assert t["expr"].startswith("histogram_quantile(")
        assert "ran_distill_stage_latency_seconds_bucket" in t["expr"]
        assert "by (le, stage)" in t["expr"]
    assert {t["legendFormat"].split()[0] for t in latency["targets"]} == {"p50", "p99", "p99.9"}
    fallback = by_title(dashboard, "Fallback share")
    assert 'source="fallback"' in fallback["targets"][0]["expr"]
    assert by_title(dashboard, "Decisions by source")["targets"][0]["expr"].startswith(
        "sum by (source)"
    )
    reloads = by_title(dashboard, "reloads")
    assert "ran_distill_model_reloads_total" in reloads["targets"][0]["expr"]
    assert "by (result)" in reloads["targets"][0]["expr"]


def test_promql_is_balanced(dashboard: dict) -> None:
    for e in exprs(dashboard):
        for o, c in ("()", "{}", "[]"):
            depth = 0
            for ch in e:
                depth += (ch == o) - (ch == c)
                assert depth >= 0, e
            assert depth == 0, e
        assert e.count('"') % 2 == 0, e


def test_every_metric_exists_in_service_metrics(dashboard: dict, exported: dict) -> None:
    used = {m for e in exprs(dashboard) for m in METRIC_RE.findall(e)}
    assert used
    missing = sorted(used - set(exported))
    assert not missing, f"not exported by service/metrics.py: {missing}"


def test_label_matchers_exist_on_their_metrics(dashboard: dict, exported: dict) -> None:
    from service.metrics import STAGES

    known_values = {"stage": set(STAGES), "source": {"model", "fallback"}}
    for e in exprs(dashboard):
        for metric, body in SELECTOR_RE.findall(e):
            labels = exported[metric]["labels"]
            for label, op, value in MATCHER_RE.findall(body):
                if label in TARGET_LABELS:
                    continue
                assert labels is None or label in labels, f"{metric} has no label {label!r}"
                if op == "=" and label in known_values:
                    assert value in known_values[label], (metric, label, value)
    # grouping labels of the latency panel are real labels of the histogram
    assert exported["ran_distill_stage_latency_seconds_bucket"]["labels"] >= {"le", "stage"}


def promtool() -> str:
    import shutil

    found = shutil.which("promtool")
    assert found, "promtool not installed (make system-deps installs Debian's prometheus)"
    return found


def test_promql_parses_with_promtool(dashboard: dict, tmp_path) -> None:
    """Every expression, with Grafana's variables substituted, is valid PromQL for
    Prometheus' own parser (as recording rules checked by `promtool check rules`)."""
    import subprocess

    import yaml

    substitutions = {
        "$__rate_interval": "1m",
        "$__range": "1h",
        "$job": ".*",
        "$namespace": ".*",
        "$cell": ".*",
    }
    rules = []
    for i, e in enumerate(exprs(dashboard)):
        for var, value in substitutions.items():
            e = e.replace(var, value)
        assert "$" not in e, f"unknown Grafana variable in {e}"
        rules.append({"record": f"dashboard:expr_{i}", "expr": e})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(rules)} rules found" in proc.stdout


def test_service_exposition_passes_promtool_lint() -> None:
    """The metrics the dashboard reads follow Prometheus' naming conventions."""
    import subprocess

    import numpy as np

    from service.metrics import ServiceMetrics

    metrics = ServiceMetrics()
    metrics.cell_mcs.add(1, np.array([0, 5, 27]))
    metrics.decisions_model.inc(3)
    proc = subprocess.run(
        [promtool(), "check", "metrics"],
        input=metrics.exposition(),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode()
