"""Tune OLLA per preset (``ran-distill tune-olla``): the settings of the ``olla-tuned`` baseline.

Grid: BLER target ∈ {0.02, 0.03, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4} × Δ_up ∈ {0.1, 0.25, 0.5, 1.0} dB
(:data:`GRID`). Every combination runs as an :class:`~linkadapt.baselines.OllaPolicy`
on the same **tuning seeds** (:data:`linkadapt.seeds.TUNING`, never evaluation seeds,
so the tuned baseline is not fitted to the channels it is later scored on), paired with
plain ``olla`` (BLER target 10 %, Δ_up 1 dB).

Selection rule, per preset: among the combinations whose 5th-percentile UE throughput
(mean over the tuning seeds) is not below plain OLLA's, the one with the highest mean
UE throughput (mean over seeds); ties go to the first in grid order. If none qualifies
(possible only when plain OLLA's settings are not in the grid), the best mean throughput
wins and the entry says ``"p5_constraint_met": false``. The p5 guard keeps the tuning
from buying mean throughput with the cell edge.

The result (see :func:`tune`) is the JSON committed as ``linkadapt/data/olla_tuned.json``:
``{"grid", "seeds", "n_ues", "n_slots", "command", "rule", "presets": {name: {
"bler_target", "delta_up_db", "throughput_mbps", "throughput_p5_mbps", "olla": {...},
"n_ues", "p5_constraint_met", "candidates": [...]}}}``.

Single-cell ``scsu`` schedules one UE per slot, so it is tuned with 10 UEs (as the
benchmarks evaluate it; :data:`PRESET_UES`) instead of ``n_ues``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from linkadapt.baselines import OllaPolicy
from linkadapt.policy import PolicyFactory
from linkadapt.seeds import check_range
from linkadapt.sim import load_scenario
from linkadapt.sim.evaluation import evaluate

GRID: dict[str, tuple[float, ...]] = {
    "bler_target": (0.02, 0.03, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4),
    "delta_up_db": (0.1, 0.25, 0.5, 1.0),
}
PRESET_UES = {"scsu": 10}
RULE = (
    "per preset: best mean UE throughput among grid points whose mean 5th-percentile "
    "UE throughput is >= plain olla's (bler_target 0.1, delta_up_db 1.0); "
    "if none qualifies, best mean UE throughput"
)

Progress = Callable[[str, str, int], None]  # (scenario, candidate label, seed)
PLAIN = OllaPolicy.name  # plain OLLA's runs, and its entry in the document


def _plain_olla() -> tuple[float, float]:
    """(BLER target, Δ_up) of the plain ``olla`` baseline (OllaPolicy's defaults)."""
    p = OllaPolicy(1)
    return p.bler_target, p.loop.delta_up_db


def _label(target: float, delta: float) -> str:
    return f"t={target:g},d={delta:g}"


def _olla_factory(bler_target: float, delta_up_db: float, mcs_table: int) -> PolicyFactory:
    """Factory of an :class:`OllaPolicy` with these settings (one fresh policy per run)."""

    def build(capacity: int) -> OllaPolicy:
        return OllaPolicy(
            capacity, bler_target=bler_target, delta_up_db=delta_up_db, mcs_table=mcs_table
        )

    return build


def pick(candidates: Sequence[dict[str, float]], olla_p5: float) -> tuple[dict[str, float], bool]:
    """The selected candidate (see module doc) and whether it met the p5 constraint."""
    ok = [c for c in candidates if c["throughput_p5_mbps"] >= olla_p5]
    pool = ok or list(candidates)
    best = max(pool, key=lambda c: c["throughput_mbps"])  # max keeps the first of ties
    return best, bool(ok)


def tune_scenario(
    scenario: str,
    seeds: Sequence[int],
    n_ues: int,
    n_slots: int,
    *,
    grid: Mapping[str, Sequence[float]] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the grid (default :data:`GRID`) and plain OLLA on ``scenario``; its JSON entry."""
    axes = GRID if grid is None else grid
    cfg = load_scenario(scenario)
    n_ues = PRESET_UES.get(cfg.name, n_ues)
    points = [(float(t), float(d)) for t in axes["bler_target"] for d in axes["delta_up_db"]]
    plain = _plain_olla()
    factories: dict[str, PolicyFactory] = {PLAIN: _olla_factory(*plain, cfg.mcs_table)}
    for t, d in points:
        if (t, d) != plain:  # plain OLLA's own grid point reuses the plain runs
            factories[_label(t, d)] = _olla_factory(t, d, cfg.mcs_table)
    cb = None if progress is None else (lambda name, seed: progress(cfg.name, name, seed))
    result = evaluate(factories, cfg, seeds, n_ues, n_slots, progress=cb)

    def kpis(name: str) -> dict[str, float]:
        return {
            k: float(np.mean(result.values(name, k)))
            for k in ("throughput_mbps", "throughput_p5_mbps", "bler")
        }

    olla = kpis(PLAIN)
    candidates = [
        {"bler_target": t, "delta_up_db": d, **kpis(PLAIN if (t, d) == plain else _label(t, d))}
        for t, d in points
    ]
    best, met = pick(candidates, olla["throughput_p5_mbps"])
    return {
        "bler_target": best["bler_target"],
        "delta_up_db": best["delta_up_db"],
        "throughput_mbps": best["throughput_mbps"],
        "throughput_p5_mbps": best["throughput_p5_mbps"],
        "bler": best["bler"],
        PLAIN: {"bler_target": plain[0], "delta_up_db": plain[1], **olla},
        "n_ues": n_ues,
        "p5_constraint_met": met,
        "candidates": candidates,
    }


def tune(
    scenarios: Iterable[str],
    seeds: Sequence[int],
    n_ues: int = 200,
    n_slots: int = 1000,
    *,
    grid: Mapping[str, Sequence[float]] | None = None,
    command: str | None = None,
    progress: Progress | None = None,
    on_preset: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Tune every scenario on tuning ``seeds``; the document of ``olla_tuned.json``.

    Raises ValueError if a seed is outside the tuning range (:mod:`linkadapt.seeds`).
    """
    seeds = check_range(seeds, "tuning")
    axes = GRID if grid is None else grid
    presets: dict[str, Any] = {}
    for sc in scenarios:
        entry = tune_scenario(sc, seeds, n_ues, n_slots, grid=axes, progress=progress)
        presets[load_scenario(sc).name] = entry
        if on_preset is not None:
            on_preset(load_scenario(sc).name, entry)
    return {
        "grid": {k: [float(v) for v in vals] for k, vals in axes.items()},
        "seeds": seeds,
        "n_ues": n_ues,
        "n_slots": n_slots,
        "command": command,
        "rule": RULE,
        "presets": presets,
    }


def write(doc: dict[str, Any], path: str | Path) -> Path:
    """Write the tuning document as JSON: indented, innermost objects/lists on one line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(doc) + "\n")
    return path


def dumps(doc: dict[str, Any]) -> str:
    """``json.dumps(doc, indent=2)`` with every innermost ``{...}`` / ``[...]`` on one line
    (one line per grid point instead of seven); loads back to the same document."""

    def one_line(m: re.Match[str]) -> str:
        try:
            return json.dumps(json.loads(m.group()))
        except json.JSONDecodeError:  # brackets inside a string: leave as is
            return m.group()

    return re.sub(r"\{[^{}\[\]]*\}|\[[^{}\[\]]*\]", one_line, json.dumps(doc, indent=2))
