"""Where distillation data comes from: rollouts (teacher- or student-driven) and synthetic rows.

One :class:`Collector` owns one vector env of the data environment (a simulator preset, a
scenario file, a drive-test trace, or any Gymnasium id) in the teacher's view (privileged
columns included when the teacher reads them). It steps the env with an *actor*:

- ``teacher``: the teacher acts (optionally ε-greedy) and labels;
- ``student``: the student acts, the teacher only labels (DAgger, Ross et al. 2011);
- ``synthetic``: no env; rows sampled over the features' ranges (:mod:`.synthetic`),
  labelled by the teacher.

Only the rows that decide in a step are recorded (the simulator's UEs starting a
transport block; every row in other tasks). A GRU student learns from sequences: each
sub-env's successive decisions, cut into ``T``-long pieces that never cross an episode,
and it acts statefully (its hidden state moves on its decisions only, as in serving).
A recurrent teacher labels statefully in the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.distill.synthetic import Range, ranges_for, sample
from training.distill.teachers import Teacher


@dataclass(frozen=True)
class EnvSpec:
    """The data environment: ``name`` a preset, scenario file or Gymnasium id."""

    name: str
    num_envs: int
    episode_slots: int
    trace: str | None = None

    @property
    def is_gym(self) -> bool:
        from training.vector_envs import is_gym_id

        return is_gym_id(self.name)


@dataclass
class Samples:
    """Labelled rows: ``obs`` float32 ``[n, T, Ds]`` (the student's columns), ``q``
    float32 ``[n, T, A]`` (the teacher's Q-values) and, for feature matching, ``feat``
    float32 ``[n, T, F]`` (the teacher's last hidden layer)."""

    obs: np.ndarray
    q: np.ndarray
    feat: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    @staticmethod
    def concat(parts: list[Samples]) -> Samples:
        feats = [p.feat for p in parts]
        return Samples(
            np.concatenate([p.obs for p in parts]),
            np.concatenate([p.q for p in parts]),
            None if any(f is None for f in feats) else np.concatenate(feats),  # type: ignore[arg-type]
        )

    def take(self, n: int) -> Samples:
        return Samples(self.obs[:n], self.q[:n], None if self.feat is None else self.feat[:n])


def make_env(spec: EnvSpec, seed: int, privileged: bool) -> tuple[Any, np.ndarray]:
    """The vector env of ``spec`` in the teacher's view, reset with ``seed``, and its first
    observation."""
    from training.vector_envs import make_vector_env

    if spec.is_gym:
        env = make_vector_env(spec.name, spec.num_envs, seed)
    else:
        from linkadapt.sim import load_scenario
        from linkadapt.sim.envs import LinkAdaptVectorEnv
        from linkadapt.sim.trace import with_trace

        scenario = load_scenario(spec.name)
        if spec.trace is not None:
            scenario = with_trace(scenario, spec.trace)
        # first_tx: distillation needs no reward, and the HARQ credit bookkeeping costs time
        env = LinkAdaptVectorEnv(
            scenario, spec.num_envs, seed, privileged, spec.episode_slots, reward="first_tx"
        )
    obs, _ = env.reset(seed=seed)
    return env, np.asarray(obs, np.float32)


class Collector:
    """Labelled decisions from one env (see the module doc).

    Args:
        spec: the data environment.
        teacher: labels every recorded row (and acts when the actor is the teacher).
        columns: the student's columns in the teacher's view (:func:`student_columns`).
        seq_len: decisions per recorded sample (1 for feed-forward students).
        with_features: also record the teacher's last hidden layer.
        seed: env seed (training range, :mod:`linkadapt.seeds`).
    """

    def __init__(
        self,
        spec: EnvSpec,
        teacher: Teacher,
        columns: np.ndarray,
        seq_len: int,
        *,
        with_features: bool,
        seed: int,
    ) -> None:
        self.spec, self.teacher, self.columns = spec, teacher, np.asarray(columns)
        self.seq_len, self.with_features, self.seed = seq_len, with_features, seed
        self.env: Any = None
        self.obs: np.ndarray | None = None

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None

    def collect(
        self,
        n: int,
        student: Any | None,
        epsilon: float,
        rng: np.random.Generator,
        progress: Callable[[int], None] | None = None,
    ) -> Samples:
        """``n`` samples with the student acting (``student`` given) or the teacher."""
        import torch

        from training.acting import act_q_network, advance_hidden, epsilon_greedy
        from training.vector_envs import decision_mask, upcoming_decisions

        if self.env is None or self.obs is None:
            self.env, self.obs = make_env(self.spec, self.seed, self.teacher.privileged)
        env, teacher, cols, t_len = self.env, self.teacher, self.columns, self.seq_len
        n_envs = env.num_envs
        obs = self.obs
        student_h = student.initial_state(n_envs) if _recurrent(student) else None
        teacher_h = teacher.net.initial_state(n_envs) if teacher.recurrent else None
        width = teacher.feature_width() if self.with_features else 0
        buf_obs = np.zeros((n_envs, t_len, len(cols)), np.float32)
        buf_q = np.zeros((n_envs, t_len, teacher.n_actions), np.float32)
        buf_f = np.zeros((n_envs, t_len, width), np.float32)
        fill = np.zeros(n_envs, np.int64)
        out: list[Samples] = []
        have = 0

        def pick(q: torch.Tensor) -> np.ndarray:
            return epsilon_greedy(q, epsilon, rng)

        while have < n:
            deciding = upcoming_decisions(env)
            rows = np.arange(n_envs) if deciding is None else np.flatnonzero(deciding)
            if rows.size == 0:  # nobody starts a transport block this slot
                next_obs, _, term, trunc, _ = env.step(np.zeros(n_envs, np.int64))
                done = torch.as_tensor(np.asarray(term, bool) | np.asarray(trunc, bool))
                fill[done.numpy()] = 0
                for h in (teacher_h, student_h):
                    if h is not None:
                        h[:, done] = 0.0
                obs = np.asarray(next_obs, np.float32)
                continue
            q_t, h_rows = teacher.q_values(
                obs[rows], None if teacher_h is None else teacher_h[:, rows]
            )
            if student is None:
                actions = np.zeros(n_envs, np.int64)
                actions[rows] = pick(torch.from_numpy(q_t))
                s_next = None
            else:
                actions, s_next = act_q_network(student, obs[:, cols], deciding, pick, student_h)
            next_obs, _, term, trunc, info = env.step(actions)
            done = np.asarray(term, bool) | np.asarray(trunc, bool)
            decided = decision_mask(info, n_envs)
            if teacher_h is not None and h_rows is not None:
                teacher_h[:, rows] = h_rows
                teacher_h[:, torch.as_tensor(done)] = 0.0
            if student_h is not None and s_next is not None:
                advance_hidden(student_h, s_next, decided, done)
            # record: each deciding row appends its decision to its sequence buffer
            slot = fill[rows]
            buf_obs[rows, slot] = obs[rows][:, cols]
            buf_q[rows, slot] = q_t
            if width:
                buf_f[rows, slot] = teacher.hidden_features(obs[rows])
            fill[rows] += 1
            full = np.flatnonzero(fill >= t_len)
            if full.size:
                out.append(
                    Samples(
                        buf_obs[full].copy(),
                        buf_q[full].copy(),
                        buf_f[full].copy() if width else None,
                    )
                )
                fill[full] = 0
                if progress is not None:
                    progress(int(min(full.size, n - have)))
                have += full.size
            fill[done] = 0  # a sequence never crosses an episode boundary
            obs = np.asarray(next_obs, np.float32)
        # the env goes on from here next time; sequence buffers restart (a cut, not a leak)
        self.obs = obs
        return Samples.concat(out).take(n)


class SyntheticSource:
    """Rows sampled over the features' ranges, labelled by the teacher (see module doc)."""

    def __init__(
        self,
        teacher: Teacher,
        columns: np.ndarray,
        seq_len: int,
        ranges: list[Range],
        *,
        with_features: bool,
    ) -> None:
        self.teacher, self.columns, self.seq_len = teacher, np.asarray(columns), seq_len
        self.ranges, self.with_features = ranges, with_features

    def collect(
        self, n: int, rng: np.random.Generator, progress: Callable[[int], None] | None = None
    ) -> Samples:
        """``n`` samples of ``seq_len`` independent rows each."""
        rows = sample(self.ranges, n * self.seq_len, rng)
        q, _ = self.teacher.q_values(rows)
        feat = self.teacher.hidden_features(rows) if self.with_features else None
        t = self.seq_len
        if progress is not None:
            progress(n)
        return Samples(
            rows[:, self.columns].reshape(n, t, -1),
            q.reshape(n, t, -1).astype(np.float32),
            None if feat is None else feat.reshape(n, t, -1).astype(np.float32),
        )


def synthetic_ranges(spec: EnvSpec, teacher: Teacher, seed: int) -> list[Range]:
    """The ranges to sample for ``teacher``'s view: declared by name for the simulator;
    for a Gymnasium task its observation bounds, a short teacher rollout filling in the
    unbounded ones."""
    if teacher.feature_names is not None:
        return ranges_for(teacher.feature_names)
    env, obs = make_env(spec, seed, privileged=False)
    space = env.single_observation_space
    low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
    pilot = None
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        cols = np.arange(teacher.obs_dim)
        probe = Collector(spec, teacher, cols, 1, with_features=False, seed=seed)
        probe.env, probe.obs = env, obs
        pilot = probe.collect(2000, None, 0.1, np.random.default_rng(seed)).obs[:, 0]
    env.close()
    return ranges_for(None, low, high, pilot)


def _recurrent(net: Any) -> bool:
    return bool(getattr(net, "recurrent", False))
