"""The issue's distillation targets, checked against the report's stage results.

A student meets the distillation paper's criteria on a benchmark when, on the paired
evaluation seeds and by the mean change against its teacher:

- throughput ≥ −tol % (tol = 1 single-policy, 3 multi-policy; a gain is not a miss),
- 5th-percentile UE throughput ≥ −tol % (the cell edge; skipped where the teacher's p5 is
  0 on some seed and the relative change is undefined),
- first-transmission BLER within ±7 % of the teacher's (relative; when the teacher's BLER
  is 0 on some seed, within ±0.1 percentage points).

Means, not CI bounds: with 5 seeds a CI half-width is often wider than the 1 % band, and
the report prints every CI beside the means.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

BLER_TOL_PCT = 7.0
BLER_TOL_PP = 0.1
WEIGHT_BITS_MAX = 1_000_000
LATENCY_US_MAX = 10.0


@dataclass(frozen=True)
class Check:
    """Worst values of a student over its benchmarks and whether they meet ``tol_pct``."""

    throughput_pct: float
    p5_pct: float
    bler_dev: float
    bler_unit: str
    met: bool
    misses: tuple[str, ...] = ()  # "benchmark criterion value" of each criterion missed


def check(row: dict[str, Any], tol_pct: float) -> Check | None:
    """The criteria of the module doc over every benchmark ``row`` was evaluated on
    (``None`` when it has no comparison with a teacher)."""
    tput, p5, bler_rel, bler_pp = [], [], [], []
    misses: list[str] = []
    for name, sc in row.get("scenarios", {}).items():
        vs = sc.get("vs_teacher")
        if not vs:
            continue
        tput.append(t := vs["throughput_pct"][0])
        if t < -tol_pct:
            misses.append(f"{name} throughput {t:+.1f} %")
        if vs.get("throughput_p5_pct"):
            p5.append(q := vs["throughput_p5_pct"][0])
            if q < -tol_pct:
                misses.append(f"{name} p5 {q:+.1f} %")
        if vs.get("bler_pct"):
            bler_rel.append(b := vs["bler_pct"][0])
            if abs(b) > BLER_TOL_PCT:
                misses.append(f"{name} BLER {b:+.1f} %")
        else:
            bler_pp.append(b := vs["bler_pp"][0])
            if abs(b) > BLER_TOL_PP:
                misses.append(f"{name} BLER {b:+.2f} pp")
    if not tput:
        return None
    worst_p5 = min(p5) if p5 else math.nan
    worst_rel = max(bler_rel, key=abs) if bler_rel else 0.0
    worst_pp = max(bler_pp, key=abs) if bler_pp else 0.0
    met = not misses  # every criterion is checked per benchmark above
    if bler_rel or not bler_pp:
        return Check(min(tput), worst_p5, worst_rel, "%", met, tuple(misses))
    return Check(min(tput), worst_p5, worst_pp, "pp", met, tuple(misses))


def weight_bits(row: dict[str, Any]) -> int | None:
    """Float32 weight bits of a student row."""
    return None if row.get("parameters") is None else 32 * int(row["parameters"])


def smallest_meeting(rows: dict[str, dict[str, Any]], tol_pct: float = 1.0) -> str | None:
    """The architecture with the fewest parameters among ``rows`` that meets the criteria."""
    ok = [
        (r["parameters"], arch)
        for arch, r in rows.items()
        if r.get("parameters") is not None and (c := check(r, tol_pct)) is not None and c.met
    ]
    return min(ok)[1] if ok else None


def _fmt(c: Check | None) -> str:
    if c is None:
        return "not evaluated"
    p5 = "–" if math.isnan(c.p5_pct) else f"{c.p5_pct:+.2f} %"
    missed = f" (missed: {', '.join(c.misses)})" if c.misses else ""
    return (
        f"worst throughput {c.throughput_pct:+.2f} %, worst p5 {p5}, "
        f"worst BLER {c.bler_dev:+.2f} {c.bler_unit}{missed}"
    )


def _verdict(met: bool | None) -> str:
    return "–" if met is None else ("met" if met else "**not met**")


def target_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    """``[target, measured, verdict]`` rows from the stage results ({stage: result})."""
    rows: list[list[str]] = []
    table = results.get("table") or {}
    single = (table.get("single") or {}).get("mlp-3x32")
    multi = (table.get("multi") or {}).get("mlp-3x32")
    for label, row, tol in (
        ("single-policy 3×32 within 1 % (p5 too), BLER ±7 %, every benchmark", single, 1.0),
        ("multi-policy 3×32 within 3 % (p5 too), BLER ±7 %, every benchmark", multi, 3.0),
    ):
        c = check(row, tol) if row else None
        rows.append([label, _fmt(c), _verdict(None if c is None else c.met)])
    scratch = (results.get("from-scratch") or {}).get("row")
    if scratch:
        rows.append(["from-scratch 3×32: reported as it comes", _fmt(check(scratch, 1.0)), "–"])
    rows.append(_cartpole_row(results.get("cartpole")))
    students = list(_all_students(results))
    bits = [b for r in students if (b := weight_bits(r)) is not None]
    if bits:
        rows.append(
            [
                "every student ≤ 1 Mbit of weights",
                f"largest {max(bits):,} bits over {len(bits)} students (float32)",
                _verdict(max(bits) <= WEIGHT_BITS_MAX),
            ]
        )
    latency = ((single or {}).get("int8") or {}).get("latency_us", {}).get("float", {})
    if "batch_64" in latency:
        rows.append(
            [
                "3×32 ONNX ≤ 10 µs per 64-UE batch in-process",
                f"{latency['batch_64']:.1f} µs (median, onnxruntime, 1 thread)",
                _verdict(latency["batch_64"] <= LATENCY_US_MAX),
            ]
        )
    return rows


def _cartpole_row(result: dict[str, Any] | None) -> list[str]:
    label = "CartPole: 64-64 with KD reaches the 300 average in fewer episodes than without"
    if not result:
        return [label, "stage not finished", "–"]
    runs = result["runs"]

    def episodes(name: str) -> float:
        # a run that never reached the target counts as its whole budget of episodes
        values = [
            r["episodes_to_target"]
            if r["episodes_to_target"] is not None
            else (r["curve"][-1][0] if r["curve"] else math.inf)
            for r in runs.get(name, [])
        ]
        return sum(values) / len(values) if values else math.nan

    rl = episodes("student 64-64, RL only")
    kd = {n: episodes(n) for n in runs if n.startswith("student 64-64, RL + KD")}
    text = f"RL only {rl:.0f}; " + ", ".join(
        f"{n.split('from ')[1].split(' ')[0]} {v:.0f}" for n, v in kd.items()
    )
    met = bool(kd) and all(v < rl for v in kd.values())
    return [
        label,
        text + " episodes (mean over seeds; never reached = all episodes)",
        _verdict(met),
    ]


def _all_students(results: dict[str, dict[str, Any]]) -> Iterable[dict[str, Any]]:
    table = results.get("table") or {}
    for kind in ("single", "multi"):
        yield from (table.get(kind) or {}).values()
    for stage in ("losses", "temperature", "sources", "size-sweep"):
        yield from ((results.get(stage) or {}).get("rows") or {}).values()
    for stage, keys in (("progressive", ("progressive",)), ("privileged", ("privileged", "plain"))):
        for k in keys:
            if (results.get(stage) or {}).get(k):
                yield results[stage][k]
