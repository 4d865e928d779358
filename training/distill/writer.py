"""A student directory: weights, ONNX (+ int8), manifest, ``distill.json``, evaluation plot.

::

    OUT/model.pt          torch weights: the directory loads as a teacher of the next stage
    OUT/model.onnx        the exported student (parity-checked on the held-out states)
    OUT/model.int8.onnx   with --int8
    OUT/manifest.json     model format + provenance (training.export, docs/model-format.md)
    OUT/distill.json      per-epoch history, held-out metrics, evaluation, everything above
    OUT/evaluation.png    simulator tasks with evaluation seeds

The manifest adds to the model format: ``source`` (kind, strategy, the command rebuilt
from the configuration, every teacher's SHA-256, the data hash, samples, compression),
``seeds`` (data env seeds, student init, held-out seeds, evaluation seeds, and per stage
for progressive runs), ``validation`` (held-out agreement), ``parity``, ``int8``,
``reference_kpis`` (for the xApp's live comparison), ``git``, ``versions``,
``created_utc`` and the full ``config``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from training.artifacts import TORCH_WEIGHTS_FILE, jsonable, read_manifest, write_manifest
from training.distill.config import DistillConfig
from training.distill.engine import StudentRun
from training.distill.evaluation import evaluate_gym, evaluate_simulator
from training.distill.export import INT8_MODEL_FILE, export_student, quantize_int8
from training.distill.provenance import (
    created_utc,
    git_commit,
    library_versions,
    rebuild_command,
)
from training.distill.validation import evaluate_held_out
from training.networks import is_recurrent, parameter_count

REFERENCE_KPIS = (
    "throughput_mbps",
    "cell_throughput_mbps",
    "throughput_p5_mbps",
    "zero_ue_share",
    "bler",
    "residual_bler",
    "spectral_efficiency",
)
SUMMARY_FILE = "distill.json"


def write_student(
    run: StudentRun,
    cfg: DistillConfig,
    out: Path,
    *,
    strategy: str,
    evaluate: bool = True,
    stages: list[dict[str, Any]] | None = None,
    kind: str = "distilled-student",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``out`` for ``run`` (module doc); returns the ``distill.json`` content.
    ``kind`` names how the student learned (``dqn-from-scratch``, ``online-kd``); ``extra``
    adds keys to ``distill.json`` (e.g. the DQN run of those)."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    student = run.student.eval()
    torch.save(student.state_dict(), out / TORCH_WEIGHTS_FILE)
    teachers = [
        {
            "scenario": p.spec.name,
            "label": p.teacher.label,
            "sha256": p.teacher.sha256,
            "arch": p.teacher.arch,
            "parameter_count": p.teacher.parameter_count,
            "privileged": p.teacher.privileged,
        }
        for p in run.parts
    ]
    n_student = parameter_count(student)
    n_teacher = run.parts[0].teacher.parameter_count
    validation = evaluate_held_out(student, run.held, cfg.temperature)
    seeds = {
        "student_init": run.seed,
        "data": cfg.seed,
        "data_env_seeds": run.env_seeds,
        "held_out": run.held_seeds,
        "stages": stages or [{"stage": run.stage, "arch": run.arch, "seed": run.seed}],
    }
    summary: dict[str, Any] = {
        "kind": kind,
        "strategy": strategy,
        "stage": run.stage,
        "arch": run.arch,
        "config": dataclasses.asdict(cfg),
        "command": rebuild_command(cfg, out),
        "teachers": teachers,
        "teacher_sha256": teachers[0]["sha256"],
        "teacher_parameters": n_teacher,
        "student_parameters": n_student,
        "compression": (n_teacher / n_student) if n_teacher else None,
        "data_sha256": run.data.sha256() if run.data.chunks else None,
        "samples": len(run.data),
        "chunks": len(run.data.chunks),
        "history": run.history,
        "validation": validation,
        "resumed_rounds": run.resumed_rounds,
        "seeds": seeds,
        "wall_seconds": round(run.wall_s, 2),
        **(extra or {}),
    }
    provenance = {
        "source": {
            k: summary[k]
            for k in (
                "kind",
                "strategy",
                "command",
                "teachers",
                "teacher_sha256",
                "data_sha256",
                "samples",
                "compression",
            )
        },
        "seed": run.seed,
        "distillation": {
            k: getattr(cfg, k)
            for k in ("loss", "temperature", "source", "rounds", "epochs", "patience", "epsilon")
        },
        "validation": {
            **validation,
            "rows": int(run.held.obs.shape[0] * run.held.obs.shape[1]),
            "seeds": run.held_seeds,
            "per_epoch": [
                {k: h[k] for k in h if k in ("round", "epoch") or k.startswith("val_")}
                for h in run.history
                if "round" in h  # a DQN-trained student has a learning curve instead
            ],
        },
        "git": git_commit(),
        "versions": library_versions(),
        "created_utc": created_utc(),
        "config": summary["config"],
    }
    summary["parity"] = export_student(
        student,
        out,
        run.held.obs,
        arch=run.arch,
        feature_names=run.feature_names,
        extra=provenance,
    )
    if cfg.int8:
        summary["int8"] = quantize_int8(out, run.held.obs)
    if evaluate and cfg.eval_seeds > 0:
        summary["evaluation"] = _evaluate(run, cfg, out)
        seeds["evaluation"] = sorted(
            {s for res in summary["evaluation"].values() for s in res.get("seeds", [])}
        )
        if "int8" in summary and not run.parts[0].spec.is_gym and not is_recurrent(student):
            summary["int8"]["kpi_change"] = {
                sc: res["paired"].get("onnx-int8_vs_onnx-float")
                for sc, res in summary["evaluation"].items()
            }
    _finish_manifest(out, summary)
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=jsonable) + "\n")
    return summary


def _evaluate(run: StudentRun, cfg: DistillConfig, out: Path) -> dict[str, Any]:
    spec = run.parts[0].spec
    if spec.is_gym:
        policies = {"student": run.student, "teacher": run.parts[0].teacher}
        return {spec.name: evaluate_gym(policies, spec.name, cfg.eval_seeds)}
    from training.policies import OnnxQPolicy

    extra: dict[str, Any] = {}
    pairs: tuple[tuple[str, str], ...] = ()
    if cfg.int8 and not is_recurrent(run.student):
        extra = {
            "onnx-float": lambda n: OnnxQPolicy(out / "model.onnx", "onnx-float"),
            "onnx-int8": lambda n: OnnxQPolicy(out / INT8_MODEL_FILE, "onnx-int8"),
        }
        pairs = (("onnx-int8", "onnx-float"),)
    teachers = {p.spec.name: p.teacher for p in run.parts}
    teachers["*"] = run.parts[0].teacher
    evaluation = evaluate_simulator(
        run.student,
        teachers,
        list(cfg.eval_scenarios),
        cfg.eval_seeds,
        cfg.eval_ues,
        cfg.eval_slots,
        trace=spec.trace,
        extra=extra,
        pairs=pairs,
        baselines=tuple(cfg.eval_baselines),
    )
    if cfg.plots:
        _plot(evaluation, out / "evaluation.png")
    return evaluation


def _finish_manifest(out: Path, summary: dict[str, Any]) -> None:
    """Add what is known only after export and evaluation to ``manifest.json``."""
    manifest = read_manifest(out)
    evaluation = summary.get("evaluation", {})
    manifest["reference_kpis"] = {
        sc: {k: res["summary"]["student"][k]["mean"] for k in REFERENCE_KPIS}
        for sc, res in evaluation.items()
        if "summary" in res
    }
    manifest["seeds"] = summary["seeds"]
    for key in ("int8", "parity"):
        if key in summary:
            manifest[key] = summary[key]
    write_manifest(out, manifest)


def _plot(evaluation: dict[str, Any], path: Path) -> None:
    """Bar chart of throughput and BLER per scenario for every evaluated policy."""
    from training.plots import plot_kpi_bars

    bars = {
        sc: {
            p: {k: (v["mean"], v["ci95"]) for k, v in row.items()}
            for p, row in res["summary"].items()
        }
        for sc, res in evaluation.items()
    }
    plot_kpi_bars(bars, path)
