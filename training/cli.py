"""``ran-distill`` commands of the training package: evaluate, export-onnx.

(``train-teacher`` is :mod:`training.dqn.cli`, ``distill`` is :mod:`training.distill`.)
Importing this module must not import torch (the serving image has none): every
command imports its heavy dependencies inside the function body.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from linkadapt.baselines import BASELINE_NAMES

# Simulation size of `evaluate` and of the teacher's final KPIs (training.dqn.cli).
DEFAULT_EVAL_UES = 200
DEFAULT_EVAL_SLOTS = 1000


def parse_seeds(spec: str) -> list[int]:
    """``"5"`` → the first 5 evaluation seeds [10000..10004] (:mod:`linkadapt.seeds`);
    ``"3,7,11"`` → [3, 7, 11] as given."""
    from linkadapt.seeds import parse_seeds as parse

    try:
        return parse(spec, "evaluation")
    except ValueError as exc:
        raise typer.BadParameter(f"--seeds: {exc}") from None


def evaluate(
    policy: Annotated[
        list[str],
        typer.Option(
            help=f"Baseline ({', '.join(BASELINE_NAMES)}), a model dir (model.pt) or model.onnx; "
            "repeatable"
        ),
    ],
    scenario: Annotated[
        list[str],
        typer.Option(
            help="Simulator preset or scenario file; repeatable (default with --trace: mimo)"
        ),
    ] = [],  # noqa: B006
    seeds: Annotated[
        str, typer.Option(help="A count N (the first N evaluation seeds, 10000..) or a comma list")
    ] = "5",
    ues: Annotated[int, typer.Option(help="UEs per simulation")] = DEFAULT_EVAL_UES,
    slots: Annotated[int, typer.Option(help="Slots per simulation")] = DEFAULT_EVAL_SLOTS,
    trace: Annotated[
        Path | None,
        typer.Option(
            help="Drive-test CSV replayed as each UE's large-scale SINR in every scenario"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")] = False,
    plot: Annotated[
        Path | None, typer.Option(help="Bar chart PNG (default: artifacts/eval/evaluation.png)")
    ] = None,
) -> None:
    """Compare policies on identical seeds: KPIs, mean ± 95 % CI, paired differences."""
    from training.evaluate import print_report, run_evaluation

    seed_list = parse_seeds(seeds)
    scenarios = list(scenario) or (["mimo"] if trace is not None else [])
    try:
        report = run_evaluation(policy, scenarios, seed_list, n_ues=ues, n_slots=slots, trace=trace)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    png = plot or Path("artifacts/eval/evaluation.png")
    png_written = report.plot(png)
    if as_json:
        data = report.as_dict()
        data["plot"] = str(png_written) if png_written else None
        typer.echo(json.dumps(data, indent=2))
    else:
        print_report(report)
        if png_written:
            typer.echo(f"bar chart: {png_written}")


def export_onnx(
    model_dir: Annotated[Path, typer.Argument(help="Run / model directory with model.pt")],
    out: Annotated[Path, typer.Option(help="Output directory (model.onnx + manifest.json)")],
    golden_scenario: Annotated[
        str,
        typer.Option(
            help="Simulator preset whose observations become the golden rows ('' = synthetic)"
        ),
    ] = "mimo",
) -> None:
    """Export a trained feed-forward Q-network to ONNX with its verification manifest."""
    from training.export import export_from_run

    path = export_from_run(model_dir, out, golden_scenario=golden_scenario or None)
    typer.echo(f"exported {path}")


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` and ``export-onnx`` to the ``ran-distill`` app."""
    app.command("evaluate")(evaluate)
    app.command("export-onnx")(export_onnx)
