"""Turn vector-env steps into n-step DQN transitions, per agent, vectorized over agents.

The simulator's vector env is natively batched: each row is one UE, and only rows whose
``info["new_tx"]`` is True made a real MCS decision in that step (the others were HARQ
retransmissions or idle slots, where the action was ignored). A transition therefore
links one *decision* of a row to that row's *next decision* (a semi-MDP over decisions):
rewards earned by a row between two of its decisions are credited to the earlier one.
For ordinary Gymnasium envs every step is a decision and this reduces to the usual
n-step transition.

Episode ends (``terminated | truncated``, SAME_STEP autoreset) flush every pending
decision of the row with the final observation as bootstrap state; the discount is
zeroed only on ``terminated`` (a time-limit truncation must still bootstrap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TransitionBatch:
    """``m`` transitions; arrays share the leading dimension ``m``.

    Attributes:
        obs: float32 ``[m, obs_dim]`` decision observation.
        action: int64 ``[m]``.
        ret: float32 ``[m]`` n-step discounted return of rewards (reward units of the env).
        next_obs: float32 ``[m, obs_dim]`` bootstrap observation.
        discount: float32 ``[m]`` gamma**k, or 0 when the episode terminated inside.
    """

    obs: np.ndarray
    action: np.ndarray
    ret: np.ndarray
    next_obs: np.ndarray
    discount: np.ndarray

    def __len__(self) -> int:
        return int(self.action.shape[0])

    @classmethod
    def empty(cls, obs_dim: int) -> TransitionBatch:
        return cls(
            np.zeros((0, obs_dim), np.float32),
            np.zeros(0, np.int64),
            np.zeros(0, np.float32),
            np.zeros((0, obs_dim), np.float32),
            np.zeros(0, np.float32),
        )

    @classmethod
    def concat(cls, parts: list[TransitionBatch], obs_dim: int) -> TransitionBatch:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty(obs_dim)
        return cls(
            *(np.concatenate([getattr(p, k) for p in parts]) for k in
              ("obs", "action", "ret", "next_obs", "discount"))
        )


def final_observations(info: dict, next_obs: np.ndarray, done: np.ndarray) -> np.ndarray:
    """The true last observation of each row: ``info['final_obs']`` where done, else ``next_obs``.

    Handles both a float array (our simulator) and Gymnasium's object array of per-env
    observations with ``None`` where not done.
    """
    out = np.array(next_obs, dtype=np.float32, copy=True)
    if not done.any() or "final_obs" not in info:
        return out
    final = info["final_obs"]
    rows = np.flatnonzero(done)
    if isinstance(final, np.ndarray) and final.dtype != object:
        out[rows] = final[rows]
    else:
        for r in rows:
            if final[r] is not None:
                out[r] = np.asarray(final[r], dtype=np.float32)
    return out


class NStepBuilder:
    """Per-row queues of pending decisions; emits n-step transitions when ready.

    State per row (arrays over ``num_envs``): up to ``n`` pending decisions
    ``(obs, action, reward)``. A pending decision becomes a transition once ``n``
    later decisions of the same row exist (bootstrap from the n-th one) or the row's
    episode ends (bootstrap from the final observation).
    """

    def __init__(self, num_envs: int, obs_dim: int, n_step: int, gamma: float) -> None:
        self.num_envs, self.obs_dim, self.n, self.gamma = num_envs, obs_dim, n_step, gamma
        # n + 1 slots: the n pending decisions plus the newest one that serves as bootstrap.
        self._obs = np.zeros((num_envs, n_step + 1, obs_dim), np.float32)
        self._act = np.zeros((num_envs, n_step + 1), np.int64)
        self._rew = np.zeros((num_envs, n_step + 1), np.float64)
        self._len = np.zeros(num_envs, np.int64)
        self._gammas = gamma ** np.arange(n_step + 1)

    def reset(self) -> None:
        """Drop all pending decisions (after an env reset)."""
        self._len[:] = 0

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        final_obs: np.ndarray,
        decision: np.ndarray | None = None,
    ) -> TransitionBatch:
        """Record one vector-env step and return the transitions it completed.

        Args:
            obs: float ``[N, D]`` observations the actions were chosen on.
            action: int ``[N]`` actions sent to the env.
            reward: float ``[N]`` rewards of this step.
            terminated, truncated: bool ``[N]``.
            final_obs: float ``[N, D]`` observation after the step, before any autoreset
                (see :func:`final_observations`).
            decision: bool ``[N]`` rows whose action was a real decision (default: all).
        """
        n_env = self.num_envs
        decision = np.ones(n_env, bool) if decision is None else np.asarray(decision, bool)
        reward = np.asarray(reward, np.float64)
        out: list[TransitionBatch] = []

        # Rewards of non-decision steps belong to the row's latest pending decision.
        credit = ~decision & (self._len > 0)
        if credit.any():
            rows = np.flatnonzero(credit)
            self._rew[rows, self._len[rows] - 1] += reward[rows]

        rows = np.flatnonzero(decision)
        if rows.size:
            slot = self._len[rows]
            self._obs[rows, slot] = obs[rows]
            self._act[rows, slot] = action[rows]
            self._rew[rows, slot] = reward[rows]
            self._len[rows] += 1
            full = rows[self._len[rows] == self.n + 1]
            if full.size:
                out.append(self._emit_head(full))

        done = np.asarray(terminated, bool) | np.asarray(truncated, bool)
        if done.any():
            out.append(self._flush(np.flatnonzero(done), final_obs, np.asarray(terminated, bool)))
        return TransitionBatch.concat(out, self.obs_dim)

    def _emit_head(self, rows: np.ndarray) -> TransitionBatch:
        """Emit the oldest decision of ``rows`` (each holding n + 1 entries) and shift."""
        n = self.n
        ret = (self._rew[rows, :n] * self._gammas[:n]).sum(axis=1)
        batch = TransitionBatch(
            self._obs[rows, 0].copy(),
            self._act[rows, 0].copy(),
            ret.astype(np.float32),
            self._obs[rows, n].copy(),
            np.full(rows.size, self._gammas[n], np.float32),
        )
        self._obs[rows, :-1] = self._obs[rows, 1:]
        self._act[rows, :-1] = self._act[rows, 1:]
        self._rew[rows, :-1] = self._rew[rows, 1:]
        self._len[rows] -= 1
        return batch

    def _flush(
        self, rows: np.ndarray, final_obs: np.ndarray, terminated: np.ndarray
    ) -> TransitionBatch:
        """Emit every pending decision of ``rows`` bootstrapping from ``final_obs``."""
        parts = []
        lengths = self._len[rows]
        for i in range(int(lengths.max(initial=0))):
            sel = rows[lengths > i]
            k = self._len[sel] - i  # rewards from decision i to the end of the episode
            idx = np.arange(self.n + 1)
            mask = (idx[None, :] >= i) & (idx[None, :] < self._len[sel][:, None])
            disc = np.where(mask, self.gamma ** np.clip(idx[None, :] - i, 0, None), 0.0)
            ret = (self._rew[sel] * disc).sum(axis=1)
            discount = np.where(terminated[sel], 0.0, self.gamma**k)
            parts.append(TransitionBatch(
                self._obs[sel, i].copy(),
                self._act[sel, i].copy(),
                ret.astype(np.float32),
                final_obs[sel].astype(np.float32),
                discount.astype(np.float32),
            ))
        self._len[rows] = 0
        return TransitionBatch.concat(parts, self.obs_dim)
