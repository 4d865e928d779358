"""The report's distillation stages (the DQN-trained ones are in ``training.dqn.distill_stages``).

Every stage distills with the budget's sizes (:class:`~.runner.Context.distill`) from the
generalist teacher on the ``randomized`` scenario unless it says otherwise, and returns
compact rows (:func:`student_row`) that :mod:`.markdown` turns into tables.

- ``table``: students 4×64, 4×32, 3×32, single-policy (the generalist teaches) and
  multi-policy (each benchmark's teacher labels its own scenario; needs
  ``scenario-teachers``), evaluated on the five benchmarks, with int8 copies;
- ``from-scratch``: the 3×32 trained by DQN with the same sample budget (needs the DQN
  runner);
- ``losses``, ``temperature``, ``sources``: one factor varied, the 3×32 student;
- ``progressive``: teacher → 4×64 → 4×32 → 3×32 against the table's direct 3×32;
- ``privileged``: a privileged teacher's student against a plain teacher's (same DQN
  budget; needs ``privileged-teachers``);
- ``size-sweep``: parameters against throughput loss (the Pareto front).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.distill.config import OFFLINE_LOSSES
from training.distill.report.budgets import BENCHMARKS
from training.distill.report.runner import Context, Stage
from training.distill.students import STUDENT_ARCHS

SOURCE_MIXES = ("teacher", "student", "synthetic", "teacher=0.5,student=0.25,synthetic=0.25")


def student_row(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    """What the report keeps of one student: sizes, held-out metrics, paired changes
    against its teacher (and the tuned OLLA) per scenario, MCS histograms, int8."""
    scenarios: dict[str, Any] = {}
    for sc, res in summary.get("evaluation", {}).items():
        if "summary" not in res:  # a Gymnasium task: returns
            scenarios[sc] = {"returns": res}
            continue
        student = res["summary"]["student"]
        olla = student.get("throughput_vs_olla-tuned_pct")
        scenarios[sc] = {
            "vs_teacher": res.get("vs_teacher"),
            "vs_olla_tuned_pct": [olla["mean"], olla["ci95"]] if olla else None,
            "throughput_mbps": [
                student["throughput_mbps"]["mean"],
                student["throughput_mbps"]["ci95"],
            ],
            "mcs_hist": {
                p: h
                for p, h in res.get("mcs_histograms", {}).items()
                if p in ("student", "teacher")
            },
        }
    onnx = out / "model.onnx"
    return {
        "dir": str(out),
        "arch": summary.get("arch"),
        "kind": summary.get("kind"),
        "strategy": summary.get("strategy"),
        "parameters": summary.get("student_parameters"),
        "teacher_parameters": summary.get("teacher_parameters"),
        "bytes": onnx.stat().st_size if onnx.is_file() else None,
        "compression": summary.get("compression"),
        "validation": summary.get("validation"),
        "samples": summary.get("samples"),
        "data_sha256": summary.get("data_sha256"),
        "wall_s": summary.get("wall_seconds"),
        "scenarios": scenarios,
        "int8": summary.get("int8"),
    }


def _distill_row(ctx: Context, out: Path, **changes: Any) -> dict[str, Any]:
    return student_row(ctx.distill(out, **changes), out)


def table(ctx: Context) -> dict[str, Any]:
    d = ctx.stage_dir("table")
    single = {a: _distill_row(ctx, d / "single" / a, arch=a, int8=True) for a in STUDENT_ARCHS}
    out: dict[str, Any] = {"single": single, "multi": {}, "benchmarks": list(BENCHMARKS)}
    teachers = ctx.results.get("scenario-teachers", {}).get("teachers")
    if teachers:
        pairs = [f"{sc}={teachers[sc]['dir']}" for sc in BENCHMARKS if sc in teachers]
        out["multi"] = {
            a: _distill_row(
                ctx, d / "multi" / a, arch=a, teacher="", strategy="multi", scenario_teachers=pairs
            )
            for a in STUDENT_ARCHS
        }
    return out


def from_scratch(ctx: Context) -> dict[str, Any]:
    if "from-scratch" not in ctx.runners:
        raise ValueError("stage from-scratch needs the DQN runner (ran-distill report has it)")
    d = ctx.stage_dir("from-scratch")
    return {"row": _distill_row(ctx, d, arch="mlp-3x32", strategy="from-scratch")}


def losses(ctx: Context) -> dict[str, Any]:
    """The six losses; ``online`` (DQN + decaying KD) needs the DQN runner."""
    d, scenarios = ctx.stage_dir("losses"), list(ctx.budget.compare_scenarios)
    names = [*OFFLINE_LOSSES, *(["online"] if "online" in ctx.runners else [])]
    return {
        "rows": {
            loss: _distill_row(ctx, d / loss, loss=loss, eval_scenarios=scenarios) for loss in names
        }
    }


def temperature(ctx: Context) -> dict[str, Any]:
    d, scenarios = ctx.stage_dir("temperature"), list(ctx.budget.compare_scenarios)
    return {
        "rows": {
            str(tau): _distill_row(ctx, d / f"tau-{tau}", temperature=tau, eval_scenarios=scenarios)
            for tau in ctx.budget.tau_sweep
        }
    }


def sources(ctx: Context) -> dict[str, Any]:
    d, scenarios = ctx.stage_dir("sources"), list(ctx.budget.compare_scenarios)
    return {
        "rows": {
            mix: _distill_row(
                ctx,
                d / mix.replace("=", "").replace(",", "-"),
                source=mix,
                eval_scenarios=scenarios,
            )
            for mix in SOURCE_MIXES
        }
    }


def progressive(ctx: Context) -> dict[str, Any]:
    d = ctx.stage_dir("progressive")
    row = _distill_row(ctx, d, strategy="progressive", arch="mlp-3x32")
    return {"progressive": row, "direct": ctx.results["table"]["single"]["mlp-3x32"]}


def privileged(ctx: Context) -> dict[str, Any]:
    teachers = ctx.results["privileged-teachers"]["teachers"]
    d, scenarios = ctx.stage_dir("privileged"), list(ctx.budget.compare_scenarios)
    return {
        "privileged": _distill_row(
            ctx,
            d / "privileged",
            teacher=teachers["privileged"]["dir"],
            strategy="privileged",
            eval_scenarios=scenarios,
        ),
        "plain": _distill_row(
            ctx, d / "plain", teacher=teachers["plain"]["dir"], eval_scenarios=scenarios
        ),
    }


def size_sweep(ctx: Context) -> dict[str, Any]:
    d = ctx.stage_dir("size-sweep")
    return {"rows": {a: _distill_row(ctx, d / a, arch=a) for a in ctx.budget.size_sweep}}


STAGES = (
    Stage(
        "table",
        "Students against their teachers on the benchmarks",
        table,
        needs=("scenario-teachers",),
    ),
    Stage("from-scratch", "The 3×32 trained from scratch by DQN", from_scratch),
    Stage("losses", "Loss comparison", losses),
    Stage("temperature", "τ sweep", temperature),
    Stage("sources", "Data sources", sources),
    Stage("progressive", "Progressive against direct", progressive, needs=("table",)),
    Stage("privileged", "Privileged teacher", privileged, needs=("privileged-teachers",)),
    Stage("size-sweep", "Size sweep", size_sweep),
)
# Where the DQN stages of training.dqn.distill_stages go in the run order.
ORDER = (
    "scenario-teachers",
    "privileged-teachers",
    "table",
    "from-scratch",
    "losses",
    "temperature",
    "sources",
    "progressive",
    "privileged",
    "size-sweep",
    "cartpole",
)


def ordered(stages: tuple[Stage, ...]) -> list[Stage]:
    """``stages`` in :data:`ORDER` (unknown names last, in the given order)."""
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(stages, key=lambda s: rank.get(s.name, len(ORDER)))
