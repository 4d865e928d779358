"""Task-specific hyper-parameter overrides applied by ``train-teacher`` before user flags.

The :class:`~training.dqn.config.DQNConfig` defaults are the link-adaptation teacher's.
Other tasks get a preset here so that the same command trains them sensibly.
"""

from __future__ import annotations

from typing import Any

from training.vector_envs import is_gym_id

# CartPole-v1: greedy return 500 after ~80k transitions (~25 s on one core).
CARTPOLE: dict[str, Any] = {
    "num_envs": 4,
    "arch": "mlp-2x64",
    "learning_rate": 1e-3,
    "batch_size": 64,
    "replay_ratio": 8.0,
    "learning_starts": 1000,
    "gamma": 0.99,
    "n_step": 3,
    "tau": 0.01,
    "eps_fraction": 0.3,
    "eps_end": 0.02,
    "buffer_size": 50_000,
    "eval_interval": 5000,
    "eval_steps": 600,
    "eval_num_envs": 8,
    "checkpoint_interval": 50_000,
}

PRESETS: dict[str, dict[str, Any]] = {"CartPole-v1": CARTPOLE}


def preset_for(env: str) -> dict[str, Any]:
    """Overrides for ``env`` (empty for simulator scenarios: the defaults are theirs)."""
    if env in PRESETS:
        return dict(PRESETS[env])
    if is_gym_id(env):
        return {k: v for k, v in CARTPOLE.items() if k != "arch"}  # a reasonable start
    return {}
