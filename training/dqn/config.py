"""DQN configuration: one dataclass, one documented line per field, saved with every run."""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from linkadapt.sim.reward import RewardConfig


def _f(default: Any, doc: str) -> Any:
    """A dataclass field carrying its one-line documentation in ``metadata['doc']``."""
    return field(default=default, metadata={"doc": doc})


@dataclass
class DQNConfig:
    """Hyper-parameters of a DQN run (teacher or any Gymnasium task).

    Counting convention: a *transition* is one decision of one agent (one UE's new
    transmission, or one CartPole step of one sub-env); ``total_transitions`` and the
    schedules count transitions, not vector-env steps.
    """

    # --- task ---
    env: str = _f("randomized", "Simulator scenario name, or a Gymnasium id such as CartPole-v1")
    num_envs: int = _f(256, "Parallel sub-envs (UEs for the simulator) per rollout worker")
    privileged: bool = _f(False, "Append the privileged columns (true SINR, Doppler) to obs")
    episode_slots: int = _f(200, "Simulator episode length in slots (ignored for Gymnasium ids)")
    seed: int = _f(
        0,
        "Seed of torch, numpy, the env and the replay sampler (training range "
        "0-4999, see linkadapt.seeds; env seeds derived from it are >= 100000)",
    )
    reward: str = _f("harq", "Simulator reward: 'harq' (whole HARQ life, delayed) or 'first_tx'")
    retx_charge: float = _f(1.0, "harq reward: charge per retransmission (x payload)")
    loss_penalty: float = _f(1.0, "harq reward: charge of a residual loss (x payload)")
    # --- network ---
    arch: str = _f("mlp-7x128", "Q-network architecture name (see training.networks)")
    # --- budget ---
    total_transitions: int = _f(5_000_000, "Training budget in stored transitions")
    # --- optimisation ---
    learning_rate: float = _f(3e-4, "Adam learning rate")
    adam_eps: float = _f(1e-5, "Adam epsilon (larger than default: steadier with Huber)")
    batch_size: int = _f(512, "Transitions (or sequences for GRU) per gradient step")
    replay_ratio: float = _f(2.0, "Sampled transitions per stored transition (updates pace)")
    learning_starts: int = _f(20_000, "Transitions stored before the first gradient step")
    gamma: float = _f(0.5, "Discount per decision (link adaptation is nearly a bandit)")
    n_step: int = _f(1, "n of the n-step return (in decisions)")
    double_dqn: bool = _f(True, "Double-DQN target: online argmax, target-network value")
    huber_delta: float = _f(1.0, "Huber loss threshold (in reward units)")
    max_grad_norm: float = _f(10.0, "Global gradient-norm clip")
    target_update: str = _f("polyak", "Target network update: 'polyak' or 'hard'")
    tau: float = _f(0.005, "Polyak factor per gradient step (target_update='polyak')")
    target_update_interval: int = _f(1000, "Gradient steps between hard target copies")
    # --- exploration ---
    eps_start: float = _f(1.0, "Initial epsilon of the epsilon-greedy policy")
    eps_end: float = _f(0.02, "Final epsilon")
    eps_fraction: float = _f(0.1, "Fraction of the budget over which epsilon decays linearly")
    # --- replay ---
    buffer_size: int = _f(500_000, "Replay capacity in transitions (GRU: in sequences)")
    prioritized: bool = _f(False, "Proportional prioritized replay instead of uniform")
    per_alpha: float = _f(0.6, "Prioritization exponent alpha")
    per_beta_start: float = _f(0.4, "Importance-sampling exponent beta, annealed to 1")
    seq_len: int = _f(16, "GRU only: decisions per replayed sequence")
    burn_in: int = _f(4, "GRU only: leading decisions that only warm the hidden state")
    # --- rollouts ---
    backend: str = _f("local", "Rollout backend: 'local' (in-process) or 'ray'")
    num_actors: int = _f(2, "Ray backend: number of rollout actors")
    actor_cpus: float = _f(0.5, "Ray backend: CPUs reserved per actor (fractions allowed)")
    ray_address: str | None = _f(None, "Ray backend: cluster address; None starts a local Ray")
    steps_per_collect: int = _f(1, "Vector-env steps per rollout call")
    weight_sync_interval: int = _f(50, "Ray backend: gradient steps between weight pushes")
    # --- bookkeeping ---
    eval_interval: int = _f(250_000, "Transitions between periodic greedy evaluations")
    eval_steps: int = _f(200, "Vector-env steps per periodic evaluation")
    eval_num_envs: int = _f(200, "Sub-envs of the evaluation env")
    eval_kpi_seeds: int = _f(
        4, "Simulator: paired tuning seeds (5000..) of the periodic gain-vs-OLLA check"
    )
    checkpoint_interval: int = _f(1_000_000, "Transitions between checkpoints")
    torch_threads: int = _f(1, "torch intra-op threads (the machine is shared)")

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
        if self.n_step < 1:
            raise ValueError("n_step must be >= 1")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError("gamma must be in [0, 1]")
        if self.burn_in >= self.seq_len:
            raise ValueError("burn_in must be < seq_len")
        if self.batch_size < 1 or self.num_envs < 1 or self.total_transitions < 1:
            raise ValueError("batch_size, num_envs and total_transitions must be >= 1")

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
        """Field name -> its one-line documentation."""
        return {f.name: f.metadata["doc"] for f in fields(cls)}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}
