"""Rollouts on the real simulator env: decisions become transitions, nothing else does."""

from __future__ import annotations

import numpy as np

from training.dqn.config import DQNConfig
from training.dqn.rollout import RolloutWorker
from training.vector_envs import make_vector_env, upcoming_decisions


def _cfg(**kw) -> DQNConfig:
    return DQNConfig(
        **{
            **DQNConfig.defaults(),
            "env": "mimo",
            "num_envs": 32,
            "episode_slots": 50,
            "arch": "mlp-2x16",
            **kw,
        }
    )


def test_every_decision_of_a_drop_becomes_exactly_one_transition():
    worker = RolloutWorker(_cfg(n_step=2, reward="first_tx"))
    res = worker.collect(50, epsilon=0.5)  # exactly one drop: all pending get flushed
    assert res.n_decisions > 0
    assert len(res.transitions) == res.n_decisions
    assert len(res.episode_returns) == 32
    # rewards are normalized delivered bits: within [0, 1] per decision, n-step sums <= 2
    assert res.transitions.ret.min() >= 0 and res.transitions.ret.max() <= 2.0 + 1e-6
    assert set(np.round(res.transitions.discount, 6)) <= {0.25, 0.5}


def test_with_delayed_credit_each_decision_is_a_transition_or_counted_as_dropped():
    worker = RolloutWorker(_cfg(n_step=1))  # the harq reward
    res = worker.collect(120, epsilon=0.5)  # two drops and a bit
    assert res.n_decisions > 0
    pending = int(worker.builder._len.sum())
    assert len(res.transitions) + worker.builder.dropped + pending == res.n_decisions
    assert worker.builder.dropped < 0.5 * res.n_decisions  # only the tail of each drop
    # harq credits: at most 1 per decision, at least −(3κ + λ) for a lost block
    assert res.transitions.ret.max() <= 1.0 + 1e-6
    assert res.transitions.ret.min() >= -(1.0 * 3 + 1.0) - 1e-6
    assert (res.transitions.ret < 0).any()  # retransmissions and losses are charged


def test_privileged_observations_have_two_extra_columns():
    worker = RolloutWorker(_cfg(privileged=True))
    from linkadapt.features import OBS_DIM, PRIVILEGED_DIM

    assert worker.obs_dim == OBS_DIM + PRIVILEGED_DIM


def test_upcoming_decisions_predicts_new_tx():
    env = make_vector_env("mimo", 64, 0)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(30):
        expected = upcoming_decisions(env)
        _, _, _, _, info = env.step(rng.integers(0, 28, size=64))
        np.testing.assert_array_equal(expected, info["new_tx"])


def test_randomized_scenario_resamples_between_drops():
    env = make_vector_env("randomized", 16, 0, episode_slots=5)
    env.reset(seed=0)
    drawn = [env.sim.cfg]
    for _ in range(6):
        for _ in range(5):
            _, _, _, trunc, _ = env.step(np.zeros(16, np.int64))
        assert trunc.all()
        drawn.append(env.sim.cfg)  # the deployment of the drop that just started
    assert len({repr(c) for c in drawn}) > 1
