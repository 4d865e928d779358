"""Distillation: a student learns a known teacher from simulator data, ships verified."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from linkadapt.features import FEATURE_NAMES, OBS_DIM
from training.distill import DistillConfig, distill, distillation_loss
from training.networks import parameter_count

OLLA_MCS = FEATURE_NAMES.index("olla_mcs")


class ImitateOllaTeacher(nn.Module):
    """Q_a = −(a − OLLA's MCS)²: its greedy action is the MCS OLLA would send."""

    obs_dim, n_actions = OBS_DIM, 28

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        target = obs[:, OLLA_MCS : OLLA_MCS + 1] * 27.0
        return -((torch.arange(28.0)[None, :] - target) ** 2)


def _tiny(**kw) -> DistillConfig:
    base = dict(
        teacher="unused",
        arch="mlp-3x32",
        scenario="mimo",
        samples=6000,
        rounds=2,
        num_envs=210,
        episode_slots=100,
        epochs=25,
        batch_size=256,
        lr=1e-2,
        eval_scenarios=["mimo"],
        eval_seeds=1,
        eval_ues=28,
        eval_slots=150,
    )
    base.update(kw)
    return DistillConfig(**base)


def test_kl_loss_prefers_the_teachers_argmax() -> None:
    teacher = torch.tensor([[0.0, 1.0, 0.5]])
    right = torch.tensor([[0.0, 5.0, 0.0]])
    wrong = torch.tensor([[5.0, 0.0, 0.0]])
    for loss in ("kl", "nll"):
        assert distillation_loss(right, teacher, loss, 0.01) < distillation_loss(
            wrong, teacher, loss, 0.01
        )
    assert distillation_loss(teacher.clone(), teacher, "mse", 0.01) == 0


def test_config_rejects_unknown_loss() -> None:
    with pytest.raises(ValueError, match="loss"):
        _tiny(loss="hinge")


def test_student_learns_the_teacher_and_ships_a_verified_model(tmp_path) -> None:
    torch.manual_seed(0)
    summary = distill(_tiny(), tmp_path, progress=False, teacher_net=ImitateOllaTeacher())
    rounds = summary["rounds"]
    assert [r["actor"] for r in rounds] == ["teacher", "student"]  # DAgger round
    assert rounds[-1]["argmax_agreement"] > 0.8
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    student_params = summary["student_parameters"]
    assert manifest["parameter_count"] == student_params < 4000
    assert manifest["source"]["data_sha256"] == summary["data_sha256"]
    assert manifest["reference_kpis"]["mimo"]["throughput_mbps"] > 0
    # which seeds produced which numbers: data in the training range, KPIs on evaluation seeds
    assert manifest["seeds"] == {"data": 0, "student_init": 0, "reference_kpis": [10_000]}
    assert summary["evaluation"]["mimo"]["seeds"] == [10_000]
    # the exported ONNX reproduces the golden rows recorded from torch
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    golden = np.asarray(manifest["golden"]["obs"], np.float32)
    q = session.run(None, {"obs": golden})[0]
    np.testing.assert_allclose(q, manifest["golden"]["q_values"], atol=1e-4)
    # the student drives the simulator about as well as its teacher
    gain, _ = summary["evaluation"]["mimo"]["student_vs_teacher_pct"]
    assert gain > -15.0
    assert (tmp_path / "evaluation.png").stat().st_size > 10_000


def test_untrained_student_does_not_agree(tmp_path) -> None:
    """Control: agreement above is learned, not an artefact of a constant teacher."""
    from training.distill import _agreement
    from training.networks import build_qnet

    torch.manual_seed(0)
    student = build_qnet("mlp-3x32", OBS_DIM, 28)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (2000, OBS_DIM)).astype(np.float32)
    assert _agreement(student, ImitateOllaTeacher(), x) < 0.3
    assert parameter_count(student) < 4000
