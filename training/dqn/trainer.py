"""The DQN training loop (CleanRL-style: one readable function plus small helpers).

``train(cfg, out_dir)`` writes into ``out_dir``:

- ``config.json``: the :class:`DQNConfig` of the run;
- ``curve.csv`` / ``curve.png``: learning curve (one row per log interval);
- ``checkpoint.pt`` (+ ``replay.npz``): everything ``--resume`` needs;
- ``model.pt``: final online-network ``state_dict`` (load with ``weights_only=True``).

``ran-distill train-teacher`` (:mod:`training.dqn.cli`) then adds ``manifest.json``
(:func:`training.artifacts.write_teacher_manifest`).
"""

from __future__ import annotations

import csv
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from linkadapt.seeds import tuning_seeds
from linkadapt.sim.evaluation import baseline_factory, evaluate
from training.dqn.backends import make_backend
from training.dqn.config import DQNConfig
from training.dqn.greedy_eval import GreedyEvalResult, greedy_evaluate
from training.dqn.learner import DQNLearner
from training.dqn.replay import PrioritizedReplayBuffer, ReplayBuffer
from training.dqn.sequence import RecurrentDQNLearner, SequenceReplay
from training.networks import build_qnet, is_recurrent
from training.plots import plot_learning_curve
from training.policies import TorchQPolicy
from training.vector_envs import env_dims, is_gym_id, make_vector_env

CURVE_FIELDS = [
    "transitions",
    "env_steps",
    "updates",
    "epsilon",
    "wall_s",
    "transitions_per_s",
    "train_reward_per_decision",
    "train_episode_return",
    "train_throughput_mbps",
    "loss",
    "q_mean",
    "eval_return",
    "eval_reward_per_decision",
    "eval_throughput_mbps",
    "eval_gain_vs_olla_pct",
]


@dataclass
class TrainResult:
    """Outcome of :func:`train`."""

    out_dir: Path
    transitions: int
    updates: int
    wall_s: float
    final_eval: GreedyEvalResult | None
    curve: list[dict[str, float]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy's legacy global RNG and torch (our own RNGs are explicit)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - third-party code may use the global RNG
    torch.manual_seed(seed)


def linear_epsilon(cfg: DQNConfig, transitions: int) -> float:
    """ε decays linearly from ``eps_start`` to ``eps_end`` over ``eps_fraction`` of the budget."""
    span = max(1.0, cfg.eps_fraction * cfg.total_transitions)
    frac = min(1.0, transitions / span)
    return cfg.eps_start + frac * (cfg.eps_end - cfg.eps_start)


def probe_dims(cfg: DQNConfig) -> tuple[int, int]:
    """(obs_dim, n_actions) of the configured env, from a throw-away single-env instance."""
    env = make_vector_env(
        cfg.env, 1, cfg.seed, privileged=cfg.privileged, episode_slots=cfg.episode_slots
    )
    try:
        return env_dims(env)
    finally:
        env.close()


def paired_gain_vs_olla(net: torch.nn.Module, cfg: DQNConfig, cache: dict[str, object]) -> float:
    """Mean paired throughput gain (%) of the greedy ``net`` over OLLA on ``cfg.env``.

    Uses :func:`linkadapt.sim.evaluation.evaluate` on the first ``eval_kpi_seeds`` *tuning*
    seeds (:func:`linkadapt.seeds.tuning_seeds`: a number that steers training decisions
    must not come from the evaluation seeds the final numbers are reported on) with
    ``eval_num_envs`` UEs × ``eval_steps`` slots; OLLA's results are computed once and
    cached (same seeds → same channels → same OLLA KPIs). NaN for Gymnasium tasks,
    privileged nets (the evaluation simulator emits student observations) or 0 seeds.
    """
    if is_gym_id(cfg.env) or cfg.privileged or cfg.eval_kpi_seeds < 1:
        return math.nan
    seeds = tuning_seeds(cfg.eval_kpi_seeds)
    if "olla" not in cache:
        cache["olla"] = evaluate(
            {"olla": baseline_factory("olla")}, cfg.env, seeds, cfg.eval_num_envs, cfg.eval_steps
        )
    was_training = net.training
    ours = evaluate(
        {"net": lambda n: TorchQPolicy(net)}, cfg.env, seeds, cfg.eval_num_envs, cfg.eval_steps
    )
    net.train(was_training)
    ref = cache["olla"].values("olla", "throughput_mbps")
    thr = ours.values("net", "throughput_mbps")
    return float(np.mean(100.0 * (thr / np.maximum(ref, 1e-12) - 1.0)))


def _make_replay(cfg: DQNConfig, obs_dim: int, net: torch.nn.Module):
    if is_recurrent(net):
        return SequenceReplay(cfg.buffer_size, obs_dim, cfg.seq_len, net.hidden_size, cfg.seed)
    if cfg.prioritized:
        return PrioritizedReplayBuffer(cfg.buffer_size, obs_dim, cfg.seed, alpha=cfg.per_alpha)
    return ReplayBuffer(cfg.buffer_size, obs_dim, cfg.seed)


class _Progress:
    """tqdm bar (or nothing) showing live reward, throughput and speed."""

    def __init__(self, enabled: bool, total: int, initial: int) -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total,
                initial=initial,
                unit="tr",
                unit_scale=True,
                dynamic_ncols=True,
                desc="train",
                mininterval=1.0,
            )

    def update(self, n: int, **postfix: float) -> None:
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(
                {k: f"{v:.3g}" for k, v in postfix.items() if not math.isnan(v)}, refresh=False
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def train(
    cfg: DQNConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    log_interval: int | None = None,
) -> TrainResult:
    """Train a DQN agent as configured; write artifacts to ``out_dir``; return a summary.

    Args:
        cfg: the run configuration (validated here, saved as ``config.json``).
        out_dir: run directory (created).
        resume: continue from ``out_dir/checkpoint.pt`` (the saved config wins over
            ``cfg`` except for ``total_transitions``, which may be raised).
        progress: show a tqdm progress bar.
        log_interval: transitions between learning-curve rows (default: budget / 100).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    if resume:
        if not ckpt_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}")
        saved = DQNConfig.load(out / "config.json")
        saved.total_transitions = max(saved.total_transitions, cfg.total_transitions)
        cfg = saved
    cfg.validate()
    cfg.save(out / "config.json")
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.torch_threads)

    obs_dim, n_actions = probe_dims(cfg)
    net = build_qnet(cfg.arch, obs_dim, n_actions)
    recurrent = is_recurrent(net)
    learner = (RecurrentDQNLearner if recurrent else DQNLearner)(net, cfg)
    replay = _make_replay(cfg, obs_dim, net)

    transitions = env_steps = 0
    wall_before = 0.0
    curve: list[dict[str, float]] = []
    if resume:
        state = torch.load(ckpt_path, weights_only=True)
        learner.load_state_dict(state["learner"])
        transitions, env_steps = int(state["transitions"]), int(state["env_steps"])
        wall_before = float(state["wall_s"])
        replay_file = out / "replay.npz"
        if replay_file.exists():
            with np.load(replay_file, allow_pickle=False) as z:
                rs = {k: z[k] for k in z.files}
            rs["pos"] = int(rs["pos"])
            rs["rng"] = state["replay_rng"]
            if "max_priority" in rs:
                rs["max_priority"] = float(rs["max_priority"])
            replay.load_state_dict(rs)
        curve = _read_curve(out / "curve.csv")
        # A resumed run sees new env seeds, not a replay of the worlds already trained on.
        cfg_for_workers = DQNConfig.from_dict({**cfg.__dict__, "seed": cfg.seed + transitions})
    else:
        cfg_for_workers = cfg

    backend = make_backend(cfg_for_workers, net)
    samples_per_update = cfg.batch_size * ((cfg.seq_len - cfg.burn_in) if recurrent else 1)
    log_every = log_interval or max(1, cfg.total_transitions // 100)
    next_log = (transitions // log_every + 1) * log_every
    next_eval = (transitions // cfg.eval_interval + 1) * cfg.eval_interval
    next_ckpt = (transitions // cfg.checkpoint_interval + 1) * cfg.checkpoint_interval
    last_sync = learner.updates
    window_rewards: deque[tuple[float, int]] = deque(maxlen=50)
    window_returns: deque[float] = deque(maxlen=100)
    window_tput: deque[float] = deque(maxlen=50)
    losses: deque[tuple[float, float]] = deque(maxlen=100)
    last_eval: GreedyEvalResult | None = None
    bar = _Progress(progress, cfg.total_transitions, transitions)
    t0 = time.perf_counter()
    t_mark, tr_mark = t0, transitions

    def wall() -> float:
        return wall_before + time.perf_counter() - t0

    olla_cache: dict[str, object] = {}
    last_gain = math.nan

    def run_eval() -> GreedyEvalResult:
        nonlocal last_gain
        last_gain = paired_gain_vs_olla(net, cfg, olla_cache)
        # seed + 1 000 003 >= 100 000: in the training range (linkadapt.seeds), away from
        # the tuning and evaluation seeds.
        return greedy_evaluate(
            net,
            cfg.env,
            num_envs=cfg.eval_num_envs,
            steps=cfg.eval_steps,
            seed=cfg.seed + 1_000_003,
            privileged=cfg.privileged,
            episode_slots=cfg.episode_slots,
            reward=cfg.reward_config(),
        )

    def save_checkpoint() -> None:
        rs = replay.state_dict()
        rng_state = rs.pop("rng")
        np.savez(out / "replay.npz", **{k: np.asarray(v) for k, v in rs.items()})
        torch.save(
            {
                "learner": learner.state_dict(),
                "transitions": transitions,
                "env_steps": env_steps,
                "wall_s": wall(),
                "replay_rng": rng_state,
            },
            ckpt_path,
        )

    try:
        while transitions < cfg.total_transitions:
            eps = linear_epsilon(cfg, transitions)
            for res in backend.collect(eps):
                replay.add(res.transitions)
                new = res.n_decisions
                transitions += new
                env_steps += res.env_steps
                window_rewards.append((res.reward_sum, res.n_decisions))
                window_returns.extend(res.episode_returns)
                if not math.isnan(res.throughput_mbps):
                    window_tput.append(res.throughput_mbps)
                bar.update(
                    new,
                    eps=eps,
                    ret=_mean(window_returns),
                    rew=_ratio(window_rewards),
                    thr=_mean(window_tput),
                )

            # Replay ratio: sampled transitions per stored transition, once warmed up.
            due = (
                int(
                    max(0, transitions - cfg.learning_starts)
                    * cfg.replay_ratio
                    / samples_per_update
                )
                - learner.updates
            )
            if len(replay) == 0:
                due = 0
            for _ in range(max(0, due)):
                beta = cfg.per_beta_start + (1 - cfg.per_beta_start) * min(
                    1.0, transitions / cfg.total_transitions
                )
                idx, batch, weights = replay.sample(cfg.batch_size, beta)
                stats = learner.update(batch, weights)
                replay.update_priorities(idx, stats.td_abs)
                losses.append((stats.loss, stats.q_mean))
            if learner.updates - last_sync >= cfg.weight_sync_interval:
                backend.sync_weights(net.state_dict())
                last_sync = learner.updates

            if transitions >= next_eval or transitions >= cfg.total_transitions:
                last_eval = run_eval()
                next_eval += cfg.eval_interval * (
                    1 + (transitions - next_eval) // cfg.eval_interval
                )
            if transitions >= next_log or transitions >= cfg.total_transitions:
                now = time.perf_counter()
                row = {
                    "transitions": transitions,
                    "env_steps": env_steps,
                    "updates": learner.updates,
                    "epsilon": eps,
                    "wall_s": wall(),
                    "transitions_per_s": (transitions - tr_mark) / max(now - t_mark, 1e-9),
                    "train_reward_per_decision": _ratio(window_rewards),
                    "train_episode_return": _mean(window_returns),
                    "train_throughput_mbps": _mean(window_tput),
                    "loss": _mean([x[0] for x in losses]),
                    "q_mean": _mean([x[1] for x in losses]),
                    "eval_return": last_eval.mean_return if last_eval else math.nan,
                    "eval_reward_per_decision": last_eval.reward_per_decision
                    if last_eval
                    else math.nan,
                    "eval_throughput_mbps": last_eval.throughput_mbps if last_eval else math.nan,
                    "eval_gain_vs_olla_pct": last_gain,
                }
                curve.append(row)
                _write_curve(out / "curve.csv", curve)
                t_mark, tr_mark = now, transitions
                next_log += log_every * (1 + (transitions - next_log) // log_every)
            if transitions >= next_ckpt:
                save_checkpoint()
                next_ckpt += cfg.checkpoint_interval * (
                    1 + (transitions - next_ckpt) // cfg.checkpoint_interval
                )
    finally:
        bar.close()
        backend.close()

    save_checkpoint()
    torch.save(net.state_dict(), out / "model.pt")
    plot_learning_curve(curve, out / "curve.png", title=f"{cfg.arch} on {cfg.env}")
    return TrainResult(out, transitions, learner.updates, wall(), last_eval, curve)


def _mean(xs) -> float:
    xs = list(xs)
    return float(np.mean(xs)) if xs else math.nan


def _ratio(pairs) -> float:
    num = sum(p[0] for p in pairs)
    den = sum(p[1] for p in pairs)
    return num / den if den else math.nan


def _write_curve(path: Path, rows: list[dict[str, float]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CURVE_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def _read_curve(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    with path.open() as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]
