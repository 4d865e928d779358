"""Policy distillation: a large teacher's Q-values → a tiny student.

Rusu et al. 2016: the student minimizes KL(softmax(q_T/τ) ‖ softmax(q_S)) with a small
temperature τ (0.01 sharpens the teacher's preferences). Czarnecki et al. 2019: when the
student's own state distribution drifts from the teacher's, student-driven data
(DAgger) helps. Here round 0 collects decisions with the teacher acting; later rounds
let the student act (the teacher only labels); the dataset aggregates all rounds.

Observations come from the same simulator and encoder as training and serving. The
student is exported in the model format of :mod:`training.export`, with a manifest that
adds the distillation provenance (teacher hash, data hash, command, seed) and the
student's simulator KPIs as ``reference_kpis`` for the xApp's live comparison.

Seeds (:mod:`linkadapt.seeds`): data collection and the student's init use ``seed``
(training range); the evaluation and ``reference_kpis`` use the first ``eval_seeds``
evaluation seeds (10 000 …). The manifest records both under ``"seeds"``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from training.config_cli import ConfigArgs, config_command
from training.config_fields import require

LOSSES = ("kl", "mse", "nll")
# The command's spelling of the DAgger switch (docs and README use --teacher-driven).
FLAGS = {"student_driven": ("--student-driven/--teacher-driven",)}


REFERENCE_KPIS = (
    "throughput_mbps",
    "cell_throughput_mbps",
    "throughput_p5_mbps",
    "zero_ue_share",
    "bler",
    "residual_bler",
    "spectral_efficiency",
)


@dataclass
class DistillConfig:
    """One distillation run (``ran-distill distill`` has one option per field)."""

    teacher: str
    """Teacher run or model directory (model.pt + manifest.json)"""
    arch: str = "mlp-3x32"
    """Student architecture (training.networks: mlp-3x32, mlp-4x32, mlp-DxW ...)"""
    scenario: str = "randomized"
    """Simulator scenario the data comes from"""
    samples: int = 400_000
    """Decisions collected over all rounds"""
    rounds: int = 4
    """Collection rounds: round 0 teacher-driven, later rounds student-driven"""
    student_driven: bool = True
    """Later rounds let the student act (DAgger); --teacher-driven: the teacher always acts"""
    num_envs: int = 256
    """UEs stepping together (decisions per slot are capped by the scheduler anyway)"""
    episode_slots: int = 200
    """Slots per drop"""
    loss: str = "kl"
    """kl (Rusu, on the tau-softened teacher), mse (on Q-values) or nll (on the argmax)"""
    temperature: float = 0.01
    """tau of the teacher's softmax for the kl loss"""
    epochs: int = 3
    """Passes over the aggregated data after each round"""
    batch_size: int = 1024
    """Minibatch size"""
    lr: float = 3e-3
    """Adam learning rate"""
    seed: int = 0
    """Seed of data collection and student init (training range, linkadapt.seeds)"""
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

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.rounds < 1 or self.samples < self.rounds:
            raise ValueError("need rounds >= 1 and samples >= rounds")
        positive_counts = ("num_envs", "episode_slots", "epochs", "batch_size")
        require(self, (*positive_counts, "eval_ues", "eval_slots"), lambda v: v >= 1, ">= 1")
        require(self, ("eval_seeds",), lambda v: v >= 0, ">= 0")
        require(self, ("lr", "temperature"), lambda v: v > 0, "> 0")
        if self.eval_seeds and not self.eval_scenarios:
            raise ValueError("eval_seeds > 0 needs at least one eval scenario")


def distillation_loss(student_q, teacher_q, loss: str, temperature: float):
    """Loss of student outputs ``[B, A]`` against teacher Q-values ``[B, A]`` (torch)."""
    import torch.nn.functional as F  # noqa: N812

    if loss == "kl":
        target = F.softmax(teacher_q / temperature, dim=1)
        return F.kl_div(F.log_softmax(student_q, dim=1), target, reduction="batchmean")
    if loss == "mse":
        return F.mse_loss(student_q, teacher_q)
    return F.cross_entropy(student_q, teacher_q.argmax(dim=1))


def collect(env, teacher, actor, n_decisions: int) -> tuple[np.ndarray, np.ndarray]:
    """Step ``env`` with ``actor`` until ``n_decisions`` new-transmission decisions are seen.

    Returns (obs float32 ``[n, obs_dim]``, teacher Q-values float32 ``[n, n_actions]``).
    """
    import torch

    from training.acting import act_q_network
    from training.vector_envs import upcoming_decisions

    obs_rows: list[np.ndarray] = []
    have = 0
    obs = env.last_obs
    while have < n_decisions:
        # only the UEs starting a transport block decide; the others' actions are ignored
        actions, _ = act_q_network(actor, obs, upcoming_decisions(env))
        next_obs, _, _, _, info = env.step(actions)
        decided = info["new_tx"]
        obs_rows.append(obs[decided])
        have += int(decided.sum())
        obs = next_obs
    env.last_obs = obs
    x = np.concatenate(obs_rows)[:n_decisions]
    with torch.no_grad():
        q = teacher(torch.from_numpy(x)).numpy()
    return x, q.astype(np.float32)


def train_student(
    student, x: np.ndarray, q: np.ndarray, cfg: DistillConfig, rng: np.random.Generator, optimizer
) -> float:
    """``cfg.epochs`` passes over (x, q); returns the last epoch's mean loss."""
    import torch

    xt, qt = torch.from_numpy(x), torch.from_numpy(q)
    mean = float("nan")
    for _ in range(cfg.epochs):
        order = rng.permutation(len(x))
        total = 0.0
        for start in range(0, len(x), cfg.batch_size):
            idx = torch.from_numpy(order[start : start + cfg.batch_size])
            loss = distillation_loss(student(xt[idx]), qt[idx], cfg.loss, cfg.temperature)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        mean = total / len(x)
    return mean


def distill(
    cfg: DistillConfig, out_dir: str | Path, *, progress: bool = True, teacher_net=None
) -> dict[str, Any]:
    """Run the distillation; write student weights, ONNX model and manifest to ``out_dir``.

    ``teacher_net`` (a torch module with ``obs_dim``/``n_actions``) replaces loading
    ``cfg.teacher`` from disk.
    """
    import torch
    from tqdm import tqdm

    from linkadapt.sim.envs import LinkAdaptVectorEnv
    from training.artifacts import load_torch_qnet
    from training.networks import build_qnet, parameter_count

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    teacher = teacher_net if teacher_net is not None else load_torch_qnet(cfg.teacher)
    student = build_qnet(cfg.arch, int(teacher.obs_dim), int(teacher.n_actions))
    optimizer = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    env = LinkAdaptVectorEnv(cfg.scenario, cfg.num_envs, cfg.seed, episode_slots=cfg.episode_slots)
    env.last_obs, _ = env.reset(seed=cfg.seed)

    started = time.time()
    xs, qs, history = [], [], []
    per_round = cfg.samples // cfg.rounds
    for r in tqdm(range(cfg.rounds), desc="distill rounds", disable=not progress):
        actor = student if (r > 0 and cfg.student_driven) else teacher
        x, q = collect(env, teacher, actor.eval(), per_round)
        xs.append(x)
        qs.append(q)
        student.train()
        loss = train_student(student, np.concatenate(xs), np.concatenate(qs), cfg, rng, optimizer)
        agree = _agreement(student, teacher, x)
        history.append(
            {
                "round": r,
                "actor": "student" if actor is student else "teacher",
                "samples": int(sum(len(a) for a in xs)),
                "loss": loss,
                "argmax_agreement": agree,
            }
        )
        if progress:
            tqdm.write(f"round {r}: loss {loss:.4f}, argmax agreement {agree:.3f}")
    student.eval()
    torch.save(student.state_dict(), out / "student.pt")
    data = np.concatenate(xs)
    summary = {
        "kind": "distilled-student",
        "config": asdict(cfg),
        "command": " ".join(["ran-distill", *sys.argv[1:]]) if sys.argv else None,
        "teacher_sha256": _teacher_sha256(cfg.teacher),
        "teacher_parameters": parameter_count(teacher),
        "student_parameters": parameter_count(student),
        "compression": parameter_count(teacher) / parameter_count(student),
        "data_sha256": hashlib.sha256(data.tobytes()).hexdigest(),
        "samples": int(len(data)),
        "rounds": history,
        "wall_seconds": time.time() - started,
    }
    if cfg.eval_seeds > 0:
        summary["evaluation"] = _evaluate(student, teacher, cfg)
        _plot(summary["evaluation"], out / "evaluation.png")
    _export(student, out, summary, cfg)
    (out / "distill.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _agreement(student, teacher, x: np.ndarray) -> float:
    import torch

    with torch.no_grad():
        t = torch.from_numpy(x)
        return float((student(t).argmax(1) == teacher(t).argmax(1)).float().mean())


def _evaluate(student, teacher, cfg: DistillConfig) -> dict[str, Any]:
    """Paired evaluation of student, teacher, OLLA and genie per scenario, on the first
    ``cfg.eval_seeds`` evaluation seeds (recorded per scenario as ``seeds``)."""
    from linkadapt.seeds import evaluation_seeds
    from linkadapt.sim.evaluation import baseline_factory, evaluate
    from training.policies import TorchQPolicy

    factories = {
        "student": lambda n: TorchQPolicy(student, "student"),
        "teacher": lambda n: TorchQPolicy(teacher, "teacher"),
        "olla": baseline_factory("olla"),
        "olla-tuned": baseline_factory("olla-tuned"),
        "genie": baseline_factory("genie"),
    }
    out = {}
    for scenario in cfg.eval_scenarios:
        result = evaluate(
            factories, scenario, evaluation_seeds(cfg.eval_seeds), cfg.eval_ues, cfg.eval_slots
        )
        out[scenario] = {
            "seeds": result.seeds,
            "summary": {
                p: {k: {"mean": m, "ci95": c} for k, (m, c) in row.items()}
                for p, row in result.summary().items()
            },
            "student_vs_teacher_pct": result.paired_gain_pct("student", "teacher"),
        }
    return out


def _plot(evaluation: dict[str, Any], path: Path) -> None:
    """Bar chart of throughput and BLER per scenario for student, teacher, OLLA, genie."""
    from training.plots import plot_kpi_bars

    bars = {
        sc: {
            p: {k: (v["mean"], v["ci95"]) for k, v in row.items()}
            for p, row in res["summary"].items()
        }
        for sc, res in evaluation.items()
    }
    plot_kpi_bars(bars, path)


def _export(student, out: Path, summary: dict[str, Any], cfg: DistillConfig) -> None:
    from training.export import export_qnet, simulator_golden_obs

    reference = {
        sc: {k: res["summary"]["student"][k]["mean"] for k in REFERENCE_KPIS}
        for sc, res in summary.get("evaluation", {}).items()
    }
    evaluation = summary.get("evaluation", {})
    seeds = {
        "data": cfg.seed,
        "student_init": cfg.seed,
        "reference_kpis": sorted({s for res in evaluation.values() for s in res["seeds"]}),
    }
    extra = {
        "source": {
            k: summary[k]
            for k in ("kind", "command", "teacher_sha256", "data_sha256", "samples", "compression")
        },
        "seed": cfg.seed,
        "seeds": seeds,
        "reference_kpis": reference,
        "distillation": {
            "loss": cfg.loss,
            "temperature": cfg.temperature,
            "student_driven": cfg.student_driven,
            "rounds": cfg.rounds,
        },
    }
    export_qnet(
        student,
        out,
        golden_obs=simulator_golden_obs("mimo", 8, seed=cfg.seed),
        arch=cfg.arch,
        extra=extra,
    )


def _teacher_sha256(teacher_dir: str) -> str | None:
    """SHA-256 of the teacher's ``model.pt`` (None for a teacher given as a module)."""
    from training.artifacts import TORCH_WEIGHTS_FILE, sha256_file

    path = Path(teacher_dir) / TORCH_WEIGHTS_FILE
    return sha256_file(path) if path.exists() else None


def register(app: typer.Typer) -> None:
    """Add ``ran-distill distill`` to the root typer app (no torch import here)."""

    @app.command("distill")
    @config_command(DistillConfig, flags=FLAGS)
    def distill_command(
        out: Annotated[Path, typer.Option(help="Output dir (student ONNX + manifest)")],
        *,
        config: ConfigArgs,
    ) -> None:
        """Distill a teacher into a small student, export ONNX + manifest, evaluate it."""
        try:
            cfg = DistillConfig(**config.values)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        summary = distill(cfg, out)
        typer.echo(
            json.dumps(
                {
                    k: summary[k]
                    for k in (
                        "student_parameters",
                        "teacher_parameters",
                        "compression",
                        "samples",
                        "wall_seconds",
                    )
                },
                indent=2,
            )
        )
        for sc, res in summary.get("evaluation", {}).items():
            m, c = res["student_vs_teacher_pct"]
            typer.echo(f"{sc}: student vs teacher throughput {m:+.2f} ± {c:.2f} %")
