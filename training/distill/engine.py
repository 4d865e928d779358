"""One student from one or several teachers: collect rounds, fit, keep the best, resume.

The loop (one function, :func:`distill_student`)::

    held-out set (tuning seeds)                      -> validation every epoch
    for each round r:
        for each data source s of the mixture, each data environment k (teacher k):
            chunks of (r, s, k) on disk, or collect them (teacher, student or synthetic)
        fit the student on every chunk so far (shuffle buffer, early stopping)
        checkpoint the round

Round 0 never lets the student act (it knows nothing yet): its student share is
teacher-driven. Data environments are the strategy's business (:mod:`.strategies`): one
for a single teacher, one per scenario for multi-policy distillation. A rerun with the
same configuration finds the finished chunks (content keys, :mod:`.dataset`) and the
round checkpoints and continues where the last run stopped.

Seeds: the student's init and the minibatch order use ``seed``; every chunk's env seed is
derived from (seed, round, environment, source, chunk) into the training range
(:data:`linkadapt.seeds.TRAINING_ENV_BASE` and above) and recorded.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from linkadapt.seeds import TRAINING_ENV_BASE
from training.distill.config import SOURCES, DistillConfig, source_fractions
from training.distill.dataset import ChunkInfo, ChunkStore, Dataset, content_key
from training.distill.fit import Learner, train_round
from training.distill.sources import Collector, EnvSpec, Samples, SyntheticSource, synthetic_ranges
from training.distill.students import build_student, sequence_length
from training.distill.teachers import Teacher, student_columns, student_feature_names
from training.distill.validation import collect_held_out

# Fields that do not change what a round's data or the trained student are.
_NOT_TRAINING = {
    "eval_scenarios",
    "eval_seeds",
    "eval_ues",
    "eval_slots",
    "int8",
    "data_dir",
    "torch_threads",
}


@dataclass
class Part:
    """One data environment and the teacher that labels it (multi-policy: several)."""

    spec: EnvSpec
    teacher: Teacher
    columns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass
class StudentRun:
    """What :func:`distill_student` produced (the writer turns it into a directory)."""

    stage: str
    arch: str
    seed: int
    student: nn.Module
    feature_names: tuple[str, ...] | None
    parts: list[Part]
    data: Dataset
    held: Samples
    held_seeds: list[int]
    history: list[dict[str, Any]]
    env_seeds: list[int]
    resumed_rounds: int
    wall_s: float


def data_env_seed(seed: int, *path: int) -> int:
    """An env seed in the training range, derived from ``seed`` and a chunk's coordinates."""
    word = np.random.SeedSequence([seed, *path]).generate_state(1)[0]
    return TRAINING_ENV_BASE + int(word) % (1 << 30)


def round_plan(cfg: DistillConfig, n_parts: int) -> list[list[tuple[str, int, int]]]:
    """Per round, the (source, environment index, samples) to collect (module doc)."""
    fractions = source_fractions(cfg.source)
    plan = []
    for r in range(cfg.rounds):
        n_round = cfg.samples // cfg.rounds + (cfg.samples % cfg.rounds if r == 0 else 0)
        shares: dict[str, int] = {}
        names = [s for s in SOURCES if s in fractions]
        given = 0
        for i, name in enumerate(names):
            n = n_round - given if i == len(names) - 1 else int(n_round * fractions[name])
            given += n
            actor = "teacher" if (name == "student" and r == 0) else name
            shares[actor] = shares.get(actor, 0) + n
        parts = []
        for name in SOURCES:
            for k in range(n_parts):
                n = shares.get(name, 0) // n_parts + (1 if k < shares.get(name, 0) % n_parts else 0)
                if n > 0:
                    parts.append((name, k, n))
        plan.append(parts)
    return plan


def distill_student(
    cfg: DistillConfig,
    parts: list[Part],
    *,
    out: Path,
    arch: str,
    seed: int,
    stage: str = "student",
    data_dir: Path | None = None,
    progress: bool = True,
) -> StudentRun:
    """Distill the teachers of ``parts`` into a fresh ``arch`` student (module doc).

    Chunks go to ``cfg.data_dir``, else ``data_dir``, else ``out/data``; round checkpoints
    to ``out/checkpoints``.
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    n_actions = {p.teacher.n_actions for p in parts}
    if len(n_actions) != 1:
        raise ValueError(f"teachers disagree on the number of actions: {sorted(n_actions)}")
    names = student_feature_names(parts[0].teacher)
    for p in parts:
        p.columns = student_columns(p.teacher, names)
    obs_dim = len(parts[0].columns)
    with_feat = cfg.loss == "feature"
    t_len = sequence_length(arch, cfg.seq_len)
    torch.manual_seed(seed)
    student = build_student(arch, obs_dim, n_actions.pop())
    widths = {p.teacher.feature_width() for p in parts} if with_feat else {0}
    if len(widths) != 1:
        raise ValueError(f"feature loss: teachers' last hidden layers differ: {sorted(widths)}")
    learner = Learner.create(student, cfg, widths.pop())
    rng = np.random.default_rng(seed)
    store = ChunkStore(cfg.data_dir or data_dir or (out / "data"))
    run_key = _run_key(cfg, parts, arch, seed)
    bar = tqdm(
        total=cfg.samples + cfg.val_samples,
        unit="sample",
        unit_scale=True,
        desc=stage,
        disable=not progress,
        dynamic_ncols=True,
        mininterval=1.0,
    )
    held, held_seeds = collect_held_out(
        store, [(p.spec, p.teacher, p.columns) for p in parts], cfg.val_samples, t_len, bar.update
    )
    ckpt_dir = out / "checkpoints"
    plan = [
        [
            (
                source,
                k,
                n,
                _chunk_key(cfg, parts[k], source, t_len, with_feat, seed, r, k, n, run_key),
            )
            for source, k, n in round_parts
        ]
        for r, round_parts in enumerate(round_plan(cfg, len(parts)))
    ]
    resume_from = _last_checkpoint(ckpt_dir, stage, run_key, cfg.rounds)
    done_rounds = [item for round_parts in plan[: resume_from + 1] for item in round_parts]
    if any(store.find(key, 0) is None for *_, key in done_rounds):
        resume_from = -1  # the checkpoints outlived their data: start over
    data = Dataset(store)
    ranges_cache: dict[int, Any] = {}
    for r, round_parts in enumerate(plan):
        for source, k, n, key in round_parts:

            def make(i: int, rows: int, r: int = r, k: int = k, source: str = source) -> Samples:
                return _collect(
                    cfg,
                    parts[k],
                    source,
                    student,
                    t_len,
                    with_feat,
                    seed,
                    (r, k, i),
                    rows,
                    ranges_cache,
                    bar.update,
                )

            data.chunks.extend(_ensure_chunks(store, key, n, cfg.chunk_size, bar.update, make))
        ckpt = ckpt_dir / f"{stage}-{run_key[:16]}-round-{r}.pt"
        if r < resume_from:
            continue
        if r == resume_from:
            state = torch.load(ckpt, weights_only=True)
            learner.load_state_dict(state["learner"])
            learner.history = list(state["history"])
            rng.bit_generator.state = state["rng"]
            torch.set_rng_state(state["torch_rng"])
            continue
        train_round(learner, data, held, cfg, rng, r)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "learner": learner.state_dict(),
                "history": learner.history,
                "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
            },
            ckpt,
        )
    bar.close()
    env_seeds = sorted(
        {
            data_env_seed(seed, r, k, SOURCES.index(source), i)
            for r, round_parts in enumerate(plan)
            for source, k, n, _ in round_parts
            if source != "synthetic"
            for i in range(math.ceil(n / cfg.chunk_size))
        }
    )
    return StudentRun(
        stage=stage,
        arch=arch,
        seed=seed,
        student=learner.student.eval(),
        feature_names=names,
        parts=parts,
        data=data,
        held=held,
        held_seeds=held_seeds,
        history=learner.history,
        env_seeds=env_seeds,
        resumed_rounds=resume_from + 1,
        wall_s=time.perf_counter() - started,
    )


def _chunk_key(
    cfg: DistillConfig,
    part: Part,
    source: str,
    t_len: int,
    with_feat: bool,
    seed: int,
    r: int,
    k: int,
    n: int,
    run_key: str,
) -> str:
    """What the chunks of (round, environment, source) depend on; student-driven data
    depends on the student, so on every training choice (``run_key``)."""
    return content_key(
        kind="train",
        env=part.spec,
        teacher=part.teacher.sha256,
        cols=part.columns.tolist(),
        seq_len=t_len,
        feat=with_feat,
        source=source,
        epsilon=cfg.epsilon,
        seed=seed,
        round=r,
        part=k,
        n=n,
        chunk=cfg.chunk_size,
        run=run_key if source == "student" else None,
    )


def _collect(
    cfg: DistillConfig,
    part: Part,
    source: str,
    student: nn.Module,
    t_len: int,
    with_feat: bool,
    seed: int,
    where: tuple[int, int, int],
    rows: int,
    ranges_cache: dict[int, Any],
    progress: Any,
) -> Samples:
    """Chunk ``i`` of (round ``r``, environment ``k``, ``source``): ``rows`` samples."""
    r, k, i = where
    env_seed = data_env_seed(seed, r, k, SOURCES.index(source), i)
    rng = np.random.default_rng(env_seed)
    if source == "synthetic":
        if k not in ranges_cache:
            ranges_cache[k] = synthetic_ranges(part.spec, part.teacher, seed)
        src = SyntheticSource(
            part.teacher, part.columns, t_len, ranges_cache[k], with_features=with_feat
        )
        return src.collect(rows, rng, progress)
    collector = Collector(
        part.spec, part.teacher, part.columns, t_len, with_features=with_feat, seed=env_seed
    )
    try:
        actor = student.eval() if source == "student" else None
        return collector.collect(rows, actor, cfg.epsilon, rng, progress)
    finally:
        collector.close()


def _ensure_chunks(
    store: ChunkStore,
    key: str,
    n: int,
    chunk_size: int,
    progress: Any,
    make: Callable[[int, int], Samples],
) -> list[ChunkInfo]:
    """The chunks of ``key`` (``n`` rows): found on disk, else made and written."""
    chunks = []
    for i in range(math.ceil(n / chunk_size)):
        rows = min(chunk_size, n - i * chunk_size)
        found = store.find(key, i)
        if found is not None and found.rows == rows:
            progress(rows)
            chunks.append(found)
        else:
            chunks.append(store.write(key, i, make(i, rows)))
    return chunks


def _run_key(cfg: DistillConfig, parts: list[Part], arch: str, seed: int) -> str:
    fields = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _NOT_TRAINING}
    teachers = [p.teacher.sha256 for p in parts]
    return content_key(cfg=fields, arch=arch, seed=seed, teachers=teachers)


def _last_checkpoint(ckpt_dir: Path, stage: str, run_key: str, rounds: int) -> int:
    """The last round with a checkpoint of this run (-1: none)."""
    last = -1
    for r in range(rounds):
        if (ckpt_dir / f"{stage}-{run_key[:16]}-round-{r}.pt").is_file():
            last = r
        else:
            break
    return last


def trained_run(
    cfg: DistillConfig,
    part: Part,
    student: nn.Module,
    *,
    out: Path,
    stage: str,
    history: list[dict[str, Any]],
    wall_s: float,
    env_seeds: list[int],
) -> StudentRun:
    """A :class:`StudentRun` for a student trained elsewhere (by DQN, online or from
    scratch), with the held-out set of ``part`` so it is measured like any other student."""
    names = student_feature_names(part.teacher)
    part.columns = student_columns(part.teacher, names)
    store = ChunkStore(cfg.data_dir or (out / "data"))
    t_len = sequence_length(cfg.arch, cfg.seq_len)
    held, held_seeds = collect_held_out(
        store, [(part.spec, part.teacher, part.columns)], cfg.val_samples, t_len
    )
    return StudentRun(
        stage=stage,
        arch=cfg.arch,
        seed=cfg.seed,
        student=student.eval(),
        feature_names=names,
        parts=[part],
        data=Dataset(store),
        held=held,
        held_seeds=held_seeds,
        history=history,
        env_seeds=env_seeds,
        resumed_rounds=0,
        wall_s=wall_s,
    )
