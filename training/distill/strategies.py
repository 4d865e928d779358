"""Distillation strategies: which teachers label which data, and how many students in a row.

- ``single``: one teacher, one data environment, one student.
- ``privileged``: ``single`` with a teacher that reads the simulator's privileged columns
  (true SINR, Doppler); the student reads the encoder's columns only (sliced by name),
  which is what a gNB can give it. Refused when the teacher is not privileged.
- ``multi``: several scenario teachers, each labelling its own scenario's data (Rusu et
  al. 2016's multi-task distillation); the chunks of all scenarios form one dataset that
  the shuffle buffer mixes.
- ``progressive``: teacher -> each of ``progressive_archs`` -> ``arch``; every stage's
  student directory (``model.pt`` + manifest) is loaded as the next stage's teacher,
  exactly as a user would pass it to ``--teacher``. Stage ``k`` is seeded ``seed + k``.
- ``from-scratch`` (and ``--loss online``): trained with DQN, not from a dataset; those
  runners live in ``training.dqn.distill_runners`` (``training.dqn`` sits on top of this
  package) and reach :func:`run` through ``runners`` (``ran-distill distill`` passes them).

Everything is checked before any data is collected: the architecture names, the teachers
(they load, they fit the environment, a privileged teacher for ``privileged``), the loss's
needs, and whether the strategy's runner is available.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from training.distill.config import DistillConfig, scenario_teacher_pairs
from training.distill.engine import Part, distill_student
from training.distill.sources import EnvSpec
from training.distill.teachers import Teacher, load_teacher
from training.distill.writer import write_student

# (cfg, out, progress) -> the run's summary; provided by training.dqn.distill_runners.
Runner = Callable[[DistillConfig, Path, bool], dict[str, Any]]
DQN_MODES = ("online", "from-scratch")


def dqn_mode(cfg: DistillConfig) -> str | None:
    """``"online"``, ``"from-scratch"`` or ``None`` (offline distillation)."""
    if cfg.loss == "online":
        return "online"
    if cfg.strategy == "from-scratch":
        return "from-scratch"
    return None


def run(
    cfg: DistillConfig,
    out: str | Path,
    *,
    progress: bool = True,
    teacher_net: Any = None,
    runners: Mapping[str, Runner] | None = None,
) -> dict[str, Any]:
    """Run the configured strategy into ``out``; returns the final student's summary.

    ``teacher_net`` (a torch module with ``obs_dim``/``n_actions``) replaces loading
    ``cfg.teacher`` (single, privileged, progressive).
    """
    import torch

    from training.networks import arch_spec

    out = Path(out)
    torch.set_num_threads(cfg.torch_threads)
    for arch in (cfg.arch, *(cfg.progressive_archs if cfg.strategy == "progressive" else ())):
        arch_spec(arch)  # a bad name fails now, not after collecting
    mode = dqn_mode(cfg)
    if mode is not None:
        runner = (runners or {}).get(mode)
        if runner is None:
            raise ValueError(
                f"{mode} trains with DQN: run it through `ran-distill distill` or pass "
                "runners=training.dqn.distill_runners.RUNNERS"
            )
        return runner(cfg, out, progress)
    if cfg.strategy == "multi":
        parts = [
            Part(env_spec(cfg, scenario), _teacher(path, None))
            for scenario, path in scenario_teacher_pairs(cfg.scenario_teachers)
        ]
        for part in parts:
            check_teacher_env(part.teacher, part.spec)
        student = distill_student(
            cfg, parts, out=out, arch=cfg.arch, seed=cfg.seed, progress=progress
        )
        return write_student(student, cfg, out, strategy="multi")
    teacher = _teacher(cfg.teacher, teacher_net)
    spec = env_spec(cfg, cfg.scenario)
    check_teacher_env(teacher, spec)
    if cfg.strategy == "privileged" and not teacher.privileged:
        raise ValueError(
            f"strategy privileged needs a teacher that reads the privileged columns; "
            f"{teacher.label} reads {teacher.obs_dim} columns (train one with --privileged)"
        )
    if cfg.strategy == "progressive":
        return _progressive(cfg, out, teacher, spec, progress)
    student = distill_student(
        cfg, [Part(spec, teacher)], out=out, arch=cfg.arch, seed=cfg.seed, progress=progress
    )
    return write_student(student, cfg, out, strategy=cfg.strategy)


def env_spec(cfg: DistillConfig, scenario: str) -> EnvSpec:
    """The data environment ``scenario`` with the run's sizes and trace."""
    return EnvSpec(scenario, cfg.num_envs, cfg.episode_slots, cfg.trace)


def check_teacher_env(teacher: Teacher, spec: EnvSpec) -> None:
    """``ValueError`` when ``teacher`` cannot read ``spec``'s observations."""
    from linkadapt import features

    if spec.is_gym:
        from training.vector_envs import env_dims, make_vector_env

        env = make_vector_env(spec.name, 1, 0)
        obs_dim, n_actions = env_dims(env)
        env.close()
        if (obs_dim, n_actions) != (teacher.obs_dim, teacher.n_actions):
            raise ValueError(
                f"teacher {teacher.label} maps {teacher.obs_dim} columns to "
                f"{teacher.n_actions} actions; {spec.name} has {obs_dim} and {n_actions}"
            )
        return
    sim_names = tuple(features.FEATURE_NAMES) + (
        tuple(features.PRIVILEGED_NAMES) if teacher.privileged else ()
    )
    if teacher.feature_names != sim_names:
        raise ValueError(
            f"teacher {teacher.label} does not read the simulator's observation "
            f"(schema {features.OBS_SCHEMA_VERSION}, {len(sim_names)} columns); "
            f"it reads {teacher.obs_dim} columns"
        )


def _progressive(
    cfg: DistillConfig, out: Path, teacher: Teacher, spec: EnvSpec, progress: bool
) -> dict[str, Any]:
    archs = [*cfg.progressive_archs, cfg.arch]
    stages: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for k, arch in enumerate(archs):
        last = k == len(archs) - 1
        name = f"stage-{k}-{arch}"
        stage_out = out if last else out / name
        seed = cfg.seed + k
        stages.append({"stage": name, "arch": arch, "seed": seed, "teacher": teacher.label})
        student = distill_student(
            cfg,
            [Part(spec, teacher)],
            out=stage_out,
            arch=arch,
            seed=seed,
            stage=name,
            data_dir=out / "data",
            progress=progress,
        )
        summary = write_student(
            student, cfg, stage_out, strategy="progressive", evaluate=last, stages=list(stages)
        )
        stages[-1]["validation"] = summary["validation"]
        if not last:
            teacher = load_teacher(str(stage_out))  # the student directory, as a teacher
    return summary


def _teacher(spec: str, net: Any) -> Teacher:
    return load_teacher(net) if net is not None else load_teacher(spec)
