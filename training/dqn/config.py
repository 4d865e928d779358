"""DQN configuration: one dataclass, a one-line docstring under each field (CleanRL style),
saved with every run as ``config.json``; ``ran-distill train-teacher`` has one option per
field (:mod:`training.dqn.cli`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from linkadapt.sim.reward import RewardConfig
from training.config_fields import field_defaults, field_docs, require

# Range checks of :meth:`DQNConfig.validate`, by field name.
_AT_LEAST_ONE = (
    "num_envs",
    "episode_slots",
    "total_transitions",
    "batch_size",
    "n_step",
    "target_update_interval",
    "buffer_size",
    "seq_len",
    "num_actors",
    "steps_per_collect",
    "weight_sync_interval",
    "eval_interval",
    "eval_steps",
    "eval_num_envs",
    "checkpoint_interval",
    "torch_threads",
)
_NON_NEGATIVE = ("learning_starts", "burn_in", "eval_kpi_seeds", "per_alpha")
_POSITIVE = (
    "learning_rate",
    "adam_eps",
    "replay_ratio",
    "huber_delta",
    "max_grad_norm",
    "actor_cpus",
)
_FRACTIONS = ("gamma", "tau", "eps_start", "eps_end", "eps_fraction", "per_beta_start")


@dataclass
class DQNConfig:
    """Hyper-parameters of a DQN run (teacher or any Gymnasium task).

    Counting convention: a *transition* is one decision of one agent (one UE's new
    transmission, or one CartPole step of one sub-env); ``total_transitions`` and the
    schedules count transitions, not vector-env steps.
    """

    # --- task ---
    env: str = "randomized"
    """Simulator scenario name, or a Gymnasium id such as CartPole-v1"""
    num_envs: int = 256
    """Parallel sub-envs (UEs for the simulator) per rollout worker"""
    privileged: bool = False
    """Append the privileged columns (true SINR, Doppler) to obs"""
    episode_slots: int = 200
    """Simulator episode length in slots (ignored for Gymnasium ids)"""
    seed: int = 0
    """Seed of torch, numpy, envs and replay (training range 0-4999, see linkadapt.seeds)"""
    reward: str = "harq"
    """Simulator reward: 'harq' (whole HARQ life, delayed) or 'first_tx'"""
    retx_charge: float = 1.0
    """harq reward: charge per retransmission (x payload)"""
    loss_penalty: float = 1.0
    """harq reward: charge of a residual loss (x payload)"""
    # --- network ---
    arch: str = "mlp-7x128"
    """Q-network architecture name (see training.networks)"""
    # --- budget ---
    total_transitions: int = 5_000_000
    """Training budget in stored transitions"""
    # --- optimisation ---
    learning_rate: float = 3e-4
    """Adam learning rate"""
    adam_eps: float = 1e-5
    """Adam epsilon (larger than default: steadier with Huber)"""
    batch_size: int = 512
    """Transitions (or sequences for GRU) per gradient step"""
    replay_ratio: float = 2.0
    """Sampled transitions per stored transition (updates pace)"""
    learning_starts: int = 20_000
    """Transitions stored before the first gradient step"""
    gamma: float = 0.5
    """Discount per decision (link adaptation is nearly a bandit)"""
    n_step: int = 1
    """n of the n-step return (in decisions)"""
    double_dqn: bool = True
    """Double-DQN target: online argmax, target-network value"""
    huber_delta: float = 1.0
    """Huber loss threshold (in reward units)"""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip"""
    target_update: str = "polyak"
    """Target network update: 'polyak' or 'hard'"""
    tau: float = 0.005
    """Polyak factor per gradient step (target_update='polyak')"""
    target_update_interval: int = 1000
    """Gradient steps between hard target copies"""
    # --- exploration ---
    eps_start: float = 1.0
    """Initial epsilon of the epsilon-greedy policy"""
    eps_end: float = 0.02
    """Final epsilon"""
    eps_fraction: float = 0.1
    """Fraction of the budget over which epsilon decays linearly"""
    # --- replay ---
    buffer_size: int = 500_000
    """Replay capacity in transitions (GRU: in sequences)"""
    prioritized: bool = False
    """Proportional prioritized replay instead of uniform"""
    per_alpha: float = 0.6
    """Prioritization exponent alpha"""
    per_beta_start: float = 0.4
    """Importance-sampling exponent beta, annealed to 1"""
    seq_len: int = 16
    """GRU only: decisions per replayed sequence"""
    burn_in: int = 4
    """GRU only: leading decisions that only warm the hidden state"""
    # --- rollouts ---
    backend: str = "local"
    """Rollout backend: 'local' (in-process) or 'ray'"""
    num_actors: int = 2
    """Ray backend: number of rollout actors"""
    actor_cpus: float = 0.5
    """Ray backend: CPUs reserved per actor (fractions allowed)"""
    ray_address: str | None = None
    """Ray backend: cluster address; None starts a local Ray"""
    steps_per_collect: int = 1
    """Vector-env steps per rollout call"""
    weight_sync_interval: int = 50
    """Ray backend: gradient steps between weight pushes"""
    # --- bookkeeping ---
    eval_interval: int = 250_000
    """Transitions between periodic greedy evaluations"""
    eval_steps: int = 200
    """Vector-env steps per periodic evaluation"""
    eval_num_envs: int = 200
    """Sub-envs of the evaluation env"""
    eval_kpi_seeds: int = 4
    """Simulator: paired tuning seeds (5000..) of the periodic gain-vs-OLLA check"""
    checkpoint_interval: int = 1_000_000
    """Transitions between checkpoints"""
    torch_threads: int = 1
    """torch intra-op threads (the machine is shared)"""

    def reward_config(self) -> RewardConfig:
        """The simulator reward these fields describe."""
        return RewardConfig(self.reward, self.retx_charge, self.loss_penalty)

    def validate(self) -> None:
        """Raise ``ValueError`` on inconsistent settings."""
        self.reward_config()
        if self.target_update not in ("polyak", "hard"):
            raise ValueError(
                f"target_update must be 'polyak' or 'hard', not {self.target_update!r}"
            )
        if self.backend not in ("local", "ray"):
            raise ValueError(f"backend must be 'local' or 'ray', not {self.backend!r}")
        require(self, _AT_LEAST_ONE, lambda v: v >= 1, ">= 1")
        require(self, _NON_NEGATIVE, lambda v: v >= 0, ">= 0")
        require(self, _POSITIVE, lambda v: v > 0, "> 0")
        require(self, _FRACTIONS, lambda v: 0.0 <= v <= 1.0, "in [0, 1]")
        if self.burn_in >= self.seq_len:
            raise ValueError("burn_in must be < seq_len")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DQNConfig:
        """Build from a dict; unknown keys raise (a typo must not be silently ignored)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown DQNConfig fields: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> DQNConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        """Field name -> its one-line documentation (the docstring under the field)."""
        return field_docs(cls)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Field name -> default value."""
        return field_defaults(cls)
