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

from linkadapt.sim.reward import Credit


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
            *(
                np.concatenate([getattr(p, k) for p in parts])
                for k in ("obs", "action", "ret", "next_obs", "discount")
            )
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


MAX_OUTSTANDING = 32  # decisions of one row awaiting credit (≥ its HARQ processes)


class NStepBuilder:
    """Per-row queues of pending decisions; emits n-step transitions when ready.

    State per row (arrays over ``num_envs``): the pending decisions ``(obs, action,
    reward, known)`` in order. A pending decision becomes a transition once its own and
    the next ``n − 1`` rewards are known and ``n`` later decisions exist (bootstrap from
    the n-th one), or when the row's episode ends (bootstrap from the final observation).

    Rewards come one of two ways:

    - immediate (``add(..., credit=None)``): the step's reward belongs to the decision
      taken in it; rewards of non-decision steps are added to the row's latest decision;
    - delayed (``add(..., credit=Credit)``, the simulator's ``harq`` reward): a decision's
      reward arrives in a later step, addressed by the row's decision index (0, 1, ...
      since the episode began). Decisions still without credit when the episode ends are
      dropped (their block's fate was never known).
    """

    def __init__(self, num_envs: int, obs_dim: int, n_step: int, gamma: float) -> None:
        self.num_envs, self.obs_dim, self.n, self.gamma = num_envs, obs_dim, n_step, gamma
        cap = n_step + 1 + MAX_OUTSTANDING
        self._obs = np.zeros((num_envs, cap, obs_dim), np.float32)
        self._act = np.zeros((num_envs, cap), np.int64)
        self._rew = np.zeros((num_envs, cap), np.float64)
        self._known = np.zeros((num_envs, cap), bool)
        self._len = np.zeros(num_envs, np.int64)
        self._head = np.zeros(num_envs, np.int64)  # decision index of queue slot 0
        self._gammas = gamma ** np.arange(n_step + 1)
        self.dropped = 0  # decisions that never became a transition

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        final_obs: np.ndarray,
        decision: np.ndarray | None = None,
        credit: Credit | None = None,
    ) -> TransitionBatch:
        """Record one vector-env step and return the transitions it completed.

        Args:
            obs: float ``[N, D]`` observations the actions were chosen on.
            action: int ``[N]`` actions sent to the env.
            reward: float ``[N]`` rewards of this step (ignored when ``credit`` is given).
            terminated, truncated: bool ``[N]``.
            final_obs: float ``[N, D]`` observation after the step, before any autoreset
                (see :func:`final_observations`).
            decision: bool ``[N]`` rows whose action was a real decision (default: all).
            credit: delayed rewards of earlier (or this step's) decisions.
        """
        decision = np.ones(self.num_envs, bool) if decision is None else np.asarray(decision, bool)
        out: list[TransitionBatch] = []
        if credit is None:
            reward = np.asarray(reward, np.float64)
            late = ~decision & (self._len > 0)  # non-decision rewards: the latest decision's
            rows = np.flatnonzero(late)
            self._rew[rows, self._len[rows] - 1] += reward[rows]
        rows = np.flatnonzero(decision)
        if rows.size:
            full = rows[self._len[rows] == self._act.shape[1]]
            if full.size:  # should not happen: more outstanding blocks than processes
                self._pop(full)
                self.dropped += full.size
            slot = self._len[rows]
            self._obs[rows, slot] = obs[rows]
            self._act[rows, slot] = action[rows]
            self._rew[rows, slot] = 0.0 if credit is not None else reward[rows]
            self._known[rows, slot] = credit is None
            self._len[rows] += 1
        if credit is not None and credit.row.size:
            slot = credit.index - self._head[credit.row]
            ok = (slot >= 0) & (slot < self._len[credit.row])
            r, sl = credit.row[ok], slot[ok]
            self._rew[r, sl] += credit.reward[ok]
            self._known[r, sl] = True
        while True:
            ready = (self._len >= self.n + 1) & self._known[:, : self.n].all(axis=1)
            if not ready.any():
                break
            out.append(self._emit_head(np.flatnonzero(ready)))
        done = np.asarray(terminated, bool) | np.asarray(truncated, bool)
        if done.any():
            out.append(self._flush(np.flatnonzero(done), final_obs, np.asarray(terminated, bool)))
        return TransitionBatch.concat(out, self.obs_dim)

    def _emit_head(self, rows: np.ndarray) -> TransitionBatch:
        """Emit the oldest decision of ``rows`` (each holding ≥ n + 1 entries) and shift."""
        n = self.n
        ret = (self._rew[rows, :n] * self._gammas[:n]).sum(axis=1)
        batch = TransitionBatch(
            self._obs[rows, 0].copy(),
            self._act[rows, 0].copy(),
            ret.astype(np.float32),
            self._obs[rows, n].copy(),
            np.full(rows.size, self._gammas[n], np.float32),
        )
        self._pop(rows)
        return batch

    def _pop(self, rows: np.ndarray) -> None:
        for a in (self._obs, self._act, self._rew, self._known):
            a[rows, :-1] = a[rows, 1:]
        self._len[rows] -= 1
        self._head[rows] += 1

    def _flush(
        self, rows: np.ndarray, final_obs: np.ndarray, terminated: np.ndarray
    ) -> TransitionBatch:
        """Emit the pending decisions of ``rows`` whose rewards are known, then clear.

        Decision i uses the k = min(n, len − i) rewards after it and bootstraps from the
        decision i + k, or from ``final_obs`` when that is past the end of the episode
        (discount 0 if the episode terminated there).
        """
        parts = []
        lengths = self._len[rows]
        idx = np.arange(self.n)
        for i in range(int(lengths.max(initial=0))):
            sel = rows[lengths > i]
            k = np.minimum(self.n, self._len[sel] - i)
            use = idx[None, :] < k[:, None]  # [m, n]
            cols = np.minimum(i + idx, self._act.shape[1] - 1)
            known = np.where(use, self._known[sel][:, cols], True).all(axis=1)
            self.dropped += int((~known).sum())
            sel, k, use = sel[known], k[known], use[known]
            if not sel.size:
                continue
            ret = (np.where(use, self._rew[sel][:, cols], 0.0) * self._gammas[: self.n]).sum(1)
            past_end = i + k >= self._len[sel]
            boot = np.where(
                past_end[:, None],
                final_obs[sel],
                self._obs[sel, np.minimum(i + k, self._act.shape[1] - 1)],
            )
            discount = np.where(past_end & terminated[sel], 0.0, self.gamma**k)
            parts.append(
                TransitionBatch(
                    self._obs[sel, i].copy(),
                    self._act[sel, i].copy(),
                    ret.astype(np.float32),
                    boot.astype(np.float32),
                    discount.astype(np.float32),
                )
            )
        self._len[rows] = 0
        self._head[rows] = 0
        return TransitionBatch.concat(parts, self.obs_dim)
