"""Every distillation loss on a toy problem: it decreases and the student ends up acting like
a known teacher; the online KD term (DQN + decaying KD) on CartPole."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from training.distill.config import OFFLINE_LOSSES
from training.distill.losses import distillation_loss, kl_student_teacher, kl_teacher_student
from training.distill.students import forward_with_hidden, hidden_width
from training.dqn.kd import KDLearner, kd_term
from training.networks import build_qnet

OBS, ACTIONS = 6, 5


def _toy_teacher() -> nn.Module:
    torch.manual_seed(1)
    return build_qnet("mlp-2x32", OBS, ACTIONS).eval()


def _fit(loss_name: str, steps: int = 300) -> tuple[list[float], float, float]:
    """Train a fresh 2x32 student on the toy teacher; (losses, agreement, hint error)."""
    teacher = _toy_teacher()
    torch.manual_seed(2)
    student = build_qnet("mlp-2x32", OBS, ACTIONS)
    projection = nn.Linear(hidden_width(student), hidden_width(teacher))
    opt = torch.optim.Adam([*student.parameters(), *projection.parameters()], lr=1e-2)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        x = torch.from_numpy(rng.uniform(-1, 1, (128, OBS)).astype(np.float32))
        with torch.no_grad():
            q_t, h_t = forward_with_hidden(teacher, x.unsqueeze(1))
        q_s, h_s = forward_with_hidden(student, x.unsqueeze(1))
        loss = distillation_loss(
            loss_name,
            q_s.squeeze(1),
            q_t.squeeze(1),
            0.1,
            student_hidden=h_s.squeeze(1),
            teacher_hidden=h_t.squeeze(1),
            projection=projection,
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    x = torch.from_numpy(rng.uniform(-1, 1, (4000, OBS)).astype(np.float32))
    with torch.no_grad():
        agree = float((student(x).argmax(1) == teacher(x).argmax(1)).float().mean())
        (_, h_t), (_, h_s) = (
            forward_with_hidden(teacher, x[:, None]),
            forward_with_hidden(student, x[:, None]),
        )
        hint = float(((projection(h_s) - h_t) ** 2).mean())
    return losses, agree, hint


@pytest.mark.parametrize("loss_name", OFFLINE_LOSSES)
def test_each_loss_decreases_and_the_student_matches_the_teacher(loss_name: str) -> None:
    losses, agree, _ = _fit(loss_name)
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20]), losses[::50]
    assert agree > 0.85, agree


def test_feature_matching_learns_the_projection_too() -> None:
    _, _, hint_feature = _fit("feature")
    _, _, hint_kl = _fit("kl")  # same projection, never trained on the hint
    assert hint_feature < 0.5 * hint_kl


def test_the_policy_losses_prefer_the_teachers_argmax() -> None:
    teacher = torch.tensor([[0.0, 1.0, 0.5]])
    right = torch.tensor([[0.0, 5.0, 0.0]])
    wrong = torch.tensor([[5.0, 0.0, 0.0]])
    for name in ("kl", "reverse-kl", "nll", "mse"):
        assert distillation_loss(name, right, teacher, 0.01) < distillation_loss(
            name, wrong, teacher, 0.01
        )
    assert distillation_loss("mse", teacher.clone(), teacher, 0.01) == 0
    # forward and reverse KL are both zero only when the distributions agree
    sharp = teacher / 0.5
    assert float(kl_teacher_student(sharp, teacher, 0.5)) == pytest.approx(0.0, abs=1e-6)
    assert float(kl_student_teacher(sharp, teacher, 0.5)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="hidden"):
        distillation_loss("feature", right, teacher, 0.01)


def test_the_kd_term_is_zero_for_the_teachers_own_values_and_scales_with_t_squared() -> None:
    q = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]])
    assert float(kd_term(q, q, 5.0)) == pytest.approx(0.0, abs=1e-4)
    other = torch.zeros_like(q)
    assert float(kd_term(other, q, 1.0)) > 0


class BalancingTeacher:
    """CartPole: push towards the side the pole falls to (a known, decent policy)."""

    def q_values(self, obs: np.ndarray, hidden: object = None) -> tuple[np.ndarray, None]:
        lean = obs[:, 2] + 0.5 * obs[:, 3]
        return np.stack([-lean, lean], axis=1).astype(np.float32), None


def test_online_distillation_pulls_a_dqn_student_towards_its_teacher(tmp_path) -> None:
    from training.dqn.config import DQNConfig
    from training.dqn.presets import preset_for
    from training.dqn.trainer import train

    teacher = BalancingTeacher()
    learners: list[KDLearner] = []

    def make(net: nn.Module, cfg: DQNConfig) -> KDLearner:
        learners.append(
            KDLearner(net, cfg, teacher.q_values, temperature=5.0, weight=1.0, decay=0.999)
        )
        return learners[-1]

    values = {**DQNConfig.defaults(), **preset_for("CartPole-v1"), "env": "CartPole-v1"}
    values.update(total_transitions=2500, learning_starts=200, eval_steps=50, eval_num_envs=2)
    cfg = DQNConfig.from_dict(values)
    result = train(cfg, tmp_path, progress=False, plot=False)  # without KD, same seed
    plain = result.curve
    torch.manual_seed(0)
    kd = train(cfg, tmp_path / "kd", progress=False, make_learner=make, plot=False)
    learner = learners[0]
    assert learner.updates > 100 and 0 < learner.kd_weight < 1.0  # decayed, still on
    rng = np.random.default_rng(0)
    states = rng.uniform([-1, -1, -0.2, -1], [1, 1, 0.2, 1], (2000, 4)).astype(np.float32)
    q_teacher = teacher.q_values(states)[0]
    clear = np.abs(q_teacher[:, 1]) > 0.05  # states where the teacher's choice is not a tie
    states, want = states[clear], q_teacher[clear].argmax(1)

    def agreement(run_dir) -> float:
        from training.artifacts import load_torch_qnet

        with torch.no_grad():
            return float(
                np.mean(
                    load_torch_qnet(run_dir)(torch.from_numpy(states)).argmax(1).numpy() == want
                )
            )

    with_kd, without = agreement(tmp_path / "kd"), agreement(tmp_path)
    assert with_kd > 0.8 and with_kd > without + 0.2, (with_kd, without)
    assert kd.transitions >= 2500 and plain
