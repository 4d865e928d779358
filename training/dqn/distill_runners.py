"""The distillation modes that train with DQN, and the commands that need them.

``training.dqn`` sits on top of ``training`` (nothing below imports it), so the two modes
of ``ran-distill distill`` that run a DQN loop live here and are handed to the engine as
``runners`` (:func:`training.distill.strategies.run`):

- ``from-scratch`` (``--strategy from-scratch``): the baseline without distillation: the
  student's architecture trained by DQN on the same data environment with the same sample
  budget (``--samples`` stored transitions);
- ``online`` (``--loss online``): the same DQN loop with the decaying KD term of
  :mod:`training.dqn.kd` (the teacher labels the student's replay).

Either student is then measured and written like a distilled one (held-out agreement
with the teacher, ONNX with parity, manifest, evaluation): :mod:`training.distill.writer`.
:func:`register` adds ``ran-distill distill`` and ``ran-distill report`` with these runners.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from training.distill.config import DistillConfig


def dqn_config(cfg: DistillConfig, arch: str | None = None, **changes: Any) -> Any:
    """The DQN configuration of a run: the task's preset (CartPole's for Gym ids), the
    distillation's environment, architecture, budget, seed and threads, then ``changes``."""
    from training.dqn.config import DQNConfig
    from training.dqn.presets import preset_for
    from training.vector_envs import is_gym_id

    values: dict[str, Any] = {**DQNConfig.defaults(), **preset_for(cfg.scenario)}
    values.update(
        env=cfg.scenario,
        arch=arch or cfg.arch,
        total_transitions=cfg.samples,
        seed=cfg.seed,
        torch_threads=cfg.torch_threads,
        episode_slots=cfg.episode_slots,
        eval_kpi_seeds=0,  # the writer evaluates on evaluation seeds afterwards
    )
    if not is_gym_id(cfg.scenario):
        values["num_envs"] = cfg.num_envs
    values.update(changes)
    dqn = DQNConfig.from_dict(values)
    dqn.validate()
    return dqn


def run_from_scratch(cfg: DistillConfig, out: Path, progress: bool) -> dict[str, Any]:
    """DQN on the student's architecture with the distillation's budget (module doc)."""
    return _train_and_write(cfg, out, progress, kind="dqn-from-scratch", kd=False)


def run_online(cfg: DistillConfig, out: Path, progress: bool) -> dict[str, Any]:
    """DQN + the decaying KD term of :mod:`training.dqn.kd` (module doc)."""
    return _train_and_write(cfg, out, progress, kind="online-kd", kd=True)


RUNNERS = {"from-scratch": run_from_scratch, "online": run_online}


def _train_and_write(
    cfg: DistillConfig, out: Path, progress: bool, *, kind: str, kd: bool
) -> dict[str, Any]:
    import torch

    from linkadapt.seeds import training_env_seed
    from training.artifacts import load_torch_qnet
    from training.distill.engine import Part, trained_run
    from training.distill.strategies import check_teacher_env, env_spec
    from training.distill.teachers import load_teacher
    from training.distill.writer import write_student
    from training.dqn.kd import KDLearner
    from training.dqn.trainer import train

    teacher = load_teacher(cfg.teacher)
    spec = env_spec(cfg, cfg.scenario)
    check_teacher_env(teacher, spec)
    if teacher.privileged:
        raise ValueError(f"{kind} trains the student in its own (unprivileged) environment")
    dqn = dqn_config(cfg)
    make_learner = None
    if kd:

        def make_learner(net: torch.nn.Module, c: Any) -> KDLearner:
            return KDLearner(
                net,
                c,
                teacher.q_values,
                temperature=cfg.kd_temperature,
                weight=cfg.kd_weight,
                decay=cfg.kd_decay,
            )

    run_dir = out / "dqn"
    result = train(dqn, run_dir, progress=progress, make_learner=make_learner, plot=cfg.plots)
    student = load_torch_qnet(run_dir)
    run = trained_run(
        cfg,
        Part(spec, teacher),
        student,
        out=out,
        stage=kind,
        history=result.curve,
        wall_s=result.wall_s,
        env_seeds=[training_env_seed(dqn.seed, 0)],
    )
    dqn_run = {
        "config": dataclasses.asdict(dqn),
        "transitions": result.transitions,
        "updates": result.updates,
    }
    return write_student(run, cfg, out, strategy=cfg.strategy, kind=kind, extra={"dqn": dqn_run})


def register(app: typer.Typer) -> None:
    """``ran-distill distill`` and ``ran-distill report``, with the DQN runners."""
    from training.distill import cli as distill_cli
    from training.distill.report import cli as report_cli
    from training.dqn import distill_stages

    distill_cli.register(app, runners=RUNNERS)
    report_cli.register(app, extra_stages=distill_stages.STAGES, runners=RUNNERS)
