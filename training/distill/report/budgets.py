"""How much of everything a report stage may spend: the ``tiny``, ``medium`` and ``full``
budgets.

``tiny`` runs every stage end to end in about a minute on one core: its numbers show that
the machinery works, not how good anything is. ``medium`` is the study sized for this
2-core machine (about two hours of CPU, two report processes on disjoint stages): a fifth
of the full samples per student, smaller DQN teachers, the full CartPole reproduction.
``full`` is the paper-sized study (tens of CPU hours; the command is in
``docs/distillation.md``). Every stage reads its sizes from here only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

BENCHMARKS = ("mimo", "mmimo", "scsu", "high-mobility", "bursty")


@dataclass(frozen=True)
class Budget:
    """Sizes of one report run.

    Attributes:
        name: ``tiny``, ``medium`` or ``full``.
        samples, batch_size, rounds, epochs, patience, val_samples, chunk_size: each
            distillation's.
        num_envs, episode_slots: the data environment's.
        eval_seeds, eval_ues, eval_slots: the paired evaluation of every student.
        compare_scenarios: evaluation scenarios of the loss / τ / data-source comparisons.
        teacher_transitions, teacher_arch: the DQN-trained simulator teachers (scenario
            teachers of the multi-policy rows, privileged and plain teacher pair).
        dqn_overrides: DQN settings of those teachers beyond the budget (warm-up, eval).
        cartpole_teacher_transitions, cartpole_student_transitions, cartpole_seeds: the
            KD-for-DQN reproduction.
        size_sweep: student architectures of the Pareto sweep.
        curve_points: learning-curve rows of every DQN run.
        tau_sweep: temperatures of the τ sweep.
    """

    name: str
    samples: int
    batch_size: int
    rounds: int
    epochs: int
    patience: int
    val_samples: int
    chunk_size: int
    num_envs: int
    episode_slots: int
    eval_seeds: int
    eval_ues: int
    eval_slots: int
    compare_scenarios: tuple[str, ...]
    teacher_transitions: int
    teacher_arch: str
    dqn_overrides: tuple[tuple[str, object], ...]
    cartpole_teacher_transitions: int
    cartpole_student_transitions: int
    cartpole_seeds: int
    cartpole_overrides: tuple[tuple[str, object], ...]
    size_sweep: tuple[str, ...]
    curve_points: int
    tau_sweep: tuple[float, ...] = (0.01, 0.1, 1.0, 5.0)


TINY = Budget(
    name="tiny",
    samples=1500,
    batch_size=128,
    rounds=2,
    epochs=2,
    patience=1,
    val_samples=400,
    chunk_size=1000,
    num_envs=32,
    episode_slots=40,
    eval_seeds=1,
    eval_ues=10,
    eval_slots=15,
    compare_scenarios=("mimo",),
    teacher_transitions=400,
    teacher_arch="mlp-2x32",
    dqn_overrides=(
        ("learning_starts", 100),
        ("batch_size", 64),
        ("eval_interval", 10_000),
        ("eval_steps", 5),
        ("eval_num_envs", 16),
        ("checkpoint_interval", 10_000),
        ("buffer_size", 5_000),
    ),
    cartpole_teacher_transitions=400,
    cartpole_student_transitions=400,
    cartpole_seeds=1,
    cartpole_overrides=(("learning_starts", 100), ("eval_steps", 50), ("eval_num_envs", 2)),
    size_sweep=("mlp-1x16", "mlp-3x32"),
    curve_points=10,
)

FULL = Budget(
    name="full",
    samples=2_000_000,
    batch_size=1024,
    rounds=4,
    epochs=5,
    patience=2,
    val_samples=10_000,
    chunk_size=65_536,
    num_envs=256,
    episode_slots=200,
    eval_seeds=5,
    eval_ues=210,
    eval_slots=1000,
    compare_scenarios=("mimo", "high-mobility"),
    teacher_transitions=5_000_000,
    teacher_arch="mlp-7x128",
    dqn_overrides=(),
    cartpole_teacher_transitions=100_000,
    cartpole_student_transitions=100_000,
    cartpole_seeds=5,
    cartpole_overrides=(),
    size_sweep=(
        "mlp-1x16",
        "mlp-2x16",
        "mlp-2x32",
        "mlp-3x32",
        "mlp-4x32",
        "mlp-3x64",
        "mlp-4x64",
        "mlp-2x128",
    ),
    curve_points=200,
)

# the full study scaled to this 2-core machine: fewer samples and smaller evaluations per
# student, smaller DQN teachers, a shorter size sweep; CartPole as in the full study
MEDIUM = dataclasses.replace(
    FULL,
    name="medium",
    samples=400_000,
    rounds=3,
    epochs=4,
    eval_ues=100,
    eval_slots=500,
    teacher_transitions=500_000,
    teacher_arch="mlp-4x128",
    size_sweep=("mlp-1x16", "mlp-2x16", "mlp-2x32", "mlp-3x32", "mlp-3x64", "mlp-2x128"),
    curve_points=100,
)

BUDGETS = {b.name: b for b in (TINY, MEDIUM, FULL)}


def budget(name: str) -> Budget:
    """The budget called ``name`` (``ValueError`` naming the known ones otherwise)."""
    if name not in BUDGETS:
        raise ValueError(f"budget must be one of {sorted(BUDGETS)}, got {name!r}")
    return BUDGETS[name]
