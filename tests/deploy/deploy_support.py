"""Shared helpers of the deployment tests: repo paths, the Docker build context as
`.dockerignore` defines it, and offline Helm rendering + Kubernetes schema validation."""

from __future__ import annotations

import functools
import os
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "ran-distill"
DESCRIPTOR = REPO / "xapp-descriptor" / "config-file.json"
DESCRIPTOR_SCHEMA = REPO / "xapp-descriptor" / "schema.json"
DASHBOARD = REPO / "dashboards" / "ran-distill.json"
CHART_DASHBOARD = CHART / "dashboards" / "ran-distill.json"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

# Kubernetes versions the rendered manifests are validated against: the chart's minimum
# (kubeVersion >= 1.27, native gRPC probes GA) and the newest schema kubernetes-validate has.
K8S_VERSIONS = ("1.27.0", "1.37.0")


# ----------------------------------------------------------------------------- .dockerignore


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex over '/'-separated relative paths (Go filepath.Match
    plus `**`, as moby/patternmatcher implements it)."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.index("]", i)
            body = pattern[i + 1 : end]
            if body.startswith("!") or body.startswith("^"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 1
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


@functools.lru_cache(maxsize=1)
def dockerignore_rules() -> tuple[tuple[bool, re.Pattern[str], str], ...]:
    """(is_exception, regex, raw pattern) per rule, in file order."""
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate:
            line = line[1:].strip()
        line = os.path.normpath(line).lstrip("/")
        rules.append((negate, _pattern_regex(line), line))
    return tuple(rules)


def is_ignored(rel: str) -> bool:
    """Whether `rel` (relative to the repo) is left out of the Docker build context: the last
    rule matching the path or one of its parent directories decides."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negate, rx, _ in dockerignore_rules():
        if any(rx.fullmatch(p) for p in prefixes):
            ignored = not negate
    return ignored


def build_context_files() -> list[str]:
    """Every file of the repo that `docker build .` would send, as sorted relative paths."""
    exception_prefixes = [
        re.split(r"[*?\[]", raw)[0] for negate, _, raw in dockerignore_rules() if negate
    ]
    files = []
    for root, dirs, names in os.walk(REPO):
        rel_root = os.path.relpath(root, REPO)
        rel_root = "" if rel_root == "." else rel_root
        keep = []
        for d in sorted(dirs):
            rel = f"{rel_root}/{d}" if rel_root else d
            if d == ".git":
                continue
            # descend into an ignored directory only if an exception may re-include below it
            if not is_ignored(rel) or any(p.startswith(rel + "/") for p in exception_prefixes):
                keep.append(d)
        dirs[:] = keep
        for n in names:
            rel = f"{rel_root}/{n}" if rel_root else n
            if not is_ignored(rel):
                files.append(rel)
    return sorted(files)


def copy_build_context(dest: Path) -> list[str]:
    """Copy the Docker build context into `dest` (what `COPY . .` puts in /src)."""
    files = build_context_files()
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)
    return files


# ----------------------------------------------------------------------------- Helm


def render(
    values: dict[str, Any] | None = None, *, name: str = "ran-distill", namespace: str = "ricxapp"
) -> dict[str, Any]:
    """Render the chart offline: {"docs": [manifests], "notes": NOTES.txt, "files": raw}."""
    import helm_python

    with helm_python.Chart.load(CHART) as chart:
        rendered = chart.render(
            values=values or {}, name=name, namespace=namespace, is_install=True
        )
    docs: list[dict[str, Any]] = []
    notes = ""
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("_source", path)
                docs.append(doc)
    return {"docs": docs, "notes": notes, "files": rendered}


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def strip_source(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "_source"}


# prometheus-operator's ServiceMonitor is a CRD, absent from kubernetes-validate's schemas:
# check the fields the chart sets against their monitoring.coreos.com/v1 definitions.
_DURATION = "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "matchExpressions": {"type": "array"},
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "tlsConfig": {"type": "object"},
                            "interval": {"type": "string", "pattern": _DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": _DURATION},
                            "honorLabels": {"type": "boolean"},
                            "metricRelabelings": {"type": "array"},
                            "relabelings": {"type": "array"},
                        },
                    },
                },
            },
        },
    },
}


def validate_manifest(doc: dict[str, Any]) -> None:
    """Validate one rendered object strictly (unknown fields are errors) for every version in
    K8S_VERSIONS; raises on any problem, including a kind without a schema."""
    import jsonschema
    import kubernetes_validate

    doc = strip_source(doc)
    if doc["kind"] == "ServiceMonitor":
        jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
        return
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)
