"""Distillation targets: the "Targets" table of ``reports/distillation.md``, for BENCHMARKS.md.

    python benchmarks/distill_targets.py [--budget medium] [--write]

Reads the finished stages of ``ran-distill report --budget BUDGET`` (under
``artifacts/distill/BUDGET``; nothing is run) and checks them against the targets with
``training.distill.report.targets`` (the same rows the report prints). ``--write``
replaces the "Distillation targets" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks_common import replace_section
from training.distill.report.runner import RESULT_FILE, read_done
from training.distill.report.targets import target_rows

REPO = Path(__file__).resolve().parents[1]
SECTION = "Distillation targets"


def finished_results(root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """({stage: result}, {stage: done-marker}) of every finished stage under ``root``."""
    results, done = {}, {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        marker = read_done(d)
        if marker is not None:
            results[d.name] = json.loads((d / RESULT_FILE).read_text())
            done[d.name] = marker
    return results, done


def render(budget: str, results: dict[str, Any], done: dict[str, Any]) -> str:
    rows = target_rows(results)
    stages = ", ".join(f"`{name}` {marker['wall_s']:.0f} s" for name, marker in done.items())
    lines = [
        f"Command: `ran-distill report --budget {budget}` (runs the stages; each number's "
        f"budget is in `reports/distillation.md`), then "
        f"`python benchmarks/distill_targets.py --budget {budget} --write`. Stages and the "
        f"wall time of their last run on the 2-core development box: {stages}.",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *(f"| {' | '.join(r)} |" for r in rows),
        "",
        "The criteria (paired evaluation seeds, mean change against the teacher) and every "
        "table behind these rows, with 95 % CIs, are in `reports/distillation.md`.",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", default="medium")
    p.add_argument("--artifacts", type=Path, default=REPO / "artifacts" / "distill")
    p.add_argument("--write", action="store_true", help="replace the BENCHMARKS.md section")
    args = p.parse_args()
    results, done = finished_results(args.artifacts / args.budget)
    if not results:
        raise SystemExit(f"no finished stage under {args.artifacts / args.budget}")
    text = render(args.budget, results, done)
    print(text)
    if args.write:
        replace_section(SECTION, text)


if __name__ == "__main__":
    main()
