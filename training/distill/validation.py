"""Held-out states: how closely the student follows its teacher where it was not trained.

The held-out set is collected like teacher-driven data but on *tuning* seeds
(:func:`linkadapt.seeds.tuning_seeds`: early stopping is model selection, and the training
data uses training seeds), so no held-out state is a training state. Metrics, per epoch:

- ``argmax_agreement``: share of decisions where the student's argmax is the teacher's;
- ``within_1``: share where it is at most one action away (one MCS step);
- ``kl``: mean KL(softmax(q_T/τ) ‖ softmax(q_S)), the τ of the run.

The same rows are the export's parity set (:mod:`training.distill.export`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from linkadapt.seeds import check_range, tuning_seeds
from training.distill.dataset import ChunkStore, Dataset, content_key
from training.distill.sources import Collector, EnvSpec, Samples
from training.distill.teachers import Teacher


def held_out_seeds(n_parts: int) -> list[int]:
    """One tuning seed per data environment (5000, 5001, ...)."""
    return check_range(tuning_seeds(n_parts), "tuning")


def collect_held_out(
    store: ChunkStore,
    parts: list[tuple[EnvSpec, Teacher, np.ndarray]],
    n: int,
    seq_len: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[Samples, list[int]]:
    """``n`` held-out samples split evenly over ``parts`` (env, teacher, student columns),
    teacher-driven and greedy, on tuning seeds; cached in ``store`` like any chunk."""
    seeds = held_out_seeds(len(parts))
    pieces: list[Samples] = []
    for k, ((spec, teacher, cols), seed) in enumerate(zip(parts, seeds, strict=True)):
        share = n // len(parts) + (1 if k < n % len(parts) else 0)
        key = content_key(
            kind="held-out",
            env=spec,
            teacher=teacher.sha256,
            cols=cols.tolist(),
            seq_len=seq_len,
            n=share,
            seed=seed,
        )
        chunk = store.find(key, 0)
        if chunk is None:
            collector = Collector(spec, teacher, cols, seq_len, with_features=False, seed=seed)
            rows = collector.collect(share, None, 0.0, np.random.default_rng(seed), progress)
            collector.close()
            chunk = store.write(key, 0, rows)
        elif progress is not None:
            progress(chunk.rows)
        pieces.append(Dataset(store, [chunk]).load_all())
    return Samples.concat(pieces), seeds


def agreement_metrics(student_q: np.ndarray, teacher_q: np.ndarray, tau: float) -> dict[str, float]:
    """The module doc's metrics of Q-values ``[n, A]`` (numpy, any leading shape flattened)."""
    a = student_q.shape[-1]
    s = student_q.reshape(-1, a).astype(np.float64)
    t = teacher_q.reshape(-1, a).astype(np.float64)
    s_act, t_act = s.argmax(1), t.argmax(1)
    log_p = _log_softmax(t / tau)
    kl = (np.exp(log_p) * (log_p - _log_softmax(s))).sum(1)
    return {
        "argmax_agreement": float(np.mean(s_act == t_act)),
        "within_1": float(np.mean(np.abs(s_act - t_act) <= 1)),
        "kl": float(kl.mean()),
    }


def student_q_values(student: object, obs: np.ndarray, batch: int = 8192) -> np.ndarray:
    """The student's Q-values ``[n, T, A]`` for held-out ``obs`` ``[n, T, D]`` (GRU: each
    sequence from a zero state)."""
    import torch

    from training.distill.students import forward_with_hidden

    out = []
    with torch.no_grad():
        for start in range(0, len(obs), batch):
            x = torch.from_numpy(np.ascontiguousarray(obs[start : start + batch]))
            out.append(forward_with_hidden(student, x)[0].numpy())  # type: ignore[arg-type]
    return np.concatenate(out) if out else np.zeros((0, 0, 0), np.float32)


def evaluate_held_out(student: object, held: Samples, tau: float) -> dict[str, float]:
    """:func:`agreement_metrics` of ``student`` on the held-out set."""
    return agreement_metrics(student_q_values(student, held.obs), held.q, tau)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
