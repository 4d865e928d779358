"""Quality: the shipped student (ONNX, as the xApp runs it) vs its teacher, OLLA, tuned OLLA
and the genie.

    python benchmarks/student_vs_teacher.py [--seeds 5] [--ues 200] [--slots 1000] [--write]

Paired seeds per preset: the first ``--seeds`` evaluation seeds (``linkadapt.seeds``:
10 000 …); mean ± 95 % CI. Mean and 5th-percentile UE throughput, zero-UE share, BLERs,
and the paired gains of mean and p5 over the teacher, OLLA and tuned OLLA. ``--write``
replaces the "Student vs teacher" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks_common import fmt, machine_description, p5_gain, replace_section, seeds_note
from linkadapt.seeds import evaluation_seeds
from linkadapt.sim.evaluation import evaluate
from training.policies import resolve_policy

REPO = Path(__file__).resolve().parents[1]
PRESETS = ("mimo", "mmimo", "high-mobility", "bursty", "scsu")
REFS = ("teacher", "olla", "olla-tuned")


def _gains(result, policy: str) -> list[str]:
    """Paired mean and p5 gains of ``policy`` over each reference (``-`` for itself)."""
    cells = []
    for ref in REFS:
        if ref == policy:
            cells += ["-", "-"]
            continue
        gains = result.paired_gains(policy, ref)
        cells += [fmt(gains[f"throughput_vs_{ref}_pct"], 1, " %", signed=True), p5_gain(gains, ref)]
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default=str(REPO / "models" / "default"))
    parser.add_argument("--teacher", default=str(REPO / "models" / "teacher-generalist"))
    parser.add_argument("--seeds", type=int, default=5, help="first N evaluation seeds")
    parser.add_argument("--ues", type=int, default=200)
    parser.add_argument("--slots", type=int, default=1000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    seeds = evaluation_seeds(args.seeds)
    policies = {
        "student": resolve_policy(str(Path(args.student) / "model.onnx")),
        "teacher": resolve_policy(args.teacher, prefer="torch"),
        "olla": resolve_policy("olla"),
        "olla-tuned": resolve_policy("olla-tuned"),
        "genie": resolve_policy("genie"),
    }
    student_params = json.loads((Path(args.student) / "manifest.json").read_text())
    teacher_params = json.loads((Path(args.teacher) / "manifest.json").read_text())
    lines = [
        f"Command: `python benchmarks/student_vs_teacher.py --seeds {args.seeds} --ues {args.ues}"
        f" --slots {args.slots} --write`. Machine: {machine_description()}.",
        f"Student `models/default` ({student_params['parameter_count']:,} parameters, ONNX via "
        f"onnxruntime) vs teacher `models/teacher-generalist` "
        f"({teacher_params.get('parameter_count', '?'):,} parameters, torch). "
        f"{seeds_note(seeds).capitalize()}, paired; mean ± 95 % CI; `scsu` with 10 UEs; "
        "p5 = 5th-percentile UE throughput (gain in Mbit/s where the reference's p5 is 0 on "
        "some seed).",
        "",
        "| preset | policy | Mbit/s | p5 Mbit/s | zero-UE share | BLER | residual BLER "
        "| vs teacher | p5 vs teacher | vs OLLA | p5 vs OLLA | vs OLLA-tuned "
        "| p5 vs OLLA-tuned |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for preset in PRESETS:
        n_ues = 10 if preset == "scsu" else args.ues
        result = evaluate(policies, preset, seeds, n_ues, args.slots)
        for policy, row in result.summary().items():
            lines.append(
                f"| {preset} | {policy} | {fmt(row['throughput_mbps'])} | "
                f"{fmt(row['throughput_p5_mbps'])} | {fmt(row['zero_ue_share'], 3)} | "
                f"{fmt(row['bler'], 3)} | {fmt(row['residual_bler'], 4)} | "
                + " | ".join(_gains(result, policy))
                + " |"
            )
            print(lines[-1], flush=True)
    if args.write:
        replace_section("Student vs teacher", "\n".join(lines))
        print("BENCHMARKS.md updated")


if __name__ == "__main__":
    main()
