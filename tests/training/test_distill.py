"""Distillation end to end: a student learns a known teacher from simulator data, ships
verified, teaches the next stage, resumes, and never sees a privileged column."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from linkadapt.features import FEATURE_NAMES, OBS_DIM, PRIVILEGED_DIM, PRIVILEGED_NAMES
from training.distill.config import DistillConfig
from training.distill.strategies import run
from training.distill.teachers import load_teacher

OLLA_MCS = FEATURE_NAMES.index("olla_mcs")


class ImitateOllaTeacher(nn.Module):
    """Q_a = −(a − OLLA's MCS)²: its greedy action is the MCS OLLA would send."""

    obs_dim, n_actions = OBS_DIM, 28

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        target = obs[:, OLLA_MCS : OLLA_MCS + 1] * 27.0
        return -((torch.arange(28.0)[None, :] - target) ** 2)


class PrivilegedTeacher(ImitateOllaTeacher):
    """Reads 31 columns; its Q depends on a privileged one (true SINR) as well."""

    obs_dim = OBS_DIM + PRIVILEGED_DIM

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        assert obs.shape[1] == OBS_DIM + PRIVILEGED_DIM
        return super().forward(obs) + 1e-3 * obs[:, -2:-1]


def _tiny(**kw) -> DistillConfig:
    base = dict(
        teacher="unused",
        arch="mlp-3x32",
        scenario="mimo",
        samples=6000,
        rounds=2,
        num_envs=210,
        episode_slots=100,
        epochs=12,
        patience=4,
        batch_size=256,
        lr=1e-2,
        chunk_size=2000,
        val_samples=1500,
        eval_scenarios=["mimo"],
        eval_seeds=1,
        eval_ues=28,
        eval_slots=150,
    )
    base.update(kw)
    return DistillConfig(**base)


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("student")
    torch.manual_seed(0)
    summary = run(_tiny(), out, progress=False, teacher_net=ImitateOllaTeacher())
    return out, summary


def test_student_learns_the_teacher_on_held_out_states(student_dir) -> None:
    _, summary = student_dir
    history = summary["history"]
    assert {h["round"] for h in history} == {0, 1}  # round 0 teacher-driven, round 1 DAgger
    first, last = history[0], summary["validation"]
    assert last["argmax_agreement"] > 0.8 > first["val_argmax_agreement"]
    assert last["within_1"] >= last["argmax_agreement"]
    assert summary["seeds"]["held_out"] == [5000]  # tuning seeds: never the training data's
    assert all(s >= 100_000 for s in summary["seeds"]["data_env_seeds"])


def test_the_manifest_holds_the_provenance(student_dir) -> None:
    out, summary = student_dir
    m = json.loads((out / "manifest.json").read_text())
    assert m["parameter_count"] == summary["student_parameters"] < 4000
    assert (
        m["source"]["data_sha256"] == summary["data_sha256"]
        and len(m["source"]["data_sha256"]) == 64
    )
    assert len(m["source"]["teacher_sha256"]) == 64  # the in-memory teacher is hashed too
    cmd = m["source"]["command"]
    assert cmd[:2] == ["ran-distill", "distill"] and cmd[cmd.index("--arch") + 1] == "mlp-3x32"
    assert cmd[cmd.index("--scenario") + 1] == "mimo"
    assert m["validation"]["argmax_agreement"] == summary["validation"]["argmax_agreement"]
    assert m["versions"]["torch"] and m["versions"]["onnxruntime"] and m["created_utc"]
    assert m["seeds"]["evaluation"] == [10_000] and m["seeds"]["student_init"] == 0
    assert m["reference_kpis"]["mimo"]["throughput_mbps"] > 0
    assert m["parity"]["argmax_agreement"] == 1.0 and m["parity"]["rows"] == 1500


def test_the_onnx_reproduces_the_golden_rows_and_drives_like_the_teacher(student_dir) -> None:
    out, summary = student_dir
    m = json.loads((out / "manifest.json").read_text())
    session = ort.InferenceSession(str(out / "model.onnx"))
    q = session.run(None, {"obs": np.asarray(m["golden"]["obs"], np.float32)})[0]
    np.testing.assert_allclose(q, m["golden"]["q_values"], atol=1e-4)
    gain, _ = summary["evaluation"]["mimo"]["student_vs_teacher_pct"]
    assert gain > -15.0
    assert set(summary["evaluation"]["mimo"]["vs_teacher"]) >= {"throughput_pct", "bler_pp"}
    assert (out / "evaluation.png").stat().st_size > 10_000


def test_a_student_directory_is_a_teacher(student_dir) -> None:
    out, _ = student_dir
    teacher = load_teacher(str(out))
    assert teacher.net is not None and teacher.arch == "mlp-3x32"
    assert teacher.feature_names == tuple(FEATURE_NAMES)
    x = np.random.default_rng(0).uniform(0, 1, (64, OBS_DIM)).astype(np.float32)
    ours, _ = teacher.q_values(x)
    onnx = ort.InferenceSession(str(out / "model.onnx")).run(None, {"obs": x})[0]
    np.testing.assert_allclose(ours, onnx, atol=1e-4)
    # a student of an older release (student.pt, no model.pt) loads too
    legacy_dir = out.parent / "legacy-student"
    legacy_dir.mkdir(exist_ok=True)
    shutil.copy(out / "manifest.json", legacy_dir / "manifest.json")
    shutil.copy(out / "model.pt", legacy_dir / "student.pt")
    legacy = load_teacher(str(legacy_dir))
    assert legacy.net is not None and legacy.obs_dim == OBS_DIM
    np.testing.assert_array_equal(legacy.q_values(x)[0], ours)


def test_a_rerun_reuses_the_data_and_the_rounds(student_dir, tmp_path) -> None:
    out, summary = student_dir
    again = run(_tiny(eval_seeds=0), out, progress=False, teacher_net=ImitateOllaTeacher())
    assert again["resumed_rounds"] == 2
    assert again["data_sha256"] == summary["data_sha256"]
    assert again["validation"] == summary["validation"]  # the same student, not retrained


def test_a_privileged_teacher_gives_an_observation_only_student(tmp_path) -> None:
    cfg = _tiny(strategy="privileged", samples=1500, epochs=2, val_samples=300, eval_seeds=0)
    summary = run(cfg, tmp_path, progress=False, teacher_net=PrivilegedTeacher())
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["obs_dim"] == OBS_DIM and m["privileged"] is False
    assert m["feature_names"] == list(FEATURE_NAMES)
    assert not set(PRIVILEGED_NAMES) & set(m["feature_names"])
    assert summary["teachers"][0]["privileged"] is True


def test_strategy_privileged_refuses_a_plain_teacher(tmp_path) -> None:
    with pytest.raises(ValueError, match="privileged"):
        run(
            _tiny(strategy="privileged"), tmp_path, progress=False, teacher_net=ImitateOllaTeacher()
        )


def test_a_teacher_that_cannot_read_the_environment_is_refused_before_collecting(tmp_path) -> None:
    with pytest.raises(ValueError, match="CartPole-v1 has 4"):
        run(
            _tiny(scenario="CartPole-v1"),
            tmp_path,
            progress=False,
            teacher_net=ImitateOllaTeacher(),
        )
    assert not (tmp_path / "data").exists()
