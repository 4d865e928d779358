"""Learning tests on CartPole-v1: they fail if the DQN machinery stops learning.

Random play scores about 22 on CartPole-v1; the budgets below are small enough for a
shared 2-core machine (each run takes seconds to tens of seconds).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.dqn.config import DQNConfig
from training.dqn.presets import CARTPOLE
from training.dqn.trainer import train

RANDOM_CARTPOLE_RETURN = 22.0


def _cfg(**overrides) -> DQNConfig:
    values = {
        **DQNConfig.defaults(),
        **CARTPOLE,
        "env": "CartPole-v1",
        "checkpoint_interval": 10**9,
        **overrides,
    }
    return DQNConfig(**values)


def test_cartpole_reaches_475(tmp_path):
    """The issue's sanity bar: greedy average return >= 475 (max 500) on CartPole-v1."""
    cfg = _cfg(total_transitions=100_000, eval_interval=50_000, eval_steps=1200, eval_num_envs=8)
    result = train(cfg, tmp_path, progress=False)
    assert result.final_eval is not None and result.final_eval.episodes >= 8
    assert result.final_eval.mean_return >= 475, result.final_eval


def test_dueling_with_prioritized_replay_and_hard_target_learns(tmp_path):
    cfg = _cfg(
        arch="dueling-2x64",
        prioritized=True,
        target_update="hard",
        target_update_interval=250,
        total_transitions=20_000,
        eval_interval=10_000,
    )
    result = train(cfg, tmp_path, progress=False)
    assert result.final_eval.mean_return > 4 * RANDOM_CARTPOLE_RETURN, result.final_eval


def test_recurrent_drqn_learns(tmp_path):
    cfg = _cfg(
        arch="gru-64",
        batch_size=16,
        replay_ratio=4.0,
        seq_len=8,
        burn_in=2,
        total_transitions=20_000,
        eval_interval=10_000,
    )
    result = train(cfg, tmp_path, progress=False)
    assert result.final_eval.mean_return > 3 * RANDOM_CARTPOLE_RETURN, result.final_eval


def test_same_seed_gives_identical_weights_and_other_seed_differs(tmp_path):
    cfg = _cfg(total_transitions=3000, learning_starts=500, eval_interval=10**9)
    train(cfg, tmp_path / "a", progress=False)
    train(cfg, tmp_path / "b", progress=False)
    cfg.seed = 1
    train(cfg, tmp_path / "c", progress=False)
    a, b, c = (torch.load(tmp_path / x / "model.pt", weights_only=True) for x in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_run_writes_artifacts_and_resume_extends_the_budget(tmp_path):
    cfg = _cfg(
        total_transitions=3000, learning_starts=500, eval_interval=1500, checkpoint_interval=1000
    )
    first = train(cfg, tmp_path, progress=False, log_interval=500)
    for name in (
        "config.json",
        "curve.csv",
        "curve.png",
        "checkpoint.pt",
        "model.pt",
        "replay.npz",
    ):
        assert (tmp_path / name).exists(), name
    assert (tmp_path / "curve.png").stat().st_size > 5_000
    rows_before = len(first.curve)
    cfg.total_transitions = 5000
    second = train(cfg, tmp_path, resume=True, progress=False, log_interval=500)
    assert second.transitions >= 5000 > first.transitions
    assert second.updates > first.updates
    # The curve continues: older rows are kept, transitions keep increasing.
    xs = [row["transitions"] for row in second.curve]
    assert len(xs) > rows_before and np.all(np.diff(xs) > 0)
    assert second.wall_s > first.wall_s


def test_resume_without_checkpoint_fails_loudly(tmp_path):
    with pytest.raises(FileNotFoundError):
        train(_cfg(total_transitions=100), tmp_path, resume=True, progress=False)
