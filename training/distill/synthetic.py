"""Synthetic observations: sampled to cover each feature's range, not the simulator's visits.

A policy learned from rollouts only knows the states its rollouts visited; synthetic rows
spread over the whole declared range of every column (uniformly, independently) teach the
student what the teacher does elsewhere too. The ranges of the simulator's schema are
declared by feature name below (``tests/training/test_distill_data.py`` checks that the
simulator's observations fall inside them); a task without a schema (a Gymnasium id) uses
its observation space's bounds where finite, else the range seen in a pilot rollout,
widened by a tenth on each side.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# Per feature: ("grid", values) sampled among those values, or ("uniform", (lo, hi)).
Range = tuple[str, tuple[float, ...]]


def _grid(n: int, scale: float, start: int = 0) -> Range:
    return ("grid", tuple(k / scale for k in range(start, n + 1)))


SIMULATOR_RANGES: dict[str, Range] = {
    "cqi": _grid(15, 15.0),
    "cqi_valid": ("grid", (0.0, 1.0)),
    "cqi_age": _grid(40, 40.0),
    "cqi_sinr_db": ("uniform", (-0.45, 0.85)),
    "olla_offset_db": ("uniform", (-2.0, 2.0)),
    "olla_mcs": _grid(27, 27.0),
    "ack_rate_fast": ("uniform", (0.0, 1.0)),
    "ack_rate_slow": ("uniform", (0.0, 1.0)),
    **{f"harq_ack_{i}": ("grid", (-1.0, 0.0, 1.0)) for i in range(8)},
    **{f"harq_mcs_{i}": _grid(27, 27.0) for i in range(8)},
    "feedback_age": _grid(40, 40.0),
    "rank": _grid(8, 8.0, start=1),
    "log_prb": ("uniform", (0.0, 1.0)),
    "n_symbols": _grid(14, 14.0, start=1),
    "buffer": ("uniform", (0.0, 1.0)),
    "true_sinr_db": ("uniform", (-2.0, 1.2)),
    "doppler_hz": ("uniform", (0.0, 1.0)),
}


def ranges_for(
    feature_names: tuple[str, ...] | None,
    obs_low: np.ndarray | None = None,
    obs_high: np.ndarray | None = None,
    pilot: np.ndarray | None = None,
) -> list[Range]:
    """One range per column: by name for the simulator's schema; otherwise the finite
    bounds ``obs_low``/``obs_high``, else the ``pilot`` rows' span widened by 10 %."""
    if feature_names is not None:
        missing = [n for n in feature_names if n not in SIMULATOR_RANGES]
        if missing:
            raise ValueError(f"no synthetic range declared for features {missing}")
        return [SIMULATOR_RANGES[n] for n in feature_names]
    if obs_low is None or obs_high is None:
        raise ValueError("a task without a schema needs its observation bounds")
    out: list[Range] = []
    for i, (lo, hi) in enumerate(zip(obs_low, obs_high, strict=True)):
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi - lo > 1e6:
            if pilot is None or len(pilot) == 0:
                raise ValueError(f"column {i} is unbounded and no pilot rows were given")
            p_lo, p_hi = float(pilot[:, i].min()), float(pilot[:, i].max())
            pad = 0.1 * max(p_hi - p_lo, 1e-3)
            lo, hi = p_lo - pad, p_hi + pad
        out.append(("uniform", (float(lo), float(hi))))
    return out


def sample(ranges: list[Range], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rows float32 ``[n, len(ranges)]``, each column drawn from its range."""
    cols = []
    for kind, values in ranges:
        if kind == "grid":
            cols.append(rng.choice(np.asarray(values, np.float32), size=n))
        else:
            lo, hi = values
            cols.append(rng.uniform(lo, hi, size=n).astype(np.float32))
    return np.stack(cols, axis=1).astype(np.float32)


def covers(ranges: list[Range], obs: np.ndarray, tol: float = 1e-5) -> Mapping[int, str]:
    """Columns of ``obs`` that leave their declared range (index -> why); empty if none."""
    bad: dict[int, str] = {}
    for i, (kind, values) in enumerate(ranges):
        lo, hi = min(values), max(values)
        col = obs[:, i]
        if col.min() < lo - tol or col.max() > hi + tol:
            bad[i] = f"[{col.min():.3g}, {col.max():.3g}] outside {kind} [{lo:.3g}, {hi:.3g}]"
    return bad
