"""The report stages that train with DQN (``ran-distill report`` adds them to its own).

- ``scenario-teachers``: one DQN teacher per benchmark, trained on that scenario: the
  teachers of the multi-policy rows;
- ``privileged-teachers``: two teachers on ``randomized`` with the same budget, one
  reading the privileged columns (true SINR, Doppler), one not;
- ``cartpole``: the KD-for-DQN reproduction on CartPole-v1: teachers of 128-128 (DQN,
  double DQN, dueling, DRQN), students of 64-64 trained by DQN with the decaying KD term
  at T = 5 (:mod:`training.dqn.kd`) and without it, over the budget's seeds; reported:
  episodes until the 100-episode average training return reaches 300, the final
  100-episode average and the greedy return. An offline (kl) student of the DQN teacher
  shows that CartPole distills offline too.

Sizes come from the report's budget (:mod:`training.distill.report.budgets`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from training.distill.report.budgets import BENCHMARKS, Budget
from training.distill.report.runner import Context, Stage, same_config

CARTPOLE = "CartPole-v1"
CARTPOLE_TARGET = 300.0
CARTPOLE_TEACHERS = {
    "dqn": {"arch": "mlp-2x128", "double_dqn": False},
    "double": {"arch": "mlp-2x128", "double_dqn": True},
    "dueling": {"arch": "dueling-2x128", "double_dqn": True},
    "drqn": {"arch": "gru-128", "double_dqn": True},
}
CARTPOLE_STUDENT = "mlp-2x64"
KD_TEMPERATURE = 5.0


def train_teacher(out: Path, budget: Budget, env: str, arch: str, **changes: Any) -> dict[str, Any]:
    """A DQN teacher in ``out`` (weights, config, curve, manifest) at the budget's size."""
    from training.artifacts import load_torch_qnet, write_teacher_manifest
    from training.dqn.config import DQNConfig
    from training.dqn.presets import preset_for
    from training.dqn.trainer import train

    values = {**DQNConfig.defaults(), **preset_for(env), "env": env, "arch": arch}
    if env != CARTPOLE:
        values.update(total_transitions=budget.teacher_transitions, eval_kpi_seeds=0)
        values.update(dict(budget.dqn_overrides))
        values["num_envs"] = budget.num_envs
    else:
        values.update(total_transitions=budget.cartpole_teacher_transitions)
        values.update(dict(budget.cartpole_overrides))
    values.update(changes)
    cfg = DQNConfig.from_dict(values)
    reused = _finished_row(out, cfg)
    if reused is not None:
        return reused
    log = max(1, cfg.total_transitions // budget.curve_points)
    result = train(cfg, out, progress=False, plot=False, log_interval=log)
    write_teacher_manifest(
        out,
        cfg=cfg,
        net=load_torch_qnet(out),
        wall_s=result.wall_s,
        transitions=result.transitions,
        updates=result.updates,
        command=None,
        kpis={"greedy_eval": dataclasses.asdict(result.final_eval) if result.final_eval else {}},
    )
    return _write_row(out, cfg, {"dir": str(out), "arch": arch, "env": env, **_curve_stats(result)})


ROW_FILE = "report_row.json"


def _finished_row(out: Path, cfg: Any) -> dict[str, Any] | None:
    """The row of a DQN run already finished in ``out`` with this configuration (a stage
    rerun or an interrupted stage trains only the agents it does not have)."""
    path = out / ROW_FILE
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    return saved["row"] if same_config(saved.get("config"), dataclasses.asdict(cfg)) else None


def _write_row(out: Path, cfg: Any, row: dict[str, Any]) -> dict[str, Any]:
    config = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    (out / ROW_FILE).write_text(json.dumps({"config": config, "row": row}, default=str) + "\n")
    return row


def scenario_teachers(ctx: Context) -> dict[str, Any]:
    d, b = ctx.stage_dir("scenario-teachers"), ctx.budget
    return {"teachers": {sc: train_teacher(d / sc, b, sc, b.teacher_arch) for sc in BENCHMARKS}}


def privileged_teachers(ctx: Context) -> dict[str, Any]:
    d, b = ctx.stage_dir("privileged-teachers"), ctx.budget
    return {
        "teachers": {
            name: train_teacher(d / name, b, "randomized", b.teacher_arch, privileged=flag)
            for name, flag in (("privileged", True), ("plain", False))
        }
    }


def cartpole(ctx: Context) -> dict[str, Any]:
    from training.distill.teachers import load_teacher
    from training.dqn.kd import KDLearner

    d, b = ctx.stage_dir("cartpole"), ctx.budget
    runs: dict[str, list[dict[str, Any]]] = {}
    offline: list[dict[str, Any]] = []
    for seed in range(b.cartpole_seeds):

        def add(name: str, row: dict[str, Any], seed: int = seed) -> None:
            runs.setdefault(name, []).append({"seed": seed, **row})

        student_budget = {"total_transitions": b.cartpole_student_transitions, "seed": seed}
        add(
            "student 64-64, RL only",
            train_teacher(
                d / f"seed{seed}" / "student-rl", b, CARTPOLE, CARTPOLE_STUDENT, **student_budget
            ),
        )
        for name, spec in CARTPOLE_TEACHERS.items():
            teacher_dir = d / f"seed{seed}" / f"teacher-{name}"
            add(
                f"teacher {name} 128-128",
                train_teacher(teacher_dir, b, CARTPOLE, seed=seed, **spec),
            )
            teacher = load_teacher(str(teacher_dir))

            def kd_learner(net: Any, cfg: Any, teacher: Any = teacher) -> KDLearner:
                return KDLearner(
                    net, cfg, teacher.q_values, temperature=KD_TEMPERATURE, weight=1.0, decay=0.9995
                )

            add(
                f"student 64-64, RL + KD from {name} (T = 5)",
                _train_kd(d / f"seed{seed}" / f"student-kd-{name}", b, seed, kd_learner),
            )
            if name == "dqn":
                out = d / f"seed{seed}" / "student-offline-kl"
                summary = ctx.distill(
                    out,
                    teacher=str(teacher_dir),
                    scenario=CARTPOLE,
                    num_envs=8,
                    arch=CARTPOLE_STUDENT,
                    eval_seeds=max(1, b.eval_seeds),
                    seed=seed,
                )
                ret = summary["evaluation"][CARTPOLE]
                offline.append(
                    {
                        "seed": seed,
                        "validation": summary["validation"],
                        "student_return": ret["student"]["mean"],
                        "teacher_return": ret["teacher"]["mean"],
                    }
                )
    return {"target": CARTPOLE_TARGET, "runs": runs, "offline_kl": offline}


def _train_kd(out: Path, budget: Budget, seed: int, make_learner: Any) -> dict[str, Any]:
    from training.dqn.config import DQNConfig
    from training.dqn.presets import preset_for
    from training.dqn.trainer import train

    values = {**DQNConfig.defaults(), **preset_for(CARTPOLE), "env": CARTPOLE}
    values.update(dict(budget.cartpole_overrides))
    values.update(
        arch=CARTPOLE_STUDENT, total_transitions=budget.cartpole_student_transitions, seed=seed
    )
    cfg = DQNConfig.from_dict(values)
    reused = _finished_row(out, cfg)
    if reused is not None:
        return reused
    result = train(
        cfg,
        out,
        progress=False,
        make_learner=make_learner,
        plot=False,
        log_interval=max(1, budget.cartpole_student_transitions // budget.curve_points),
    )
    row = {"dir": str(out), "arch": CARTPOLE_STUDENT, "env": CARTPOLE, **_curve_stats(result)}
    return _write_row(out, cfg, row)


def _curve_stats(result: Any) -> dict[str, Any]:
    """Episodes to the 100-episode average of :data:`CARTPOLE_TARGET` (None if never),
    the final average, the greedy return and the curve (episodes, average)."""
    curve = [
        (r.get("episodes", math.nan), r.get("train_episode_return", math.nan)) for r in result.curve
    ]
    reached = next((e for e, avg in curve if avg >= CARTPOLE_TARGET), None)
    final = curve[-1][1] if curve else math.nan
    greedy = result.final_eval.mean_return if result.final_eval else math.nan
    return {
        "episodes_to_target": reached,
        "final_average": None if math.isnan(final) else final,
        "greedy_return": None if math.isnan(greedy) else greedy,
        "transitions": result.transitions,
        "wall_s": round(result.wall_s, 1),
        "curve": [[e, a] for e, a in curve if not (math.isnan(e) or math.isnan(a))],
    }


STAGES = (
    Stage("scenario-teachers", "Scenario teachers (DQN)", scenario_teachers),
    Stage("privileged-teachers", "Privileged and plain teachers (DQN)", privileged_teachers),
    Stage("cartpole", "CartPole: knowledge distillation for DQN", cartpole),
)
