"""``ran-distill report``: run the study's stages at a budget and write the markdown.

Importing this module does not import torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training.distill.report.runner import Stage


def register(
    app: typer.Typer, extra_stages: tuple[Stage, ...] = (), runners: dict | None = None
) -> None:
    """Add ``ran-distill report``; ``extra_stages`` are the DQN-trained stages and
    ``runners`` the DQN distillation modes (``training.dqn.distill_runners`` passes both)."""

    @app.command("report")
    def report(
        budget: Annotated[
            str, typer.Option(help="tiny (a minute), medium (two CPU hours) or full")
        ] = "tiny",
        artifacts: Annotated[Path, typer.Option(help="Stage artifacts root")] = Path(
            "artifacts/distill"
        ),
        out: Annotated[Path, typer.Option(help="Where distillation.md and figures/ go")] = Path(
            "reports"
        ),
        teacher: Annotated[str, typer.Option(help="The generalist teacher")] = (
            "models/teacher-generalist"
        ),
        stage: Annotated[
            list[str], typer.Option(help="Run only these stages (and what they need); repeatable")
        ] = [],  # noqa: B006
        redo: Annotated[bool, typer.Option(help="Rerun the selected stages even if done")] = False,
        progress: Annotated[bool, typer.Option(help="Progress bars of every run")] = False,
    ) -> None:
        """Regenerate reports/distillation.md (+ PNGs) from the staged distillation study."""
        from training.distill.report.make import make_report

        try:
            path = make_report(
                budget,
                artifacts,
                out,
                teacher,
                extra_stages,
                only=stage,
                redo=redo,
                progress=progress,
                runners=runners,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        typer.echo(f"wrote {path}")
