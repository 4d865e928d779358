"""The chart's cell-affine router (``router.enabled``): HAProxy in front of the xApp pods,
which then run as a StatefulSet whose stable pod names are the router's servers. Checks
the objects, the HAProxy configuration (valid for ``haproxy -c``, and the same defaults
and backends as the ``deploy/haproxy/haproxy.cfg`` the proxy tests run), that an HPA
needs the router, and the router pod's hardening.

Needs Debian's ``haproxy`` (``make system-deps``) for ``haproxy -c``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from deploy_support import CHART, by_kind, one, render, strip_source

from ran_distill.haproxy_process import Backend, check_config, render_config

ROUTER = {"router": {"enabled": True}}
ROUTER_HPA = {
    "router": {"enabled": True},
    "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 4},
    "podDisruptionBudget": {"enabled": True},
    "networkPolicy": {
        "enabled": True,
        "allowSameNamespace": False,
        "grpcFrom": [{"namespaceSelector": {"matchLabels": {"ran": "gnb"}}}],
        "httpFrom": [{"namespaceSelector": {"matchLabels": {"ran": "monitoring"}}}],
    },
}


@pytest.fixture(scope="module")
def hpa_render() -> dict[str, Any]:
    return render(ROUTER_HPA)


def _named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in by_kind(docs, kind) if d["metadata"]["name"] == name]
    return doc


def _haproxy_cfg(r: dict[str, Any]) -> str:
    (cm,) = [d for d in by_kind(r["docs"], "ConfigMap") if "haproxy.cfg" in d["data"]]
    return str(cm["data"]["haproxy.cfg"])


def _sections(text: str) -> dict[str, list[str]]:
    """HAProxy config → {section header: its directive lines}, comments dropped."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            current = line.strip()
            out[current] = []
        else:
            out[current].append(" ".join(line.split()))
    return out


def test_router_objects_and_the_statefulset(hpa_render: dict[str, Any]) -> None:
    docs = hpa_render["docs"]
    xapp = _named(docs, "StatefulSet", "ran-distill")
    assert not by_kind(docs, "Deployment") or all(
        d["metadata"]["name"] == "ran-distill-router" for d in by_kind(docs, "Deployment")
    )
    assert xapp["spec"]["serviceName"] == "ran-distill-pods"
    assert xapp["spec"]["podManagementPolicy"] == "Parallel"
    assert "replicas" not in xapp["spec"]  # the HPA owns the replica count
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "ran-distill",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    headless = _named(docs, "Service", "ran-distill-pods")
    assert headless["spec"]["clusterIP"] == "None"
    xapp_selector = xapp["spec"]["selector"]["matchLabels"]
    assert headless["spec"]["selector"] == xapp_selector
    router = _named(docs, "Deployment", "ran-distill-router")
    router_labels = router["spec"]["template"]["metadata"]["labels"]
    # the xApp's Services and PDB never select router pods, and the other way round
    assert not xapp_selector.items() <= router_labels.items()
    router_svc = _named(docs, "Service", "ran-distill-router")
    assert router_svc["spec"]["selector"] == router["spec"]["selector"]["matchLabels"]
    assert (
        not router_svc["spec"]["selector"].items()
        <= xapp["spec"]["template"]["metadata"]["labels"].items()
    )
    assert one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == xapp_selector
    ports = {p["name"]: p for p in router_svc["spec"]["ports"]}
    assert ports["grpc"]["appProtocol"] == "kubernetes.io/h2c"
    assert (ports["grpc"]["port"], ports["http"]["port"]) == (50051, 8080)
    assert "x-ran-cell-id" in router_svc["metadata"]["annotations"]["ran-distill.io/cell-affinity"]
    # the config change rolls the router
    checksum = router["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert re.fullmatch(r"[0-9a-f]{64}", checksum)


def test_services_document_cell_affinity() -> None:
    plain = _named(render({})["docs"], "Service", "ran-distill")
    assert "enable router" in plain["metadata"]["annotations"]["ran-distill.io/cell-affinity"]
    routed = _named(render(ROUTER)["docs"], "Service", "ran-distill")
    assert "ran-distill-router" in routed["metadata"]["annotations"]["ran-distill.io/cell-affinity"]


def test_rendered_haproxy_config_is_valid(hpa_render: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(_haproxy_cfg(hpa_render))
    check_config(path)  # haproxy -c


def test_chart_config_matches_the_tested_template(hpa_render: dict[str, Any]) -> None:
    """Same defaults, hashing, health checks, retries and frontends as
    deploy/haproxy/haproxy.cfg as ran_distill.haproxy_process renders it (what
    tests/service/test_service_proxy.py runs); servers differ only in how they are found
    (the pods' DNS names through the k8s resolvers)."""
    chart = _sections(_haproxy_cfg(hpa_render))
    local = _sections(
        render_config([Backend("xapp1", "127.0.0.1", 1, 2)], grpc_port=3, http_port=4, stats_port=5)
    )
    assert set(chart) == set(local) | {"resolvers k8s"}
    assert [ln.split()[0] for ln in chart["global"]] == [ln.split()[0] for ln in local["global"]]
    for name in ("defaults", "backend xapp_grpc", "backend xapp_grpc_stream", "backend xapp_http"):
        want = [ln for ln in local[name] if not ln.startswith("server ")]
        assert [ln for ln in chart[name] if not ln.startswith("server ")] == want, name
    for name in ("frontend grpc", "frontend http", "frontend stats"):
        want = [ln for ln in local[name] if not ln.startswith("bind ")]
        assert [ln for ln in chart[name] if not ln.startswith("bind ")] == want, name
    for be in ("backend xapp_grpc", "backend xapp_grpc_stream", "backend xapp_http"):
        (local_server,) = [ln.split() for ln in local[be] if ln.startswith("server ")]
        chart_servers = [ln.split() for ln in chart[be] if ln.startswith("server ")]
        assert len(chart_servers) == 4  # autoscaling.maxReplicas slots
        for i, tokens in enumerate(chart_servers, start=1):
            assert tokens[1] == f"xapp{i}"
            assert tokens[2].startswith(f"ran-distill-{i - 1}.ran-distill-pods.ricxapp.svc.")
            want = " ".join(local_server[3:]).replace("xapp1", f"xapp{i}")
            want = want.replace("id 1 ", f"id {i} ").replace("port 2 ", "port 8080 ")
            assert " ".join(tokens[3:]) == want + " resolvers k8s init-addr none"


@pytest.mark.parametrize(
    ("values", "slots"),
    [
        ({"router": {"enabled": True}}, 1),
        ({"router": {"enabled": True}, "replicaCount": 3}, 3),
        ({"router": {"enabled": True, "maxServers": 8}, "replicaCount": 3}, 8),
        (ROUTER_HPA, 4),
    ],
)
def test_server_slots(values: dict[str, Any], slots: int) -> None:
    cfg = _sections(_haproxy_cfg(render(values)))
    assert sum(1 for ln in cfg["backend xapp_grpc"] if ln.startswith("server ")) == slots
    assert sum(1 for ln in cfg["backend xapp_grpc_stream"] if ln.startswith("server ")) == slots
    assert sum(1 for ln in cfg["backend xapp_http"] if ln.startswith("server ")) == slots


@pytest.mark.parametrize(
    "values",
    [
        {"autoscaling": {"enabled": True}},
        {"autoscaling": {"enabled": True}, "router": {"enabled": False}},
    ],
)
def test_hpa_needs_the_router(values: dict[str, Any]) -> None:
    import helm_python

    with (
        helm_python.Chart.load(CHART) as chart,
        pytest.raises(helm_python.HelmValuesError, match="/router/enabled"),
    ):
        chart.render(values=values, name="ran-distill", namespace="ricxapp")


def test_hpa_template_refuses_without_router_even_unvalidated() -> None:
    """A second guard in the template itself, for installs that skip the schema."""
    text = (CHART / "templates" / "hpa.yaml").read_text()
    assert 'fail "autoscaling.enabled needs router.enabled' in text


def test_router_pod_is_hardened(hpa_render: dict[str, Any]) -> None:
    spec = _named(hpa_render["docs"], "Deployment", "ran-distill-router")["spec"]["template"][
        "spec"
    ]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    (c,) = spec["containers"]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert c["resources"]["limits"]["memory"]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/usr/local/etc/haproxy"]["readOnly"] is True
    assert [p for p, m in mounts.items() if not m.get("readOnly")] == ["/tmp"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "stats"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "stats"}
    assert c["args"] == ["-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
    assert c["image"] == "docker.io/haproxy:2.6"


def test_network_policy_admits_the_router(hpa_render: dict[str, Any]) -> None:
    router_sel = _named(hpa_render["docs"], "Deployment", "ran-distill-router")["spec"]["selector"][
        "matchLabels"
    ]
    grpc_rule, http_rule = one(hpa_render["docs"], "NetworkPolicy")["spec"]["ingress"]
    router_peer = {"podSelector": {"matchLabels": router_sel}}
    assert grpc_rule["from"] == [
        router_peer,
        {"namespaceSelector": {"matchLabels": {"ran": "gnb"}}},
    ]
    assert http_rule["from"][:2] == [
        router_peer,
        {"namespaceSelector": {"matchLabels": {"ran": "monitoring"}}},
    ]  # then networkPolicy.metricsFrom (Prometheus)


def test_router_refuses_tls() -> None:
    """The router forwards plaintext to the xApp pods: not with TLS on them (schema, and
    the template itself for installs that skip the schema)."""
    import helm_python

    values = {**ROUTER, "tls": {"enabled": True, "existingSecret": "xapp-tls"}}
    with (
        helm_python.Chart.load(CHART) as chart,
        pytest.raises(helm_python.HelmValuesError, match="/tls/enabled"),
    ):
        chart.render(values=values, name="ran-distill", namespace="ricxapp")
    text = (CHART / "templates" / "router-deployment.yaml").read_text()
    assert 'fail "router.enabled needs tls.enabled=false' in text


def test_notes_point_the_gnb_at_the_router(hpa_render: dict[str, Any]) -> None:
    notes = hpa_render["notes"]
    assert "ran-distill-router.ricxapp.svc.cluster.local:50051" in notes
    assert "rollout status statefulset/ran-distill" in notes
    plain = render({"replicaCount": 3})["notes"]
    assert "without the" in plain and "router.enabled" in plain


def test_kubernetes_validate_cli_strict_router(hpa_render: dict[str, Any], tmp_path: Path) -> None:
    import yaml

    docs = [strip_source(d) for d in hpa_render["docs"]]
    path = tmp_path / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    cli = Path(sys.executable).with_name("kubernetes-validate")
    proc = subprocess.run(
        [str(cli), "--strict", "-k", "1.27.0", "-k", "1.37.0", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("passed") == 2 * len(docs)
