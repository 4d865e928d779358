"""Replay buffers: uniform ring buffer and proportional prioritized replay (numpy only).

Both store :class:`~training.dqn.transitions.TransitionBatch` rows and sample
``(indices, batch, weights)``; ``weights`` are importance-sampling weights (all ones
for the uniform buffer) and ``update_priorities`` is a no-op there, so the learner
treats them alike.
"""

from __future__ import annotations

import numpy as np

from training.dqn.transitions import TransitionBatch


class ReplayBuffer:
    """Uniform ring buffer of ``capacity`` transitions of ``obs_dim`` floats."""

    def __init__(self, capacity: int, obs_dim: int, seed: int = 0) -> None:
        self.capacity, self.obs_dim = int(capacity), int(obs_dim)
        self.obs = np.zeros((self.capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((self.capacity, obs_dim), np.float32)
        self.action = np.zeros(self.capacity, np.int64)
        self.ret = np.zeros(self.capacity, np.float32)
        self.discount = np.zeros(self.capacity, np.float32)
        self.pos = 0
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, batch: TransitionBatch | None) -> np.ndarray:
        """Store ``batch`` (oldest entries are overwritten); return the slots written."""
        m = 0 if batch is None else len(batch)
        if m == 0:
            return np.zeros(0, np.int64)
        if m > self.capacity:  # only the newest `capacity` rows can survive anyway
            batch = TransitionBatch(
                *(
                    getattr(batch, k)[-self.capacity :]
                    for k in ("obs", "action", "ret", "next_obs", "discount")
                )
            )
            m = self.capacity
        idx = (self.pos + np.arange(m)) % self.capacity
        self.obs[idx] = batch.obs
        self.next_obs[idx] = batch.next_obs
        self.action[idx] = batch.action
        self.ret[idx] = batch.ret
        self.discount[idx] = batch.discount
        self.pos = int((self.pos + m) % self.capacity)
        self.size = min(self.size + m, self.capacity)
        return idx

    def _gather(self, idx: np.ndarray) -> TransitionBatch:
        return TransitionBatch(
            self.obs[idx], self.action[idx], self.ret[idx], self.next_obs[idx], self.discount[idx]
        )

    def sample(
        self, batch_size: int, beta: float = 1.0
    ) -> tuple[np.ndarray, TransitionBatch, np.ndarray]:
        """Uniform sample with replacement: (indices ``[B]``, batch, weights ``[B]`` = 1)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = self.rng.integers(0, self.size, size=batch_size)
        return idx, self._gather(idx), np.ones(batch_size, np.float32)

    def update_priorities(self, idx: np.ndarray, td_error: np.ndarray) -> None:
        """No-op for uniform replay."""

    def state_dict(self) -> dict[str, object]:
        """Everything needed to resume (arrays trimmed to the filled part)."""
        n = self.size
        return {
            "obs": self.obs[:n],
            "next_obs": self.next_obs[:n],
            "action": self.action[:n],
            "ret": self.ret[:n],
            "discount": self.discount[:n],
            "pos": self.pos,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        n = len(state["action"])  # type: ignore[arg-type]
        for k in ("obs", "next_obs", "action", "ret", "discount"):
            getattr(self, k)[:n] = state[k]
        self.size, self.pos = n, int(state["pos"])  # type: ignore[arg-type]
        self.rng.bit_generator.state = state["rng"]


class SumTree:
    """Binary sum tree over ``capacity`` leaves, vectorized updates and prefix-sum search."""

    def __init__(self, capacity: int) -> None:
        self.capacity = 1
        while self.capacity < capacity:
            self.capacity *= 2
        self.tree = np.zeros(2 * self.capacity, np.float64)  # node i has children 2i, 2i+1

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def set(self, idx: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``idx`` to ``values`` and refresh their ancestors."""
        nodes = np.asarray(idx, np.int64) + self.capacity
        self.tree[nodes] = values
        nodes = np.unique(nodes // 2)
        while nodes.size and nodes[0] >= 1:
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes // 2)

    def get(self, idx: np.ndarray) -> np.ndarray:
        return self.tree[np.asarray(idx, np.int64) + self.capacity]

    def find(self, mass: np.ndarray) -> np.ndarray:
        """Leaf index whose prefix-sum interval contains each ``mass`` value."""
        nodes = np.ones(mass.shape[0], np.int64)
        mass = mass.astype(np.float64).copy()
        while nodes[0] < self.capacity:
            left = 2 * nodes
            go_right = mass > self.tree[left]
            mass = np.where(go_right, mass - self.tree[left], mass)
            nodes = np.where(go_right, left + 1, left)
        return nodes - self.capacity


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al. 2016): P(i) ∝ (|δ_i| + ε)^α.

    New transitions get the current maximum priority so each is replayed at least
    about once before its TD error is known.
    """

    def __init__(
        self, capacity: int, obs_dim: int, seed: int = 0, alpha: float = 0.6, eps: float = 1e-3
    ) -> None:
        super().__init__(capacity, obs_dim, seed)
        self.alpha, self.eps = alpha, eps
        self.tree = SumTree(self.capacity)
        self.max_priority = 1.0

    def add(self, batch: TransitionBatch | None) -> np.ndarray:
        idx = super().add(batch)
        if idx.size:
            self.tree.set(idx, np.full(idx.size, self.max_priority**self.alpha))
        return idx

    def sample(
        self, batch_size: int, beta: float = 0.4
    ) -> tuple[np.ndarray, TransitionBatch, np.ndarray]:
        """Stratified proportional sample; weights = (N·P(i))^-β normalised by their max."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        total = self.tree.total
        bounds = np.linspace(0.0, total, batch_size + 1)
        mass = self.rng.uniform(bounds[:-1], bounds[1:])
        idx = np.minimum(self.tree.find(mass), self.size - 1)
        prob = self.tree.get(idx) / total
        weights = (self.size * np.maximum(prob, 1e-12)) ** (-beta)
        return idx, self._gather(idx), (weights / weights.max()).astype(np.float32)

    def update_priorities(self, idx: np.ndarray, td_error: np.ndarray) -> None:
        prio = np.abs(np.asarray(td_error, np.float64)) + self.eps
        self.max_priority = max(self.max_priority, float(prio.max(initial=0.0)))
        self.tree.set(idx, prio**self.alpha)

    def state_dict(self) -> dict[str, object]:
        state = super().state_dict()
        state["priorities"] = self.tree.get(np.arange(self.size))
        state["max_priority"] = self.max_priority
        return state

    def load_state_dict(self, state: dict[str, object]) -> None:
        super().load_state_dict(state)
        self.tree.set(np.arange(self.size), np.asarray(state["priorities"]))
        self.max_priority = float(state["max_priority"])  # type: ignore[arg-type]
