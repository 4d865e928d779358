"""The Helm chart: rendered offline with helm-python-sdk for several value combinations,
linted, every object validated strictly against the Kubernetes schemas, and the security
settings, probes, ports, descriptor mount, thread settings and optional objects checked."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from deploy_support import (
    CHART,
    CHART_DASHBOARD,
    DASHBOARD,
    DESCRIPTOR,
    DESCRIPTOR_SCHEMA,
    by_kind,
    one,
    render,
    strip_source,
    validate_manifest,
)

NS_LABEL = "kubernetes.io/metadata.name"
# controls the chart sets to production values, away from the service's development
# defaults (which the descriptor and the schemas keep)
CHART_HARDENED = {
    "http_docs_enabled": False,
    "grpc_reflection_enabled": False,
    "require_model": True,
}
FULL = {
    "replicaCount": 2,
    "resources": {
        "requests": {"cpu": "1", "memory": "256Mi"},
        "limits": {"cpu": "1500m", "memory": "512Mi"},
    },
    "probes": {"type": "http"},
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "dashboard": {"enabled": True},
    "podDisruptionBudget": {"enabled": True},
    "networkPolicy": {
        "enabled": True,
        "restrictEgress": True,
        "grpcFrom": [{"namespaceSelector": {"matchLabels": {NS_LABEL: "ricplt"}}}],
        "httpFrom": [{"namespaceSelector": {"matchLabels": {NS_LABEL: "monitoring"}}}],
    },
    "adminToken": {"existingSecret": "ran-distill-token", "existingSecretKey": "token"},
    "controls": {"max_batch_ues": 1024, "log_level": "DEBUG"},
    "image": {"digest": "sha256:" + "ab" * 32},
}

CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "full": FULL,
    "model-configmap": {"model": {"source": "configMap", "configMap": {"name": "student-v2"}}},
    "model-volume": {
        "model": {
            "source": "volume",
            "volume": {
                "spec": {"persistentVolumeClaim": {"claimName": "models", "readOnly": True}},
                "subPath": "students/4x32",
            },
        }
    },
    "model-init": {
        "model": {
            "source": "initContainer",
            "initContainer": {"image": "registry.local/ran-distill-models:2026.11"},
        }
    },
    "cpu-2.5-cores": {"resources": {"limits": {"cpu": 2.5, "memory": "1Gi"}}},
    "no-limits": {"resources": {"requests": {"cpu": "250m"}}, "tests": {"enabled": False}},
    "threads-explicit": {"onnxruntime": {"intraOpThreads": 4, "interOpThreads": 2}},
    # the cell-affine router (tests/deploy/test_deploy_router.py): the xApp as a StatefulSet
    "router": {"router": {"enabled": True}, "replicaCount": 3},
    "router-hpa": {
        "router": {"enabled": True},
        "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 4},
        "podDisruptionBudget": {"enabled": True},
        "networkPolicy": {
            "enabled": True,
            "allowSameNamespace": False,
            "grpcFrom": [{"namespaceSelector": {"matchLabels": {NS_LABEL: "ricplt"}}}],
        },
    },
    "mtls-authz": {
        "tls": {"enabled": True, "existingSecret": "xapp-tls"},
        "authorization": {
            "enabled": True,
            "identities": {"gnb-a.ran.example": [1, "2-5"], "spiffe://ran.example/gnb-b": [9]},
        },
        "metrics": {
            "serviceMonitor": {
                "enabled": True,
                "tlsConfig": {"ca": {"secret": {"name": "xapp-tls", "key": "ca.crt"}}},
            }
        },
    },
    "tls-only": {
        "tls": {"enabled": True, "existingSecret": "xapp-tls", "requireClientCert": False}
    },
    "network-closed": {
        "networkPolicy": {"allowSameNamespace": False, "metricsFrom": [], "restrictEgress": False}
    },
    "renamed": {
        "fullnameOverride": "la-xapp",
        "namespaceOverride": "ricxapp-test",
        "service": {"grpcPort": 6000, "httpPort": 9000},
        "containerPorts": {"grpc": 6001, "http": 9001},
    },
}


@pytest.fixture(scope="module")
def renders() -> dict[str, dict[str, Any]]:
    return {case: render(values) for case, values in CASES.items()}


def deployment(r: dict[str, Any]) -> dict[str, Any]:
    """The xApp's workload: a Deployment, or a StatefulSet behind the router."""
    (workload,) = [
        d
        for d in r["docs"]
        if d["kind"] in ("Deployment", "StatefulSet")
        and d["metadata"]["labels"]["app.kubernetes.io/component"] == "xapp"
    ]
    return workload


def container(r: dict[str, Any]) -> dict[str, Any]:
    (c,) = deployment(r)["spec"]["template"]["spec"]["containers"]
    return c


def env(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def descriptor_of(r: dict[str, Any]) -> dict[str, Any]:
    cms = [d for d in by_kind(r["docs"], "ConfigMap") if "config-file.json" in d["data"]]
    (cm,) = cms
    return json.loads(cm["data"]["config-file.json"])


# ----------------------------------------------------------------------------- lint + schema


@pytest.mark.parametrize("case", sorted(CASES))
def test_lint_strict(case: str) -> None:
    import helm_python

    report = helm_python.lint(CHART, CASES[case], strict=True, namespace="ricxapp")
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == [], problems


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_manifest_validates_strictly(renders: dict, case: str) -> None:
    docs = renders[case]["docs"]
    assert docs
    for doc in docs:
        validate_manifest(doc)


def test_kubernetes_validate_cli_strict(renders: dict, tmp_path: Path) -> None:
    """The kubernetes-validate CLI with --strict on the full render (all optional objects
    but the ServiceMonitor CRD, which it has no schema for and is checked separately)."""
    import yaml

    docs = [strip_source(d) for d in renders["full"]["docs"] if d["kind"] != "ServiceMonitor"]
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
    assert "WARN" not in proc.stdout and "ERROR" not in proc.stdout, proc.stdout
    assert proc.stdout.count("passed") == 2 * len(docs)


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"securityContext": {"readOnlyRootFilesystem": False}}, "/securityContext"),
        ({"securityContext": {"allowPrivilegeEscalation": True}}, "/securityContext"),
        ({"podSecurityContext": {"runAsNonRoot": False}}, "/podSecurityContext"),
        ({"podSecurityContext": {"runAsUser": 0}}, "/podSecurityContext"),
        ({"model": {"source": "s3"}}, "/model"),
        ({"model": {"source": "configMap"}}, "/model"),
        ({"model": {"source": "volume"}}, "/model"),
        ({"controls": {"grpc_port": 1}}, "/controls"),  # chart-managed: containerPorts.grpc
        ({"controls": {"admin_token": "x"}}, "/controls"),  # only ever from a Secret
        ({"controls": {"max_batch_uess": 1}}, "/controls"),
        ({"controls": {"tls_cert_file": "/x"}}, "/controls"),  # chart-managed: tls.*
        ({"tls": {"enabled": True}}, "/tls"),  # no Secret named
        ({"authorization": {"enabled": True, "identities": {"a": [1]}}}, "tls"),  # no mTLS
        (
            {
                "tls": {"enabled": True, "existingSecret": "s", "requireClientCert": False},
                "authorization": {"enabled": True, "identities": {"a": [1]}},
            },
            "requireClientCert",
        ),
        ({"authorization": {"identities": {"a": ["one"]}}}, "/authorization"),
        ({"probes": {"type": "exec"}}, "/probes"),
        ({"resources": {"limits": {"cpu": "lots"}}}, "/resources"),
        ({"unknownTopLevel": True}, "unknownTopLevel"),
    ],
)
def test_values_schema_rejects(bad: dict, where: str) -> None:
    import helm_python

    with (
        helm_python.Chart.load(CHART) as chart,
        pytest.raises(helm_python.HelmValuesError, match=where),
    ):
        chart.render(values=bad, name="ran-distill", namespace="ricxapp")


def test_values_defaults_pass_the_schema() -> None:
    import helm_python

    with helm_python.Chart.load(CHART) as chart:
        chart.validate_schema(chart.values)
        assert chart.metadata["name"] == "ran-distill"
        assert chart.values["model"]["source"] == "baked"


# ----------------------------------------------------------------------------- workload


@pytest.mark.parametrize("case", sorted(CASES))
def test_hardened_security_context(renders: dict, case: str) -> None:
    spec = deployment(renders[case])["spec"]["template"]["spec"]
    pod_sc = spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert isinstance(pod_sc["runAsUser"], int) and pod_sc["runAsUser"] > 0
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for c in spec["containers"] + spec.get("initContainers", []):
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True
        assert isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert "add" not in sc["capabilities"]
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert c["resources"]["limits"]["memory"] or case == "no-limits"
    # /tmp is the only writable path: an emptyDir
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    vols = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in vols[mounts["/tmp"]["name"]]
    writable = [m for m in mounts.values() if not m.get("readOnly")]
    assert [m["mountPath"] for m in writable] == ["/tmp"]


def test_ports_service_and_probes_grpc(renders: dict) -> None:
    r = renders["defaults"]
    c = container(r)
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"grpc": 50051, "http": 8080}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["grpc"] == {"port": 50051}, probe
        assert "httpGet" not in c[probe]
    svc = one(r["docs"], "Service")
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert ports["grpc"]["port"] == 50051 and ports["grpc"]["targetPort"] == "grpc"
    assert ports["grpc"]["appProtocol"] == "grpc"
    assert ports["http"]["port"] == 8080 and ports["http"]["targetPort"] == "http"
    assert svc["spec"]["selector"] == deployment(r)["spec"]["selector"]["matchLabels"]
    assert c["args"] == [
        "--model",
        "/opt/ran-distill/models/default",
        "--grpc-port",
        "50051",
        "--http-port",
        "8080",
    ]
    annotations = deployment(r)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "8080"
    assert annotations["prometheus.io/path"] == "/ric/v1/metrics"


def test_http_probe_fallback(renders: dict) -> None:
    c = container(renders["full"])
    assert c["livenessProbe"]["httpGet"] == {"path": "/ric/v1/health/alive", "port": "http"}
    assert c["startupProbe"]["httpGet"] == {"path": "/ric/v1/health/alive", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ric/v1/health/ready", "port": "http"}
    assert "grpc" not in c["readinessProbe"]


def test_renamed_ports_follow_everywhere(renders: dict) -> None:
    r = renders["renamed"]
    dep = deployment(r)
    assert dep["metadata"]["name"] == "la-xapp"
    assert {d["metadata"]["namespace"] for d in r["docs"]} == {"ricxapp-test"}
    c = container(r)
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"grpc": 6001, "http": 9001}
    assert c["livenessProbe"]["grpc"] == {"port": 6001}
    assert c["args"][c["args"].index("--grpc-port") + 1] == "6001"
    svc = {p["name"]: p["port"] for p in one(r["docs"], "Service")["spec"]["ports"]}
    assert svc == {"grpc": 6000, "http": 9000}
    d = descriptor_of(r)
    assert (d["controls"]["grpc_port"], d["controls"]["http_port"]) == (6001, 9001)
    test_pod = one(r["docs"], "Pod")
    assert "la-xapp.ricxapp-test.svc:6000" in test_pod["spec"]["containers"][0]["command"][2]


# ----------------------------------------------------------------------------- descriptor


def test_descriptor_configmap_is_mounted_and_named_by_config_file(renders: dict) -> None:
    for case, r in renders.items():
        spec = deployment(r)["spec"]["template"]["spec"]
        c = spec["containers"][0]
        assert env(c)["CONFIG_FILE"] == "/opt/ric/config/config-file.json", case
        (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/opt/ric/config"]
        assert mount["readOnly"] is True
        vol = next(v for v in spec["volumes"] if v["name"] == mount["name"])
        cm_name = vol["configMap"]["name"]
        cm = next(d for d in by_kind(r["docs"], "ConfigMap") if d["metadata"]["name"] == cm_name)
        assert "config-file.json" in cm["data"]
        annotations = deployment(r)["spec"]["template"]["metadata"]["annotations"]
        assert len(annotations["checksum/config"]) == 64  # rolls the pods on config change


def test_default_rendered_descriptor_is_the_repo_descriptor(renders: dict) -> None:
    expected = json.loads(DESCRIPTOR.read_text())
    expected["controls"].update(CHART_HARDENED)
    assert descriptor_of(renders["defaults"]) == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_descriptor_matches_the_pod(renders: dict, case: str) -> None:
    r = renders[case]
    d = descriptor_of(r)
    jsonschema.validate(d["controls"], json.loads(DESCRIPTOR_SCHEMA.read_text()))
    c = container(r)
    e = env(c)
    controls = d["controls"]
    assert controls["model_dir"] == e["RAN_DISTILL_MODEL_DIR"]
    assert c["args"][c["args"].index("--model") + 1] == controls["model_dir"]
    assert str(controls["ort_intra_op_threads"]) == e["RAN_DISTILL_ORT_INTRA_OP_THREADS"]
    assert str(controls["ort_inter_op_threads"]) == e["RAN_DISTILL_ORT_INTER_OP_THREADS"]
    assert d["containers"][0]["args"] == c["args"]
    assert "admin_token" not in controls


def test_controls_values_reach_the_descriptor(renders: dict) -> None:
    controls = descriptor_of(renders["full"])["controls"]
    assert controls["max_batch_ues"] == 1024
    assert controls["log_level"] == "DEBUG"
    assert controls["microbatch_max_ues"] == 8192  # untouched default


# ----------------------------------------------------------------------------- threads


@pytest.mark.parametrize(
    ("case", "intra", "inter"),
    [
        ("defaults", 1, 1),  # limits.cpu "1"
        ("full", 2, 1),  # "1500m" -> ceil 1.5
        ("cpu-2.5-cores", 3, 1),  # 2.5
        ("no-limits", 1, 1),
        ("threads-explicit", 4, 2),  # explicit override wins
    ],
)
def test_onnxruntime_threads_follow_the_cpu_limit(
    renders: dict, case: str, intra: int, inter: int
) -> None:
    e = env(container(renders[case]))
    assert e["RAN_DISTILL_ORT_INTRA_OP_THREADS"] == str(intra)
    assert e["RAN_DISTILL_ORT_INTER_OP_THREADS"] == str(inter)
    assert descriptor_of(renders[case])["controls"]["ort_intra_op_threads"] == intra


@pytest.mark.parametrize(
    ("cpu", "threads"), [("100m", 1), ("1000m", 1), ("1001m", 2), ("3", 3), (4, 4), ("0.5", 1)]
)
def test_thread_derivation_table(cpu: Any, threads: int) -> None:
    r = render({"resources": {"limits": {"cpu": cpu, "memory": "512Mi"}}})
    assert env(container(r))["RAN_DISTILL_ORT_INTRA_OP_THREADS"] == str(threads)


# ----------------------------------------------------------------------------- model sources


def test_model_baked(renders: dict) -> None:
    spec = deployment(renders["defaults"])["spec"]["template"]["spec"]
    assert "initContainers" not in spec
    assert {v["name"] for v in spec["volumes"]} == {"config", "tmp"}
    assert env(spec["containers"][0])["RAN_DISTILL_MODEL_DIR"] == "/opt/ran-distill/models/default"


def _model_volume(r: dict) -> tuple[dict, dict, dict]:
    spec = deployment(r)["spec"]["template"]["spec"]
    c = spec["containers"][0]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "model"]
    (vol,) = [v for v in spec["volumes"] if v["name"] == "model"]
    assert mount["mountPath"] == "/opt/ran-distill/models/mounted"
    assert mount["readOnly"] is True
    assert env(c)["RAN_DISTILL_MODEL_DIR"] == mount["mountPath"]
    return spec, mount, vol


def test_model_configmap(renders: dict) -> None:
    _, mount, vol = _model_volume(renders["model-configmap"])
    assert vol["configMap"] == {"name": "student-v2"}
    assert "subPath" not in mount  # subPath mounts would not see ConfigMap updates (hot reload)


def test_model_volume(renders: dict) -> None:
    _, mount, vol = _model_volume(renders["model-volume"])
    assert vol["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert mount["subPath"] == "students/4x32"


def test_model_init_container(renders: dict) -> None:
    spec, mount, vol = _model_volume(renders["model-init"])
    assert "emptyDir" in vol
    (init,) = spec["initContainers"]
    assert init["image"] == "registry.local/ran-distill-models:2026.11"
    (init_mount,) = [m for m in init["volumeMounts"] if m["name"] == "model"]
    assert init_mount["mountPath"] == mount["mountPath"] and not init_mount.get("readOnly")
    assert init["command"][-1] == "cp -R /model/. /opt/ran-distill/models/mounted/"


# ----------------------------------------------------------------------------- optional objects

OPTIONAL_KINDS = {
    "ServiceMonitor",
    "PodDisruptionBudget",
}


def test_optional_objects_only_when_enabled(renders: dict) -> None:
    default_kinds = {d["kind"] for d in renders["defaults"]["docs"]}
    assert default_kinds == {
        "ConfigMap",
        "Deployment",
        "NetworkPolicy",  # on by default
        "Pod",
        "Secret",
        "Service",
        "ServiceAccount",
    }
    assert len(by_kind(renders["defaults"]["docs"], "ConfigMap")) == 1  # no dashboard
    full_kinds = {d["kind"] for d in renders["full"]["docs"]}
    assert full_kinds >= OPTIONAL_KINDS
    assert "Secret" not in full_kinds  # existingSecret
    assert "Pod" not in {d["kind"] for d in renders["no-limits"]["docs"]}  # tests disabled


def test_pdb_servicemonitor(renders: dict) -> None:
    """(The HPA, which needs the router: tests/deploy/test_deploy_router.py.)"""
    docs = renders["full"]["docs"]
    dep = one(docs, "Deployment")
    assert dep["spec"]["replicas"] == 2
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    sm = one(docs, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    assert sm["spec"]["endpoints"][0]["port"] == "http"
    assert sm["spec"]["endpoints"][0]["path"] == "/ric/v1/metrics"
    # the ServiceMonitor selects the Service (by its labels) in the release namespace
    service = one(docs, "Service")
    assert sm["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert sm["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]


def test_network_policy(renders: dict) -> None:
    np_ = one(renders["full"]["docs"], "NetworkPolicy")
    spec = np_["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    grpc_rule, http_rule = spec["ingress"]
    assert grpc_rule["ports"] == [{"port": "grpc", "protocol": "TCP"}]
    assert {"podSelector": {}} in grpc_rule["from"]
    assert {"namespaceSelector": {"matchLabels": {NS_LABEL: "ricplt"}}} in grpc_rule["from"]
    assert http_rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert {p["port"] for p in spec["egress"][0]["ports"]} == {53}


MONITORING = {"namespaceSelector": {"matchLabels": {NS_LABEL: "monitoring"}}}


def test_network_policy_is_on_by_default_and_admits_only_listed_peers(renders: dict) -> None:
    spec = one(renders["defaults"]["docs"], "NetworkPolicy")["spec"]
    assert spec["podSelector"] == deployment(renders["defaults"])["spec"]["selector"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    grpc_rule, http_rule = spec["ingress"]
    # every rule names its sources: a rule without `from` would admit anyone
    assert grpc_rule == {
        "ports": [{"port": "grpc", "protocol": "TCP"}],
        "from": [{"podSelector": {}}],
    }
    assert http_rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert http_rule["from"] == [{"podSelector": {}}, MONITORING]  # metrics: Prometheus
    assert spec["egress"] == [
        {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    ]
    # nobody listed, no same-namespace: nothing is admitted (not everything)
    closed = one(renders["network-closed"]["docs"], "NetworkPolicy")["spec"]
    assert closed["ingress"] == [] and closed["policyTypes"] == ["Ingress"]
    only_gnbs = render(
        {
            "networkPolicy": {
                "allowSameNamespace": False,
                "metricsFrom": [],
                "grpcFrom": [MONITORING],
            }
        }
    )
    (rule,) = one(only_gnbs["docs"], "NetworkPolicy")["spec"]["ingress"]
    assert rule == {"ports": [{"port": "grpc", "protocol": "TCP"}], "from": [MONITORING]}
    assert "NetworkPolicy" not in {
        d["kind"] for d in render({"networkPolicy": {"enabled": False}})["docs"]
    }


# ----------------------------------------------------------------------------- TLS, authz


def test_tls_secret_is_mounted_and_named_in_the_controls(renders: dict) -> None:
    r = renders["mtls-authz"]
    spec = deployment(r)["spec"]["template"]["spec"]
    c = spec["containers"][0]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "tls"]
    assert mount == {"name": "tls", "mountPath": "/opt/ran-distill/tls", "readOnly": True}
    (vol,) = [v for v in spec["volumes"] if v["name"] == "tls"]
    assert vol["secret"] == {"secretName": "xapp-tls", "defaultMode": 0o440}
    controls = descriptor_of(r)["controls"]
    assert controls["tls_cert_file"] == "/opt/ran-distill/tls/tls.crt"
    assert controls["tls_key_file"] == "/opt/ran-distill/tls/tls.key"
    assert controls["tls_client_ca_file"] == "/opt/ran-distill/tls/ca.crt"
    assert controls["tls_require_client_cert"] is True
    # the kubelet's gRPC probe has no TLS: HTTPS GETs on the health paths instead
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert "grpc" not in c[probe], probe
        assert c[probe]["httpGet"]["scheme"] == "HTTPS", probe
    annotations = deployment(r)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scheme"] == "https"
    ports = {p["name"]: p for p in one(r["docs"], "Service")["spec"]["ports"]}
    assert ports["http"]["appProtocol"] == "https"
    endpoint = one(r["docs"], "ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == {"ca": {"secret": {"name": "xapp-tls", "key": "ca.crt"}}}
    tls_only = descriptor_of(renders["tls-only"])["controls"]
    assert tls_only["tls_cert_file"] and tls_only["tls_require_client_cert"] is False
    assert tls_only["tls_client_ca_file"] == "" and tls_only["authz_cells_file"] == ""
    plain = descriptor_of(renders["defaults"])["controls"]
    assert [plain[k] for k in ("tls_cert_file", "tls_key_file", "tls_client_ca_file")] == [""] * 3
    assert annotations_of(renders["defaults"])["prometheus.io/scheme"] == "http"
    notes = r["notes"]
    assert "curl -s --cacert ca.crt --cert gnb.crt --key gnb.key https://127.0.0.1:8080" in notes
    assert "grpcurl -cacert ca.crt -cert gnb.crt -key gnb.key" in notes
    assert "-plaintext" not in notes and "Metrics: https://" in notes


def annotations_of(r: dict[str, Any]) -> dict[str, str]:
    return deployment(r)["spec"]["template"]["metadata"]["annotations"]


def test_authorization_configmap_is_what_the_service_reads(renders: dict) -> None:
    from service.authz import CellPolicy

    r = renders["mtls-authz"]
    (cm,) = [d for d in by_kind(r["docs"], "ConfigMap") if d["metadata"]["name"].endswith("-authz")]
    spec = deployment(r)["spec"]["template"]["spec"]
    (vol,) = [v for v in spec["volumes"] if v["name"] == "authz"]
    assert vol["configMap"] == {"name": cm["metadata"]["name"]}
    (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "authz"]
    assert mount["readOnly"] is True
    path = descriptor_of(r)["controls"]["authz_cells_file"]
    assert path == f"{mount['mountPath']}/cells.json"
    policy = CellPolicy.from_mapping(json.loads(cm["data"]["cells.json"]))
    assert policy.allows(("gnb-a.ran.example",), 4) is True
    assert policy.allows(("gnb-a.ran.example",), 9) is False
    assert policy.allows(("spiffe://ran.example/gnb-b",), 9) is True
    assert len(annotations_of(r)["checksum/authz"]) == 64  # pods roll on a new mapping
    existing = render(
        {
            "tls": {"enabled": True, "existingSecret": "xapp-tls"},
            "authorization": {
                "enabled": True,
                "existingConfigMap": "cells",
                "configMapKey": "c.yaml",
            },
        }
    )
    assert not [
        d for d in by_kind(existing["docs"], "ConfigMap") if "authz" in d["metadata"]["name"]
    ]
    assert descriptor_of(existing)["controls"]["authz_cells_file"].endswith("/c.yaml")
    import helm_python

    with helm_python.Chart.load(CHART) as chart, pytest.raises(Exception, match="identities"):
        chart.render(
            values={
                "tls": {"enabled": True, "existingSecret": "xapp-tls"},
                "authorization": {"enabled": True},
            },
            name="ran-distill",
            namespace="ricxapp",
        )


def test_admin_token_secret(renders: dict) -> None:
    r = renders["defaults"]
    secret = one(r["docs"], "Secret")
    token = base64.b64decode(secret["data"]["admin-token"]).decode()
    assert len(token) >= 32
    ref = env(container(r))["RAN_DISTILL_ADMIN_TOKEN"]["secretKeyRef"]
    assert ref == {"name": secret["metadata"]["name"], "key": "admin-token"}
    assert token not in json.dumps(descriptor_of(r))
    existing = env(container(renders["full"]))["RAN_DISTILL_ADMIN_TOKEN"]["secretKeyRef"]
    assert existing == {"name": "ran-distill-token", "key": "token"}
    fixed = render({"adminToken": {"value": "s3cret-token"}})
    assert base64.b64decode(one(fixed["docs"], "Secret")["data"]["admin-token"]) == b"s3cret-token"


def test_dashboard_configmap(renders: dict) -> None:
    (cm,) = [
        d
        for d in by_kind(renders["full"]["docs"], "ConfigMap")
        if d["metadata"]["name"].endswith("-dashboard")
    ]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["ran-distill.json"]) == json.loads(DASHBOARD.read_text())


def test_chart_dashboard_copy_is_identical_to_the_repo_dashboard() -> None:
    # helm cannot read outside the chart directory; the chart ships a byte-identical copy
    assert CHART_DASHBOARD.read_bytes() == DASHBOARD.read_bytes(), (
        "run: cp dashboards/ran-distill.json helm/ran-distill/dashboards/ran-distill.json"
    )


# ----------------------------------------------------------------------- labels, image, test pod


@pytest.mark.parametrize("case", sorted(CASES))
def test_recommended_labels(renders: dict, case: str) -> None:
    for doc in renders[case]["docs"]:
        labels = doc["metadata"]["labels"]
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/managed-by",
            "helm.sh/chart",
        ):
            assert key in labels, (doc["kind"], key)
    assert {d["metadata"]["namespace"] for d in renders[case]["docs"]} == {
        "ricxapp-test" if case == "renamed" else "ricxapp"
    }


def test_image_reference(renders: dict) -> None:
    assert container(renders["defaults"])["image"] == "localhost:5001/ran-distill:0.1.0"
    assert container(renders["full"])["image"] == "localhost:5001/ran-distill@sha256:" + "ab" * 32


def test_helm_test_pod_checks_grpc_health(renders: dict) -> None:
    r = renders["defaults"]
    pod = one(r["docs"], "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    (c,) = pod["spec"]["containers"]
    assert c["image"] == container(r)["image"]  # grpcio is in the serving image
    script = c["command"][2]
    assert "grpc_health.v1" in script and "ran-distill.ricxapp.svc:50051" in script
    compile(script, "helm-test", "exec")  # the one-liner is valid Python
    for case in ("tls-only", "mtls-authz"):  # HTTPS (and gRPC over TLS) with the Secret's CA
        (tc,) = one(renders[case]["docs"], "Pod")["spec"]["containers"]
        tls_script = tc["command"][2]
        compile(tls_script, f"helm-test-{case}", "exec")
        assert "https://ran-distill.ricxapp.svc:8080/ric/v1/health/ready" in tls_script
        assert "/opt/ran-distill/tls/ca.crt" in tls_script
        assert ("grpc.secure_channel" in tls_script) == (case == "tls-only")
        (mount,) = [m for m in tc["volumeMounts"] if m["name"] == "tls"]
        assert mount["readOnly"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    # the Service must never select the test pod
    selector = one(r["docs"], "Service")["spec"]["selector"]
    assert not all(pod["metadata"]["labels"].get(k) == v for k, v in selector.items())


def test_notes(renders: dict) -> None:
    notes = renders["defaults"]["notes"]
    assert "ran-distill.ricxapp.svc.cluster.local:50051" in notes
    assert "helm test ran-distill" in notes
    assert "intra-op 1" in notes


def test_packaged_chart_ships_the_dashboard_and_renders(tmp_path: Path) -> None:
    """`helm package` output (what a chart repository serves) is complete on its own."""
    import tarfile

    import helm_python
    import yaml

    archive = helm_python.package(CHART, destination=tmp_path)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "ran-distill/dashboards/ran-distill.json" in names
    assert "ran-distill/values.schema.json" in names
    with helm_python.Chart.load_archive(Path(archive).read_bytes()) as chart:
        out = chart.render(
            values={"dashboard": {"enabled": True}}, name="ran-distill", namespace="ricxapp"
        )
    cm = yaml.safe_load(out["ran-distill/templates/dashboard-configmap.yaml"])
    assert json.loads(cm["data"]["ran-distill.json"]) == json.loads(DASHBOARD.read_text())


def test_chart_controls_schema_is_the_descriptor_schema() -> None:
    """values.schema.json's `controls` = xapp-descriptor/schema.json minus the keys the chart
    manages; values.yaml sets every one of them to the descriptor's default, but the
    hardened ones (no /docs, no reflection, not ready without a model)."""
    import yaml

    managed = {
        "model_dir",
        "grpc_port",
        "http_port",
        "ort_intra_op_threads",
        "ort_inter_op_threads",
        # from tls.* and authorization.*
        "tls_cert_file",
        "tls_key_file",
        "tls_client_ca_file",
        "tls_require_client_cert",
        "authz_cells_file",
    }
    descriptor_schema = json.loads(DESCRIPTOR_SCHEMA.read_text())["properties"]
    chart_schema = json.loads((CHART / "values.schema.json").read_text())
    controls_schema = chart_schema["properties"]["controls"]["properties"]
    assert controls_schema == {k: v for k, v in descriptor_schema.items() if k not in managed}
    values = yaml.safe_load((CHART / "values.yaml").read_text())["controls"]
    assert values == {k: v["default"] for k, v in controls_schema.items()} | CHART_HARDENED
