"""``ran-distill distill``: one option per :class:`DistillConfig` field, then the strategy.

Importing this module does not import torch (the serving image has none): the command
loads the engine when it runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from training.config_cli import ConfigArgs, config_command
from training.distill.config import FLAGS, DistillConfig

if TYPE_CHECKING:
    from training.distill.strategies import Runner

_SHOWN = ("student_parameters", "teacher_parameters", "compression", "samples", "wall_seconds")


def register(app: typer.Typer, runners: Mapping[str, Runner] | None = None) -> None:
    """Add ``ran-distill distill`` to ``app``; ``runners`` provide the DQN-trained modes
    (``online``, ``from-scratch``: ``training.dqn.distill_runners`` passes them)."""

    @app.command("distill")
    @config_command(DistillConfig, flags=FLAGS)
    def distill_command(
        out: Annotated[Path, typer.Option(help="Output dir (model.pt, ONNX, manifest, report)")],
        progress: Annotated[bool, typer.Option(help="Show progress bars")] = True,
        *,
        config: ConfigArgs,
    ) -> None:
        """Distill a teacher into a small student: data, loss, strategy, export, evaluation."""
        from training.distill import strategies

        try:
            cfg = DistillConfig(**config.values)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        try:
            summary = strategies.run(cfg, out, progress=progress, runners=runners)
        except (ValueError, FileNotFoundError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        echo_summary(summary)


def echo_summary(summary: dict[str, Any]) -> None:
    """The run's sizes, held-out agreement and evaluation, on stdout."""
    typer.echo(json.dumps({k: summary.get(k) for k in _SHOWN}, indent=2))
    if "validation" in summary:
        v = summary["validation"]
        typer.echo(
            f"held-out: argmax agreement {v['argmax_agreement']:.4f}, "
            f"within ±1 {v['within_1']:.4f}, KL {v['kl']:.4g}"
        )
    for sc, res in summary.get("evaluation", {}).items():
        if "student_vs_teacher_pct" in res:
            m, c = res["student_vs_teacher_pct"]
            typer.echo(f"{sc}: student vs teacher throughput {m:+.2f} ± {c:.2f} %")
        elif "student" in res:
            typer.echo(f"{sc}: student return {res['student']['mean']:.1f}")
