"""Quality: the shipped student (ONNX, as the xApp runs it) vs its teacher, OLLA and the genie.

    python benchmarks/student_vs_teacher.py [--seeds 5] [--ues 200] [--slots 1000] [--write]

Paired seeds per preset; mean ± 95 % CI. ``--write`` replaces the "Student vs teacher"
section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks_common import machine_description, replace_section
from linkadapt.evaluation import evaluate
from training.policies import resolve_policy

REPO = Path(__file__).resolve().parents[1]
PRESETS = ("mimo", "mmimo", "high-mobility", "bursty", "scsu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default=str(REPO / "models" / "default"))
    parser.add_argument("--teacher", default=str(REPO / "models" / "teacher-generalist"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ues", type=int, default=200)
    parser.add_argument("--slots", type=int, default=1000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    policies = {"student": resolve_policy(str(Path(args.student) / "model.onnx")),
                "teacher": resolve_policy(args.teacher, prefer="torch"),
                "olla": resolve_policy("olla"), "genie": resolve_policy("genie")}
    student_params = json.loads((Path(args.student) / "manifest.json").read_text())
    teacher_params = json.loads((Path(args.teacher) / "manifest.json").read_text())
    lines = [
        f"Command: `python benchmarks/student_vs_teacher.py --seeds {args.seeds} --ues {args.ues}"
        f" --slots {args.slots} --write`. Machine: {machine_description()}.",
        f"Student `models/default` ({student_params['parameter_count']:,} parameters, ONNX via "
        f"onnxruntime) vs teacher `models/teacher-generalist` "
        f"({teacher_params.get('parameter_count', '?'):,} parameters, torch). Seeds "
        f"0..{args.seeds - 1} paired; mean ± 95 % CI; `scsu` with 10 UEs.",
        "",
        "| preset | student Mbit/s | teacher Mbit/s | OLLA Mbit/s | genie Mbit/s | student vs "
        "teacher | student vs OLLA | teacher vs OLLA | BLER student / teacher / OLLA |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for preset in PRESETS:
        n_ues = 10 if preset == "scsu" else args.ues
        result = evaluate(policies, preset, range(args.seeds), n_ues, args.slots)
        s = result.summary()

        def tput(p: str, s: dict = s) -> str:
            m, c = s[p]["throughput_mbps"]
            return f"{m:.2f} ± {c:.2f}"

        def gain(a: str, b: str, r=result) -> str:
            m, c = r.paired_gain_pct(a, b)
            return f"{m:+.1f} ± {c:.1f} %"

        blers = " / ".join(f"{s[p]['bler'][0]:.3f}" for p in ("student", "teacher", "olla"))
        lines.append(f"| {preset} | {tput('student')} | {tput('teacher')} | {tput('olla')} | "
                     f"{tput('genie')} | {gain('student', 'teacher')} | "
                     f"{gain('student', 'olla')} | {gain('teacher', 'olla')} | {blers} |")
        print(lines[-1], flush=True)
    if args.write:
        replace_section("Student vs teacher", "\n".join(lines))
        print("BENCHMARKS.md updated")


if __name__ == "__main__":
    main()
