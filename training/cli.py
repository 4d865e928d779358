"""``ran-distill`` commands of the training package: train-teacher, evaluate, export-onnx.

Importing this module must not import torch (the serving image has none): every
command imports its heavy dependencies inside the function body.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from linkadapt.baselines import BASELINE_NAMES

DEFAULT_EVAL_UES = 200
DEFAULT_EVAL_SLOTS = 1000


def _parse_set(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs → typed DQNConfig overrides (values parsed as JSON when possible)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise typer.BadParameter(f"--set expects KEY=VALUE, got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def parse_seeds(spec: str) -> list[int]:
    """``"5"`` → the first 5 evaluation seeds [10000..10004] (:mod:`linkadapt.seeds`);
    ``"3,7,11"`` → [3, 7, 11] as given."""
    from linkadapt.seeds import parse_seeds as parse

    try:
        return parse(spec, "evaluation")
    except ValueError as exc:
        raise typer.BadParameter(f"--seeds: {exc}") from None


def train_teacher(
    out: Annotated[Path, typer.Option(help="Run directory (artifacts/teachers/NAME)")],
    scenario: Annotated[
        str, typer.Option(help="Simulator scenario (randomized, mimo, ...) or a Gymnasium id")
    ] = "randomized",
    arch: Annotated[
        str, typer.Option(help="Q-network: mlp-7x128, dueling-7x128, gru-128, mlp-DxW ...")
    ] = "",
    steps: Annotated[int, typer.Option(help="Budget in stored transitions (decisions)")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of everything")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/checkpoint.pt")] = False,
    backend: Annotated[str, typer.Option(help="Rollouts: local | ray")] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="Join this Ray cluster (default: start a local Ray)")
    ] = None,
    num_actors: Annotated[int, typer.Option(help="Ray rollout actors")] = 0,
    num_envs: Annotated[int, typer.Option(help="Sub-envs (UEs) per rollout worker")] = 0,
    privileged: Annotated[
        bool, typer.Option(help="Privileged teacher: obs include true SINR and Doppler")
    ] = False,
    set_: Annotated[
        list[str],
        typer.Option("--set", help="Override any DQNConfig field: --set gamma=0.9 (repeatable)"),
    ] = [],  # noqa: B006
    kpi_seeds: Annotated[
        int,
        typer.Option(
            help="Simulator only: paired evaluation seeds (10000..) of the final KPIs (0: skip)"
        ),
    ] = 3,
    progress: Annotated[bool, typer.Option(help="Show the progress bar")] = True,
) -> None:
    """Train a DQN teacher (or any Gymnasium task) and write weights, config, curve, manifest."""
    from training.artifacts import write_manifest
    from training.dqn.config import DQNConfig
    from training.dqn.presets import preset_for
    from training.dqn.trainer import train
    from training.vector_envs import is_gym_id

    values: dict[str, Any] = {
        "env": scenario,
        **preset_for(scenario),
        "seed": seed,
        "backend": backend,
        "ray_address": ray_address,
        "privileged": privileged,
    }
    if arch:
        values["arch"] = arch
    if steps:
        values["total_transitions"] = steps
    if num_actors:
        values["num_actors"] = num_actors
    if num_envs:
        values["num_envs"] = num_envs
    values.update(_parse_set(set_))
    try:
        cfg = DQNConfig.from_dict({**DQNConfig.defaults(), **values})
        cfg.validate()
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(str(exc)) from None
    result = train(cfg, out, resume=resume, progress=progress)
    from training.policies import load_torch_qnet

    cfg = DQNConfig.load(out / "config.json")
    net = load_torch_qnet(out)
    kpis: dict[str, Any] = {}
    if result.final_eval is not None:
        kpis["greedy_eval"] = result.final_eval.__dict__
    # A privileged teacher reads columns the evaluation simulator does not emit.
    if not is_gym_id(cfg.env) and kpi_seeds > 0 and not cfg.privileged:
        kpis["simulator"] = _teacher_kpis(out, cfg, kpi_seeds)
    write_manifest(
        out,
        cfg=cfg,
        net=net,
        wall_s=result.wall_s,
        transitions=result.transitions,
        updates=result.updates,
        command=_replay_command(cfg, out, set_, kpi_seeds),
        kpis=kpis,
    )
    typer.echo(
        f"trained {result.transitions} transitions, {result.updates} updates in "
        f"{result.wall_s:.0f} s -> {out}"
    )


def _replay_command(cfg, out: Path, overrides: list[str], kpi_seeds: int) -> list[str]:
    """The argv that reproduces this run from scratch (resolved values, not defaults)."""
    cmd = [
        "ran-distill",
        "train-teacher",
        "--scenario",
        cfg.env,
        "--arch",
        cfg.arch,
        "--steps",
        str(cfg.total_transitions),
        "--seed",
        str(cfg.seed),
        "--out",
        str(out),
        "--backend",
        cfg.backend,
        "--num-envs",
        str(cfg.num_envs),
        "--kpi-seeds",
        str(kpi_seeds),
    ]
    if cfg.backend == "ray":
        cmd += ["--num-actors", str(cfg.num_actors)]
        if cfg.ray_address:
            cmd += ["--ray-address", cfg.ray_address]
    if cfg.privileged:
        cmd.append("--privileged")
    for pair in overrides:
        cmd += ["--set", pair]
    return cmd


def _teacher_kpis(out: Path, cfg, n_seeds: int) -> dict[str, Any]:
    """Teacher vs OLLA, tuned OLLA and genie on the training scenario (the ``randomized``
    preset for the generalist), on the first ``n_seeds`` evaluation seeds (paired); the
    summary goes into the manifest."""
    from linkadapt.seeds import evaluation_seeds
    from training.evaluate import run_evaluation

    report = run_evaluation(
        [str(out), "olla", "olla-tuned", "genie"],
        [cfg.env],
        evaluation_seeds(n_seeds),
        n_ues=DEFAULT_EVAL_UES,
        n_slots=DEFAULT_EVAL_SLOTS,
        names=["teacher", "olla", "olla-tuned", "genie"],
    )
    return report.as_dict()


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
    """Add the training commands to the ``ran-distill`` app."""
    app.command("train-teacher")(train_teacher)
    app.command("evaluate")(evaluate)
    app.command("export-onnx")(export_onnx)
