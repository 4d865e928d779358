"""Report stages: named, budgeted, resumable.

A :class:`Stage` is a function of a :class:`Context` returning a JSON-able result. The
runner writes it to ``<root>/<stage>/result.json`` and then ``<root>/<stage>/done.json``
(wall time, budget, finish time): a stage with a done-marker is not run again, so an
interrupted report resumes at the first unfinished stage. Stages share the data directory
``<root>/data``: runs that need the same chunks (e.g. the teacher-driven rounds of the
loss comparison) collect them once.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.distill.report.budgets import Budget

DONE_FILE = "done.json"
RESULT_FILE = "result.json"


@dataclass
class Context:
    """What a stage may use: the budget, where to write, the generalist teacher, the
    results of the stages before it, and the DQN runners (when ``training.dqn`` provided
    them)."""

    budget: Budget
    root: Path
    teacher: str
    progress: bool = False
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    runners: Mapping[str, Any] = field(default_factory=dict)

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def distill(self, out: Path, **changes: Any) -> dict[str, Any]:
        """One ``ran-distill distill`` run at this budget (``changes`` override the
        budget's defaults) into ``out``; returns its summary."""
        from training.distill.config import DistillConfig
        from training.distill.report.budgets import BENCHMARKS
        from training.distill.strategies import run

        b = self.budget
        values: dict[str, Any] = {
            "teacher": self.teacher,
            "scenario": "randomized",
            "samples": b.samples,
            "batch_size": b.batch_size,
            "rounds": b.rounds,
            "epochs": b.epochs,
            "patience": b.patience,
            "val_samples": b.val_samples,
            "chunk_size": b.chunk_size,
            "num_envs": b.num_envs,
            "episode_slots": b.episode_slots,
            "eval_scenarios": list(BENCHMARKS),
            "eval_seeds": b.eval_seeds,
            "eval_ues": b.eval_ues,
            "eval_slots": b.eval_slots,
            "data_dir": str(self.root / "data"),
            "plots": False,
            # the tuned OLLA is the reference of the privileged comparison; the others
            # would only cost simulation time here
            "eval_baselines": ["olla-tuned"],
        }
        values.update(changes)
        cfg = DistillConfig(**values)
        reused = finished_summary(out, dataclasses.asdict(cfg))
        if reused is not None:
            return reused
        return run(cfg, out, progress=self.progress, runners=self.runners)


@dataclass(frozen=True)
class Stage:
    """A named report stage: ``run(ctx)`` -> result; ``needs``: stages whose results it
    reads (run first)."""

    name: str
    title: str
    run: Callable[[Context], dict[str, Any]]
    needs: tuple[str, ...] = ()


def run_stages(
    stages: Sequence[Stage],
    ctx: Context,
    *,
    only: Sequence[str] = (),
    redo: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:
    """Run ``stages`` in order (those in ``only`` and what they need, when given), skipping
    finished ones unless ``redo``; returns ``{stage: {"result", "done"}}`` for every stage
    with a done-marker."""
    by_name = {s.name: s for s in stages}
    unknown = set(only) - set(by_name)
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}; known: {list(by_name)}")
    wanted = _closure(only, by_name) if only else set(by_name)
    finished: dict[str, dict[str, Any]] = {}
    for stage in stages:
        d = ctx.stage_dir(stage.name)
        done = read_done(d)
        if stage.name in wanted and (done is None or (redo and stage.name in (only or wanted))):
            log(f"[{ctx.budget.name}] stage {stage.name}: running")
            started = time.perf_counter()
            result = stage.run(ctx)
            d.mkdir(parents=True, exist_ok=True)
            (d / RESULT_FILE).write_text(json.dumps(result, indent=2, default=str) + "\n")
            done = {
                "stage": stage.name,
                "budget": ctx.budget.name,
                "wall_s": round(time.perf_counter() - started, 1),
                "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            (d / DONE_FILE).write_text(json.dumps(done, indent=2) + "\n")
            log(f"[{ctx.budget.name}] stage {stage.name}: done in {done['wall_s']} s")
        elif done is not None:
            log(f"[{ctx.budget.name}] stage {stage.name}: finished before, reused")
        if done is not None:
            result = json.loads((d / RESULT_FILE).read_text())
            ctx.results[stage.name] = result
            finished[stage.name] = {"result": result, "done": done}
    return finished


def finished_summary(out: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The ``distill.json`` of a student already written to ``out`` with this very
    configuration, or ``None``: a stage rerun (``--redo``, an interrupted stage, a stage
    that gained a row) distills only the students it does not have yet."""
    from training.distill.writer import SUMMARY_FILE

    path = out / SUMMARY_FILE
    if not path.is_file():
        return None
    summary: dict[str, Any] = json.loads(path.read_text())
    return summary if same_config(summary.get("config"), config) else None


def same_config(saved: Any, config: dict[str, Any]) -> bool:
    """Whether a configuration read back from JSON is ``config`` (compared as JSON)."""
    return bool(saved == json.loads(json.dumps(config, default=str)))


def read_done(stage_dir: Path) -> dict[str, Any] | None:
    """The done-marker of a stage directory, or ``None`` if the stage has not finished."""
    path = stage_dir / DONE_FILE
    if not path.is_file() or not (stage_dir / RESULT_FILE).is_file():
        return None
    return json.loads(path.read_text())


def _closure(only: Sequence[str], by_name: Mapping[str, Stage]) -> set[str]:
    todo, seen = list(only), set()
    while todo:
        name = todo.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        todo.extend(by_name[name].needs)
    return seen
