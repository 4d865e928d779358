"""The serving image without a Docker engine: run the Dockerfile's install and start commands
in a clean virtual environment and check the service the way Kubernetes and the RIC do.

Mirrors the Dockerfile step by step: the build context as `.dockerignore` defines it, `pip
wheel --no-deps`, a fresh venv with the wheel and its base dependencies only (no extras),
pip/setuptools removed, then `ran-distill serve` with CONFIG_FILE pointing at the descriptor,
HOME/TMPDIR in a scratch directory and PYTHONDONTWRITEBYTECODE=1 (read-only root filesystem).
It checks torch (and the training code) is absent, HTTP alive/ready and gRPC health on both
ports, the HEALTHCHECK command, JSON log lines, that nothing was written to the "image", and
a clean exit on SIGTERM. Also reports the installed size for the image budget.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from deploy_support import DESCRIPTOR, DOCKERFILE, REPO, copy_build_context

from ran_distill.xapp_process import free_port, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

BASE_IMAGE_MB = 130  # python:3.11-slim-bookworm, uncompressed (docs/deployment.md)
IMAGE_BUDGET_MB = 400


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def tree_state(*roots: Path) -> dict[str, tuple[int, int]]:
    state = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                st = p.lstat()
                state[str(p)] = (st.st_mtime_ns, st.st_size)
    return state


def du_mb(root: Path) -> float:
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                total += p.stat().st_size
    return total / 1e6


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The Dockerfile's build stage, in a temp dir standing in for the image's filesystem."""
    missing = [p for p in ("README.md", "models/default") if not (REPO / p).exists()]
    assert not missing, f"the image needs {missing} (not in the repository yet)"
    root = tmp_path_factory.mktemp("image")
    src, wheels, venv = root / "src", root / "wheels", root / "opt" / "venv"
    files = copy_build_context(src)  # COPY . .  (through .dockerignore)
    assert not any(f.startswith("training/") for f in files)
    pip_env = {
        **os.environ,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    pip_env.pop("PYTHONPATH", None)
    pip_env.pop("PIP_REQUIRE_VIRTUALENV", None)
    # RUN python -m pip wheel --no-deps --wheel-dir /wheels .
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(wheels), str(src)],
        env=pip_env,
        timeout=600,
    )
    (wheel,) = wheels.glob("ran_distill-*.whl")
    # && python -m venv /opt/venv
    run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    py = venv / "bin" / "python"
    # && /opt/venv/bin/python -m pip install --no-compile /wheels/ran_distill-*.whl
    run([str(py), "-m", "pip", "install", "--no-compile", str(wheel)], env=pip_env, timeout=900)
    # && /opt/venv/bin/python -m pip uninstall --yes pip setuptools wheel
    run(
        [str(py), "-m", "pip", "uninstall", "--yes", "pip", "setuptools", "wheel"],
        env=pip_env,
        timeout=300,
    )
    # && find /opt/venv/lib -type d \( -name __pycache__ -o -name tests \) -prune -exec rm -rf {} +
    run(
        [
            "find",
            str(venv / "lib"),
            "-type",
            "d",
            "(",
            "-name",
            "__pycache__",
            "-o",
            "-name",
            "tests",
            ")",
            "-prune",
            "-exec",
            "rm",
            "-rf",
            "{}",
            "+",
        ],
        timeout=300,
    )
    # COPY --from=build /src/models/default /opt/ran-distill/models/default
    model = root / "opt" / "ran-distill" / "models" / "default"
    model.parent.mkdir(parents=True)
    os.rename(src / "models" / "default", model)
    return {"root": root, "venv": venv, "python": py, "model": model, "wheel": wheel}


def helm_test_script() -> str:
    """The python program of the chart's `helm test` pod (default values)."""
    from deploy_support import one, render

    pod = one(render()["docs"], "Pod")
    command = pod["spec"]["containers"][0]["command"]
    assert command[:2] == ["python", "-c"]
    return command[2]


def isolated_env(image: dict[str, Path], scratch: Path, **extra: str) -> dict[str, str]:
    """The runtime stage's ENV, nothing inherited from the test process."""
    for d in ("home", "tmp", "cache"):
        (scratch / d).mkdir(exist_ok=True)
    return {
        "PATH": f"{image['venv'] / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "VIRTUAL_ENV": str(image["venv"]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "HOME": str(scratch / "home"),
        "TMPDIR": str(scratch / "tmp"),
        "XDG_CACHE_HOME": str(scratch / "cache"),
        "LANG": "C.UTF-8",
        **extra,
    }


def test_wheel_has_no_training_code(image: dict[str, Path]) -> None:
    import zipfile

    names = zipfile.ZipFile(image["wheel"]).namelist()
    assert any(n.startswith("service/") for n in names)
    assert any(n.startswith("linkadapt/") for n in names)
    assert not any(n.startswith(("training/", "tests/")) for n in names)
    # third-party data shipped in the image keeps its notice (Sionna's Apache-2.0 tables)
    for notice in (REPO / "linkadapt" / "data").glob("NOTICE*"):
        assert f"linkadapt/data/{notice.name}" in names


@pytest.mark.parametrize("module", ["torch", "training", "gymnasium", "ray", "matplotlib"])
def test_not_importable_in_the_image(image: dict[str, Path], module: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(image["python"]), "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=isolated_env(image, tmp_path),
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr, module


def test_image_size_budget(image: dict[str, Path]) -> None:
    venv_mb = du_mb(image["venv"])
    model_mb = du_mb(image["model"])
    total = BASE_IMAGE_MB + venv_mb + model_mb
    print(
        f"\nimage estimate: base {BASE_IMAGE_MB} MB + venv {venv_mb:.1f} MB "
        f"+ model {model_mb:.2f} MB = {total:.1f} MB (budget {IMAGE_BUDGET_MB} MB)"
    )
    assert total < IMAGE_BUDGET_MB


def test_serve_answers_health_on_both_ports_and_stops_on_sigterm(
    image: dict[str, Path], tmp_path: Path
) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    grpc_port, http_port = free_port(), free_port()
    # the baked descriptor, with the paths and ports of this stand-in image
    descriptor = json.loads(DESCRIPTOR.read_text())
    descriptor["controls"].update(
        model_dir=str(image["model"]),
        grpc_port=grpc_port,
        http_port=http_port,
        host="127.0.0.1",
        max_tracked_ues=12345,
    )  # only set here: proves it is read
    config = tmp_path / "config-file.json"
    config.write_text(json.dumps(descriptor))
    env = isolated_env(
        image, tmp_path, CONFIG_FILE=str(config), RAN_DISTILL_MODEL_DIR=str(image["model"])
    )
    before = tree_state(image["venv"], image["model"])
    # ENTRYPOINT ["ran-distill", "serve"] + CMD, with this test's ports
    cmd = [
        "ran-distill",
        "serve",
        "--model",
        str(image["model"]),
        "--grpc-port",
        str(grpc_port),
        "--http-port",
        str(http_port),
    ]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=tmp_path / "tmp", stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{http_port}"
    try:
        try:
            wait_ready(http_port, proc=proc, timeout=120)
        except RuntimeError as exc:  # exited, or never ready
            pytest.fail(f"{exc}\n{log.read_text()[-4000:]}")
        assert http_get(f"{base}/ric/v1/health/alive")[0] == 200
        status, metrics = http_get(f"{base}/ric/v1/metrics")
        assert status == 200 and b"ran_distill_" in metrics
        # the process took its settings from CONFIG_FILE's controls
        assert b"ran_distill_tracked_ues_limit 12345.0" in metrics

        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for service in ("", "linkadapt.v1.LinkAdaptation"):
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING, service

        # the image's HEALTHCHECK command, verbatim but for the port
        hc = DOCKERFILE.read_text().split("HEALTHCHECK", 1)[1]
        hc_cmd = json.loads(hc.split(" CMD ", 1)[1].splitlines()[0])
        hc_cmd[2] = hc_cmd[2].replace("127.0.0.1:8080", f"127.0.0.1:{http_port}")
        probe = subprocess.run(
            hc_cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30
        )
        assert probe.returncode == 0, probe.stderr

        # the chart's `helm test` script, run by the image's python, against this server
        script = (
            helm_test_script()
            .replace("ran-distill.ricxapp.svc:50051", f"127.0.0.1:{grpc_port}")
            .replace("ran-distill.ricxapp.svc:8080", f"127.0.0.1:{http_port}")
        )
        helm_test = subprocess.run(
            [str(image["python"]), "-c", script],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert helm_test.returncode == 0, helm_test.stdout + helm_test.stderr
        assert "SERVING" in helm_test.stdout

        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        assert code == 0, f"exit code {code} after SIGTERM:\n{log.read_text()[-4000:]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)

    # read-only root filesystem: the venv and the model are untouched (no .pyc, no caches)
    assert tree_state(image["venv"], image["model"]) == before
    # logs are one JSON object per line
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line
