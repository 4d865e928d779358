"""``ran-distill distill`` smoke tests, CleanRL style: every data source, loss, strategy and
student on a tiny budget, each one command in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from linkadapt.features import OBS_DIM, PRIVILEGED_DIM
from training.distill.cli import register
from training.distill.config import DistillConfig
from training.distill.provenance import rebuild_command
from training.networks import build_qnet

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_STUDENT = str(ROOT / "models" / "default")
TINY = [
    "--samples",
    "240",
    "--rounds",
    "2",
    "--epochs",
    "1",
    "--val-samples",
    "60",
    "--num-envs",
    "32",
    "--episode-slots",
    "20",
    "--chunk-size",
    "200",
    "--batch-size",
    "64",
    "--eval-seeds",
    "0",
    "--no-progress",
]


def _teacher_dir(path: Path, arch: str, obs_dim: int, n_actions: int) -> str:
    """A run directory as train-teacher leaves it without a manifest: model.pt + config."""
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(build_qnet(arch, obs_dim, n_actions).state_dict(), path / "model.pt")
    (path / "config.json").write_text(json.dumps({"arch": arch}))
    return str(path)


def _distill(out: Path, *args: str, tiny: list[str] = TINY) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ran_distill", "distill", "--out", str(out), *tiny, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "distill.json").read_text())


@pytest.mark.parametrize(
    "args",
    [
        ["--source", "teacher", "--epsilon", "0.2"],
        ["--source", "synthetic"],
        ["--source", "teacher=0.5,student=0.25,synthetic=0.25", "--loss", "reverse-kl"],
        ["--loss", "mse", "--arch", "mlp-4x64"],
        ["--loss", "nll", "--arch", "mlp-4x32"],
        ["--loss", "feature", "--feature-weight", "0.5"],
        ["--arch", "gru-16", "--seq-len", "4", "--int8"],
    ],
    ids=[
        "teacher-eps",
        "synthetic",
        "mixture-reverse-kl",
        "mse-4x64",
        "nll-4x32",
        "feature",
        "gru",
    ],
)
def test_distill_variants(tmp_path, args) -> None:
    summary = _distill(tmp_path, "--teacher", SHIPPED_STUDENT, "--scenario", "mimo", *args)
    assert summary["samples"] == 240 and 0 <= summary["validation"]["argmax_agreement"] <= 1
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "model.pt").is_file()


def test_distill_onnx_teacher_with_a_trace_and_an_evaluation(tmp_path) -> None:
    trace = tmp_path / "drive.csv"
    trace.write_text("time,sinr,speed\n" + "".join(f"{t},{10 + t % 7},30\n" for t in range(20)))
    tiny = [a for a in TINY if a not in ("--eval-seeds", "0")]
    args = [
        "--teacher",
        SHIPPED_STUDENT + "/model.onnx",
        "--scenario",
        "mimo",
        "--trace",
        str(trace),
    ]
    args += [
        "--eval-seeds",
        "1",
        "--eval-scenarios",
        "mimo",
        "--eval-ues",
        "10",
        "--eval-slots",
        "20",
    ]
    summary = _distill(tmp_path / "out", *args, tiny=tiny)
    assert summary["config"]["trace"] == str(trace)
    assert summary["evaluation"]["mimo"]["vs_teacher"]["throughput_pct"]


def test_distill_strategies_multi_progressive_privileged(tmp_path) -> None:
    multi = _distill(
        tmp_path / "multi",
        "--strategy",
        "multi",
        "--scenario-teachers",
        f"mimo={SHIPPED_STUDENT}",
        "--scenario-teachers",
        f"bursty={SHIPPED_STUDENT}/model.onnx",
    )
    assert [t["scenario"] for t in multi["teachers"]] == ["mimo", "bursty"]
    prog = _distill(
        tmp_path / "prog",
        "--strategy",
        "progressive",
        "--teacher",
        SHIPPED_STUDENT,
        "--progressive-archs",
        "mlp-2x16",
        "--arch",
        "mlp-1x8",
        "--scenario",
        "mimo",
    )
    assert [s["arch"] for s in prog["seeds"]["stages"]] == ["mlp-2x16", "mlp-1x8"]
    assert (tmp_path / "prog" / "stage-0-mlp-2x16" / "model.pt").is_file()
    priv_teacher = _teacher_dir(tmp_path / "priv", "mlp-2x16", OBS_DIM + PRIVILEGED_DIM, 28)
    priv = _distill(tmp_path / "privout", "--strategy", "privileged", "--teacher", priv_teacher)
    manifest = json.loads((tmp_path / "privout" / "manifest.json").read_text())
    assert priv["teachers"][0]["privileged"] and manifest["obs_dim"] == OBS_DIM


def test_distill_cartpole_offline_online_and_from_scratch(tmp_path) -> None:
    teacher = _teacher_dir(tmp_path / "cart", "mlp-2x64", 4, 2)
    tiny = [*TINY[: TINY.index("--num-envs")], "--batch-size", "64", "--no-progress"]
    base = [
        "--teacher",
        teacher,
        "--scenario",
        "CartPole-v1",
        "--num-envs",
        "4",
        "--eval-seeds",
        "1",
    ]
    offline = _distill(tmp_path / "kl", *base, "--arch", "mlp-2x64", tiny=tiny)
    assert offline["evaluation"]["CartPole-v1"]["student"]["mean"] > 0
    online = _distill(tmp_path / "kd", *base, "--loss", "online", "--samples", "400", tiny=tiny)
    assert online["kind"] == "online-kd" and online["dqn"]["transitions"] >= 400
    scratch = _distill(
        tmp_path / "dqn", *base, "--strategy", "from-scratch", "--samples", "400", tiny=tiny
    )
    assert scratch["kind"] == "dqn-from-scratch" and scratch["data_sha256"] is None


def test_bad_options_fail_with_the_reason(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "ran_distill", "distill", "--out", str(tmp_path), "--teacher"]
    done = subprocess.run(
        [*cmd, SHIPPED_STUDENT, "--arch", "mlp-3x"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2 and "unknown architecture" in done.stderr
    done = subprocess.run(
        [*cmd, SHIPPED_STUDENT, "--source", "teacher=2"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2 and "source" in done.stderr


def test_the_recorded_command_rebuilds_the_configuration(tmp_path, monkeypatch) -> None:
    cfg = DistillConfig(
        teacher="t",
        strategy="progressive",
        source="teacher=0.5,synthetic=0.5",
        int8=True,
        eval_scenarios=["bursty"],
        trace="x.csv",
        plots=False,
        progressive_archs=["mlp-2x8"],
    )
    seen = []

    def fake_run(c, out, **kwargs):
        seen.append(c)
        return {}

    monkeypatch.setattr("training.distill.strategies.run", fake_run)
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, rebuild_command(cfg, tmp_path)[1:])
    assert result.exit_code == 0, result.output
    assert seen == [cfg]


def test_every_option_is_documented() -> None:
    import dataclasses

    doc = (ROOT / "docs" / "distillation.md").read_text()
    for f in dataclasses.fields(DistillConfig):
        assert f"`--{f.name.replace('_', '-')}`" in doc, f.name
