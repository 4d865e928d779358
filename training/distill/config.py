"""The configuration of a distillation run: one dataclass, a one-line docstring per field.

``ran-distill distill`` has one option per field (:mod:`training.config_cli`); the manifest
records the command rebuilt from these values. The vocabularies (losses, strategies, data
sources) are defined here once; the modules that implement them check nothing twice.
Importing this module does not import torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from training.config_fields import require

# Offline losses (a dataset labelled by the teacher), plus "online": the DQN loss with a
# decaying KD term, trained by training.dqn (no dataset).
LOSSES = ("kl", "reverse-kl", "mse", "nll", "feature", "online")
OFFLINE_LOSSES = LOSSES[:-1]
# "from-scratch" is the baseline without a teacher: the same student trained with DQN.
STRATEGIES = ("single", "multi", "progressive", "privileged", "from-scratch")
SOURCES = ("teacher", "student", "synthetic")
# The command's spelling of fields whose option name differs from the field name.
FLAGS: dict[str, tuple[str, ...]] = {"scenario": ("--scenario", "--env")}


@dataclass
class DistillConfig:
    """One distillation run (``ran-distill distill`` has one option per field)."""

    teacher: str = ""
    """Teacher: model directory (model.pt or student.pt + manifest) or ONNX file/directory"""
    strategy: str = "single"
    """single, multi (--scenario-teachers), progressive, privileged or from-scratch (DQN)"""
    arch: str = "mlp-3x32"
    """Student architecture: mlp-4x64, mlp-4x32, mlp-3x32, mlp-DxW or gru-W"""
    scenario: str = "randomized"
    """Data environment: simulator preset, scenario file (YAML/JSON) or Gymnasium id"""
    trace: str | None = None
    """Drive-test CSV replayed as every UE's large-scale SINR (simulator only)"""
    scenario_teachers: list[str] = field(default_factory=list)
    """multi: SCENARIO=TEACHER pairs (repeatable); each teacher labels its own scenario's data"""
    progressive_archs: list[str] = field(default_factory=lambda: ["mlp-4x64", "mlp-4x32"])
    """progressive: intermediate students, largest first; each teaches the next, --arch last"""
    source: str = "student"
    """Data: teacher, student (DAgger), synthetic, or fractions: teacher=0.5,student=0.5"""
    epsilon: float = 0.0
    """Exploration of the acting policy during collection (uniform random action)"""
    samples: int = 400_000
    """Decisions (or sequences for a GRU student) collected over all rounds"""
    rounds: int = 4
    """Collection rounds; with student data, round 0 is teacher-driven, later ones DAgger"""
    num_envs: int = 256
    """Sub-envs stepping together (UEs for the simulator)"""
    episode_slots: int = 200
    """Slots per simulator drop"""
    seq_len: int = 16
    """GRU student: decisions per training sequence (stateful rollouts)"""
    loss: str = "kl"
    """kl, reverse-kl, mse, nll, feature (hidden L2 + kl) or online (DQN + decaying KD)"""
    temperature: float = 0.01
    """tau of the teacher's softmax for kl, reverse-kl and feature"""
    feature_weight: float = 1.0
    """feature: weight of the hidden-layer L2 term (through a learned linear projection)"""
    kd_temperature: float = 5.0
    """online: temperature T of the KD term"""
    kd_weight: float = 1.0
    """online: initial weight of the KD term"""
    kd_decay: float = 0.999
    """online: the KD weight's factor per gradient step"""
    epochs: int = 3
    """Maximum passes over the aggregated data after each round"""
    patience: int = 2
    """Early stopping: epochs without a better held-out agreement before a round stops"""
    batch_size: int = 1024
    """Minibatch size (samples, or sequences for a GRU student)"""
    lr: float = 3e-3
    """Adam learning rate"""
    chunk_size: int = 65_536
    """Samples per dataset chunk on disk (one chunk in RAM while collecting)"""
    shuffle_buffer: int = 262_144
    """Samples held in RAM and shuffled while training (whole chunks, at least one)"""
    data_dir: str | None = None
    """Dataset directory (chunks reused by a rerun with the same configuration); default OUT/data"""
    val_samples: int = 10_000
    """Held-out states on tuning seeds: validation, early stopping and the export parity check"""
    int8: bool = False
    """Also write model.int8.onnx (onnxruntime dynamic quantization) and compare it"""
    seed: int = 0
    """Seed of data collection and student init (training range, linkadapt.seeds)"""
    torch_threads: int = 1
    """torch intra-op threads (the machine is shared)"""
    eval_scenarios: list[str] = field(
        default_factory=lambda: ["mimo", "mmimo", "high-mobility", "bursty"]
    )
    """Scenarios of the paired evaluation (repeat the option for several)"""
    eval_seeds: int = 3
    """Paired evaluation seeds (the first N from 10000) per scenario (0: skip)"""
    eval_ues: int = 210
    """UEs per evaluation run"""
    eval_slots: int = 1000
    """Slots per evaluation run"""
    eval_baselines: list[str] = field(default_factory=lambda: ["olla", "olla-tuned", "genie"])
    """Baselines beside student and teacher in the paired evaluation (repeatable)"""
    plots: bool = True
    """Draw evaluation.png (the report's many runs skip it)"""

    def __post_init__(self) -> None:
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("strategy", self.strategy, STRATEGIES)
        source_fractions(self.source)  # raises on a malformed mixture
        if self.rounds < 1 or self.samples < self.rounds:
            raise ValueError("need rounds >= 1 and samples >= rounds")
        counts = ("num_envs", "episode_slots", "seq_len", "epochs", "patience", "batch_size")
        require(self, counts, lambda v: v >= 1, ">= 1")
        require(self, ("chunk_size", "shuffle_buffer", "val_samples"), lambda v: v >= 1, ">= 1")
        require(self, ("eval_ues", "eval_slots", "torch_threads"), lambda v: v >= 1, ">= 1")
        require(self, ("eval_seeds",), lambda v: v >= 0, ">= 0")
        require(self, ("lr", "temperature", "kd_temperature"), lambda v: v > 0, "> 0")
        require(self, ("feature_weight", "kd_weight"), lambda v: v >= 0, ">= 0")
        require(self, ("epsilon", "kd_decay"), lambda v: 0.0 <= v <= 1.0, "in [0, 1]")
        if self.eval_seeds and not self.eval_scenarios:
            raise ValueError("eval_seeds > 0 needs at least one eval scenario")
        if self.strategy == "multi":
            scenario_teacher_pairs(self.scenario_teachers)
            if self.teacher:
                raise ValueError("strategy multi takes --scenario-teachers, not --teacher")
        elif not self.teacher:
            # from-scratch too: its teacher never trains it, it is the yardstick (held-out
            # agreement, evaluation against the teacher)
            raise ValueError(f"strategy {self.strategy} needs --teacher")
        if self.strategy == "progressive" and not self.progressive_archs:
            raise ValueError("progressive needs at least one --progressive-archs stage")
        if self.loss == "online" and self.strategy != "single":
            raise ValueError("loss online trains one student from one teacher: strategy single")
        if self.trace is not None and _is_gym_id(self.scenario):
            raise ValueError("--trace replays a drive test in the simulator, not in a Gym task")

    @property
    def student_acts(self) -> bool:
        """True when some collection rounds let the student act (DAgger)."""
        return source_fractions(self.source).get("student", 0.0) > 0

    def replace(self, **changes: Any) -> DistillConfig:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)


def source_fractions(spec: str) -> dict[str, float]:
    """``"student"`` -> {student: 1}; ``"teacher=0.5,synthetic=0.5"`` -> those fractions.

    Fractions must be > 0 and sum to 1 (within 1e-6); names are :data:`SOURCES`.
    """
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise ValueError(f"source must name one of {SOURCES}, got {spec!r}")
    if len(parts) == 1 and "=" not in parts[0]:
        _check_choice("source", parts[0], SOURCES)
        return {parts[0]: 1.0}
    out: dict[str, float] = {}
    for part in parts:
        name, sep, value = part.partition("=")
        name = name.strip()
        _check_choice("source", name, SOURCES)
        try:
            frac = float(value) if sep else float("nan")
        except ValueError:
            frac = float("nan")
        if not frac > 0 or name in out:
            raise ValueError(f"source {spec!r}: expected NAME=FRACTION (> 0, each name once)")
        out[name] = frac
    if abs(sum(out.values()) - 1.0) > 1e-6:
        raise ValueError(f"source {spec!r}: fractions sum to {sum(out.values()):g}, not 1")
    return out


def scenario_teacher_pairs(pairs: list[str]) -> list[tuple[str, str]]:
    """``["mimo=DIR", ...]`` -> [(scenario, teacher), ...]; at least one, scenarios unique."""
    out: list[tuple[str, str]] = []
    for pair in pairs:
        scenario, sep, teacher = pair.partition("=")
        if not sep or not scenario.strip() or not teacher.strip():
            raise ValueError(f"scenario_teachers: expected SCENARIO=TEACHER, got {pair!r}")
        out.append((scenario.strip(), teacher.strip()))
    if not out:
        raise ValueError("strategy multi needs --scenario-teachers SCENARIO=TEACHER (repeatable)")
    names = [s for s, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"scenario_teachers: each scenario once, got {names}")
    return out


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _is_gym_id(name: str) -> bool:
    # training.vector_envs.is_gym_id without importing gymnasium at config time
    return "-v" in name and name.rsplit("-v", 1)[1].isdigit()
