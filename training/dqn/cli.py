"""``ran-distill train-teacher``: one option per :class:`~training.dqn.config.DQNConfig` field.

Precedence, lowest first: the field defaults (the link-adaptation teacher's), the task's
preset (:mod:`training.dqn.presets`, e.g. CartPole), the options typed on the command
line, then ``--set KEY=VALUE`` pairs. Importing this module does not import torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from training.cli import DEFAULT_EVAL_SLOTS, DEFAULT_EVAL_UES
from training.config_cli import ConfigArgs, config_command, option_argv
from training.dqn.config import DQNConfig

# Older spellings the README, docs and shipped manifests use (the field name also works).
FLAGS = {"env": ("--scenario", "--env"), "total_transitions": ("--steps", "--total-transitions")}
# Always recorded in the replay command (resolved values), in this order.
_REPLAY_FIELDS = ("env", "arch", "total_transitions", "seed")
_REPLAY_FIELDS_AFTER_OUT = ("backend", "num_envs")


def parse_set(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs -> DQNConfig overrides (values parsed as JSON when possible)."""
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


def resolve_config(config: ConfigArgs, overrides: list[str]) -> DQNConfig:
    """The run's configuration: defaults < preset of the task < typed options < ``--set``."""
    from training.dqn.presets import preset_for

    values = {
        **DQNConfig.defaults(),
        **preset_for(config.values["env"]),
        **config.given_values(),
        **parse_set(overrides),
    }
    try:
        cfg = DQNConfig.from_dict(values)
        cfg.validate()
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(str(exc)) from None
    return cfg


@config_command(DQNConfig, flags=FLAGS)
def train_teacher(
    out: Annotated[Path, typer.Option(help="Run directory (artifacts/teachers/NAME)")],
    resume: Annotated[bool, typer.Option(help="Continue from OUT/checkpoint.pt")] = False,
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
    *,
    config: ConfigArgs,
) -> None:
    """Train a DQN teacher (or any Gymnasium task) and write weights, config, curve, manifest."""
    from training.artifacts import load_torch_qnet, write_teacher_manifest
    from training.dqn.trainer import train
    from training.vector_envs import is_gym_id

    cfg = resolve_config(config, set_)
    result = train(cfg, out, resume=resume, progress=progress)
    cfg = DQNConfig.load(out / "config.json")
    net = load_torch_qnet(out)
    kpis: dict[str, Any] = {}
    if result.final_eval is not None:
        kpis["greedy_eval"] = result.final_eval.__dict__
    # A privileged teacher reads columns the evaluation simulator does not emit.
    if not is_gym_id(cfg.env) and kpi_seeds > 0 and not cfg.privileged:
        kpis["simulator"] = _teacher_kpis(out, cfg, kpi_seeds)
    write_teacher_manifest(
        out,
        cfg=cfg,
        net=net,
        wall_s=result.wall_s,
        transitions=result.transitions,
        updates=result.updates,
        command=replay_command(cfg, out, config.given, set_, kpi_seeds),
        kpis=kpis,
    )
    typer.echo(
        f"trained {result.transitions} transitions, {result.updates} updates in "
        f"{result.wall_s:.0f} s -> {out}"
    )


def replay_command(
    cfg: DQNConfig, out: Path, given: frozenset[str], overrides: list[str], kpi_seeds: int
) -> list[str]:
    """The argv that reproduces this run from scratch: the main fields (resolved values),
    every other field typed on the command line, then the ``--set`` pairs."""

    def argv(name: str) -> list[str]:
        return option_argv(DQNConfig, name, getattr(cfg, name), FLAGS)

    cmd = ["ran-distill", "train-teacher"]
    for name in _REPLAY_FIELDS:
        cmd += argv(name)
    cmd += ["--out", str(out)]
    for name in _REPLAY_FIELDS_AFTER_OUT:
        cmd += argv(name)
    cmd += ["--kpi-seeds", str(kpi_seeds)]
    recorded = {*_REPLAY_FIELDS, *_REPLAY_FIELDS_AFTER_OUT}
    if cfg.backend == "ray":
        cmd += argv("num_actors") + argv("ray_address")
        recorded |= {"num_actors", "ray_address"}
    if cfg.privileged:
        cmd += argv("privileged")
    recorded.add("privileged")
    for name in sorted(given - recorded):
        cmd += argv(name)
    for pair in overrides:
        cmd += ["--set", pair]
    return cmd


def _teacher_kpis(out: Path, cfg: DQNConfig, n_seeds: int) -> dict[str, Any]:
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


def register(app: typer.Typer) -> None:
    """Add ``ran-distill train-teacher`` to the root typer app."""
    app.command("train-teacher")(train_teacher)
