"""Sequence replay for the recurrent (GRU) Q-network: DRQN with stored state and burn-in.

Each row's decisions are cut into overlapping windows of ``seq_len`` decisions plus the
bootstrap observation that follows them. A window stores the actor's hidden state
before its first decision (R2D2's "stored state"); the first ``burn_in`` decisions only
warm the state up and carry no loss. Consecutive windows overlap by ``burn_in``
decisions, so every decision is trained on exactly once outside a burn-in. An episode
end closes the row's window early (``length < seq_len``, padded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from linkadapt.sim.reward import Credit
from training.dqn.config import DQNConfig
from training.dqn.learner import DQNLearner, UpdateStats
from training.dqn.transitions import MAX_OUTSTANDING

_FIELDS = ("obs", "action", "reward", "length", "terminal", "h0")


@dataclass
class SequenceBatch:
    """``m`` windows of up to ``L`` decisions.

    Attributes:
        obs: float32 ``[m, L + 1, obs_dim]``; ``obs[i, length[i]]`` is the bootstrap obs.
        action: int64 ``[m, L]``.
        reward: float32 ``[m, L]`` reward credited to each decision.
        length: int64 ``[m]`` valid decisions (``<= L``).
        terminal: bool ``[m]`` the episode terminated after the last valid decision.
        h0: float32 ``[m, H]`` actor hidden state before decision 0.
    """

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    length: np.ndarray
    terminal: np.ndarray
    h0: np.ndarray

    def __len__(self) -> int:
        return int(self.length.shape[0])

    @classmethod
    def concat(cls, parts: list[SequenceBatch | None]) -> SequenceBatch | None:
        parts = [p for p in parts if p is not None and len(p)]
        if not parts:
            return None
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in _FIELDS))


class SequenceBuilder:
    """Per-row decision windows for sequence replay (vectorized over rows).

    Rewards are immediate or delayed exactly as in :class:`NStepBuilder`: with a
    ``credit``, a window is emitted only once the rewards of its decisions are known, and
    at an episode end the window is cut before its first decision without credit.
    """

    def __init__(
        self, num_envs: int, obs_dim: int, hidden: int, seq_len: int, burn_in: int
    ) -> None:
        self.L, self.burn_in = seq_len, burn_in
        cap = seq_len + 1 + MAX_OUTSTANDING
        self._obs = np.zeros((num_envs, cap, obs_dim), np.float32)
        self._act = np.zeros((num_envs, cap), np.int64)
        self._rew = np.zeros((num_envs, cap), np.float32)
        self._known = np.zeros((num_envs, cap), bool)
        self._h = np.zeros((num_envs, cap, hidden), np.float32)
        self._len = np.zeros(num_envs, np.int64)
        self._head = np.zeros(num_envs, np.int64)  # decision index of slot 0

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        final_obs: np.ndarray,
        decision: np.ndarray,
        hidden: torch.Tensor,
        credit: Credit | None = None,
    ) -> SequenceBatch | None:
        """Record one step (same arguments as ``NStepBuilder.add`` plus the hidden state
        ``[1, N, H]`` the actions were chosen with); return completed windows."""
        out: list[SequenceBatch | None] = []
        if credit is None:
            late = np.flatnonzero(~decision & (self._len > 0))
            self._rew[late, self._len[late] - 1] += reward[late]
        rows = np.flatnonzero(decision)
        if rows.size:
            slot = self._len[rows]
            if (slot >= self._act.shape[1]).any():
                raise RuntimeError("more decisions awaiting credit than MAX_OUTSTANDING")
            self._obs[rows, slot] = obs[rows]
            self._act[rows, slot] = action[rows]
            self._rew[rows, slot] = 0.0 if credit is not None else reward[rows]
            self._known[rows, slot] = credit is None
            self._h[rows, slot] = hidden[0].numpy()[rows]
            self._len[rows] += 1
        if credit is not None and credit.row.size:
            slot = credit.index - self._head[credit.row]
            ok = (slot >= 0) & (slot < self._len[credit.row])
            self._rew[credit.row[ok], slot[ok]] += credit.reward[ok]
            self._known[credit.row[ok], slot[ok]] = True
        while True:
            full = np.flatnonzero((self._len >= self.L + 1) & self._known[:, : self.L].all(axis=1))
            if not full.size:
                break
            out.append(
                self._emit(
                    full,
                    self._obs[full, self.L],
                    np.zeros(full.size, bool),
                    np.full(full.size, self.L),
                )
            )
            shift = self.L - self.burn_in  # keep burn_in + 1 entries as the next warm-up
            for arr in (self._obs, self._act, self._rew, self._known, self._h):
                arr[full, :-shift] = arr[full, shift:]
            self._len[full] -= shift
            self._head[full] += shift
        done = np.asarray(terminated, bool) | np.asarray(truncated, bool)
        if done.any():
            rows = np.flatnonzero(done)
            pending = np.arange(self._act.shape[1])[None, :] < self._len[rows, None]
            unknown = pending & ~self._known[rows]
            length = np.where(unknown.any(axis=1), unknown.argmax(axis=1), self._len[rows])
            length = np.minimum(length, self.L)
            ok = length > self.burn_in  # shorter windows would carry no loss at all
            if ok.any():
                r, k = rows[ok], length[ok]
                ends = k >= self._len[r]
                boot = np.where(
                    ends[:, None], final_obs[r], self._obs[r, np.minimum(k, self._act.shape[1] - 1)]
                )
                out.append(self._emit(r, boot, np.asarray(terminated, bool)[r] & ends, k))
            self._len[rows] = 0
            self._head[rows] = 0
        return SequenceBatch.concat(out)

    def _emit(
        self, rows: np.ndarray, bootstrap: np.ndarray, terminal: np.ndarray, length: np.ndarray
    ) -> SequenceBatch:
        obs = self._obs[rows, : self.L + 1].copy()
        obs[np.arange(rows.size), length] = bootstrap
        valid = np.arange(self.L)[None, :] < length[:, None]
        return SequenceBatch(
            obs,
            np.where(valid, self._act[rows, : self.L], 0),
            np.where(valid, self._rew[rows, : self.L], 0.0).astype(np.float32),
            length.astype(np.int64),
            terminal.copy(),
            self._h[rows, 0].copy(),
        )


class SequenceReplay:
    """Uniform ring buffer of :class:`SequenceBatch` windows (``capacity`` windows)."""

    def __init__(
        self, capacity: int, obs_dim: int, seq_len: int, hidden: int, seed: int = 0
    ) -> None:
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, seq_len + 1, obs_dim), np.float32)
        self.action = np.zeros((capacity, seq_len), np.int64)
        self.reward = np.zeros((capacity, seq_len), np.float32)
        self.length = np.zeros(capacity, np.int64)
        self.terminal = np.zeros(capacity, bool)
        self.h0 = np.zeros((capacity, hidden), np.float32)
        self.pos = self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, batch: SequenceBatch | None) -> np.ndarray:
        if batch is None or len(batch) == 0:
            return np.zeros(0, np.int64)
        m = min(len(batch), self.capacity)
        idx = (self.pos + np.arange(m)) % self.capacity
        for k in _FIELDS:
            getattr(self, k)[idx] = getattr(batch, k)[-m:]
        self.pos = int((self.pos + m) % self.capacity)
        self.size = min(self.size + m, self.capacity)
        return idx

    def sample(
        self, batch_size: int, beta: float = 1.0
    ) -> tuple[np.ndarray, SequenceBatch, np.ndarray]:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = self.rng.integers(0, self.size, size=batch_size)
        batch = SequenceBatch(*(getattr(self, k)[idx] for k in _FIELDS))
        return idx, batch, np.ones(batch_size, np.float32)

    def update_priorities(self, idx: np.ndarray, td_error: np.ndarray) -> None:
        """Sequence replay is uniform; priorities are ignored."""

    def state_dict(self) -> dict[str, object]:
        n = self.size
        state: dict[str, object] = {k: getattr(self, k)[:n] for k in _FIELDS}
        state.update(pos=self.pos, rng=self.rng.bit_generator.state)
        return state

    def load_state_dict(self, state: dict[str, object]) -> None:
        n = len(state["length"])  # type: ignore[arg-type]
        for k in _FIELDS:
            getattr(self, k)[:n] = state[k]
        self.size, self.pos = n, int(state["pos"])  # type: ignore[arg-type]
        self.rng.bit_generator.state = state["rng"]


def sequence_targets(
    q_boot: torch.Tensor, batch: SequenceBatch, gamma: float, n_step: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """n-step targets inside windows.

    Args:
        q_boot: ``[m, L + 1]`` bootstrap value of each position (already double-DQN'd).
    Returns:
        (targets ``[m, L]``, valid mask ``[m, L]``); a target at decision t sums the
        rewards of decisions t..b−1 with b = min(t + n, length) and bootstraps from
        position b (no bootstrap if b == length and the window ended in termination).
    """
    m, L = batch.action.shape
    length = torch.as_tensor(batch.length)
    reward = torch.as_tensor(batch.reward)
    t = torch.arange(L)
    b = torch.minimum(t[None, :] + n_step, length[:, None])  # [m, L]
    ret = torch.zeros(m, L)
    for j in range(n_step):
        pos = t + j
        in_range = (pos[None, :] < b) & (pos[None, :] < L)
        r = reward[:, pos.clamp(max=L - 1)]
        ret = ret + torch.where(in_range, (gamma**j) * r, torch.zeros(()))
    boot = q_boot.gather(1, b)
    disc = torch.pow(torch.tensor(gamma), (b - t[None, :]).float())
    ends_terminal = torch.as_tensor(batch.terminal)[:, None] & (b == length[:, None])
    disc = torch.where(ends_terminal, torch.zeros(()), disc)
    valid = t[None, :] < length[:, None]
    return ret + disc * boot, valid


class RecurrentDQNLearner(DQNLearner):
    """DQN learner over sequences; loss on decisions after the burn-in only."""

    def __init__(self, online: nn.Module, cfg: DQNConfig) -> None:
        super().__init__(online, cfg)

    def update(self, batch: SequenceBatch, weights: np.ndarray | None = None) -> UpdateStats:
        obs = torch.as_tensor(batch.obs)
        h0 = torch.as_tensor(batch.h0).unsqueeze(0)
        q_all, _ = self.online.forward_seq(obs, h0)  # [m, L+1, A]
        with torch.no_grad():
            q_tgt, _ = self.target.forward_seq(obs, h0)
            if self.cfg.double_dqn:
                best = q_all.detach().argmax(dim=2, keepdim=True)
                q_boot = q_tgt.gather(2, best).squeeze(2)
            else:
                q_boot = q_tgt.max(dim=2).values
            y, valid = sequence_targets(q_boot, batch, self.cfg.gamma, self.cfg.n_step)
        L = batch.action.shape[1]
        q = q_all[:, :L].gather(2, torch.as_tensor(batch.action).unsqueeze(2)).squeeze(2)
        mask = valid.clone()
        mask[:, : self.cfg.burn_in] = False
        per = F.huber_loss(q, y, reduction="none", delta=self.cfg.huber_delta)
        loss = (per * mask).sum() / mask.sum().clamp(min=1)
        self._step(loss)
        td = ((q - y).abs() * mask).detach().sum(1) / mask.sum(1).clamp(min=1)
        q_mean = float(q[mask].detach().mean()) if mask.any() else 0.0
        return UpdateStats(float(loss.detach()), q_mean, td.numpy())
