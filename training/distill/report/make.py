"""Run the report's stages and write ``distillation.md``: the one entry point."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from training.distill.report.budgets import budget as get_budget
from training.distill.report.markdown import Report
from training.distill.report.runner import Context, Stage, run_stages
from training.distill.report.stages import STAGES, ordered

REPORT_FILE = "distillation.md"


def make_report(
    budget_name: str,
    artifacts: Path,
    out: Path,
    teacher: str,
    extra_stages: Sequence[Stage] = (),
    *,
    only: Sequence[str] = (),
    redo: bool = False,
    progress: bool = False,
    runners: dict | None = None,
) -> Path:
    """Run (or reuse) every stage at ``budget_name`` under ``artifacts/<budget>`` and write
    ``out/distillation.md`` with ``out/figures/*.png``; returns the markdown's path.

    ``runners`` default to the DQN runners when ``extra_stages`` came from
    ``training.dqn.distill_stages`` (they are passed together by ``ran-distill``).
    """
    b = get_budget(budget_name)
    if not Path(teacher).exists():
        raise ValueError(f"teacher {teacher!r}: no such model directory")
    stages = ordered((*STAGES, *extra_stages))
    ctx = Context(b, artifacts / b.name, teacher, progress, runners=dict(runners or {}))
    finished = run_stages(stages, ctx, only=only, redo=redo)
    out.mkdir(parents=True, exist_ok=True)
    command = f"ran-distill report --budget {b.name}"
    text = Report(finished, b, out, command).render()
    path = out / REPORT_FILE
    path.write_text(text)
    return path
