"""Distillation data: sources and mixtures, synthetic ranges, chunks on disk, the shuffle buffer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from linkadapt.features import FEATURE_NAMES, OBS_DIM, PRIVILEGED_NAMES
from training.distill.config import DistillConfig, source_fractions
from training.distill.dataset import ChunkStore, Dataset, content_key
from training.distill.engine import round_plan
from training.distill.sources import Collector, EnvSpec, Samples, make_env
from training.distill.synthetic import SIMULATOR_RANGES, covers, ranges_for, sample
from training.distill.teachers import load_teacher
from training.networks import build_qnet


class ConstantTeacher(nn.Module):
    obs_dim, n_actions = OBS_DIM, 28

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[:, :1] * 0 + torch.arange(28.0)[None, :]


def test_source_fractions_parse_and_reject() -> None:
    assert source_fractions("student") == {"student": 1.0}
    assert source_fractions("teacher=0.5, synthetic=0.5") == {"teacher": 0.5, "synthetic": 0.5}
    for bad in ("dagger", "teacher=0.5", "teacher=0.5,teacher=0.5", "teacher=x,student=1", ""):
        with pytest.raises(ValueError, match="source"):
            source_fractions(bad)


def test_round_plan_splits_samples_sources_and_environments() -> None:
    cfg = DistillConfig(teacher="t", samples=1000, rounds=2, source="teacher=0.5,student=0.5")
    plan = round_plan(cfg, n_parts=2)
    # round 0: the student cannot act yet, its share is teacher-driven
    assert plan[0] == [("teacher", 0, 250), ("teacher", 1, 250)]
    assert sorted(plan[1]) == [
        ("student", 0, 125),
        ("student", 1, 125),
        ("teacher", 0, 125),
        ("teacher", 1, 125),
    ]
    assert sum(n for r in plan for *_, n in r) == 1000


def test_the_declared_ranges_cover_what_the_simulator_emits() -> None:
    names = tuple(FEATURE_NAMES) + tuple(PRIVILEGED_NAMES)
    ranges = ranges_for(names)
    obs = []
    for scenario in ("randomized", "high-mobility"):
        env, o = make_env(EnvSpec(scenario, 64, 40), seed=3, privileged=True)
        rng = np.random.default_rng(0)
        for _ in range(60):
            o, *_ = env.step(rng.integers(0, 28, 64))
            obs.append(o)
    assert covers(ranges, np.concatenate(obs)) == {}
    drawn = sample(ranges, 5000, np.random.default_rng(1))
    assert covers(ranges, drawn) == {}
    # synthetic rows spread over the whole range, e.g. every CQI value appears
    assert len(np.unique(drawn[:, FEATURE_NAMES.index("cqi")])) == 16
    assert set(SIMULATOR_RANGES) == set(names)
    with pytest.raises(ValueError, match="no synthetic range"):
        ranges_for(("not_a_feature",))


def test_chunks_are_content_hashed_found_again_and_shuffled_through_a_buffer(tmp_path) -> None:
    store = ChunkStore(tmp_path)
    rng = np.random.default_rng(0)
    key = content_key(kind="test", n=1)
    chunks = []
    for i in range(5):
        obs = np.full((100, 1, 3), i, np.float32) + rng.uniform(0, 0.1, (100, 1, 3)).astype(
            np.float32
        )
        chunks.append(store.write(key, i, Samples(obs, np.zeros((100, 1, 4), np.float32))))
    assert store.find(key, 2) == chunks[2] and store.find(key, 5) is None
    assert store.find(content_key(kind="test", n=2), 0) is None
    data = Dataset(store, chunks)
    assert len(data) == 500 and len(data.sha256()) == 64
    assert Dataset(store, chunks[::-1]).sha256() != data.sha256()  # order is content
    seen = []
    for batch in data.batches(64, np.random.default_rng(1), buffer_rows=200):
        assert len(batch) <= 64
        seen.append(batch.obs[:, 0, 0].astype(int))
    values = np.concatenate(seen)
    assert np.array_equal(np.sort(values), np.repeat(np.arange(5), 100))  # every row once
    # the buffer holds 2 chunks: a batch mixes at most the chunks of one buffer fill
    assert max(len(np.unique(v)) for v in seen) <= 2
    # a chunk is readable only with its marker: a crash mid-write leaves no chunk
    (store.dir / f"{chunks[0].stem}.json").unlink()
    assert store.find(key, 0) is None


def test_a_gru_student_collects_sequences_of_one_ue_statefully() -> None:
    teacher = load_teacher(ConstantTeacher())
    student = build_qnet("gru-8", OBS_DIM, 28)
    cols = np.arange(OBS_DIM)
    collector = Collector(EnvSpec("mimo", 32, 30), teacher, cols, 5, with_features=False, seed=1)
    got = collector.collect(40, student, 0.0, np.random.default_rng(0))
    collector.close()
    assert got.obs.shape == (40, 5, OBS_DIM) and got.q.shape == (40, 5, 28)
    # every step is one of that UE's decisions, labelled by the teacher
    np.testing.assert_array_equal(got.q.argmax(-1), np.full((40, 5), 27))


def test_cartpole_rollouts_decide_on_every_row() -> None:
    class Push(nn.Module):
        obs_dim, n_actions = 4, 2

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return torch.stack([-obs[:, 2], obs[:, 2]], dim=1)

    teacher = load_teacher(Push())
    assert teacher.feature_names is None
    collector = Collector(
        EnvSpec("CartPole-v1", 4, 0), teacher, np.arange(4), 1, with_features=False, seed=0
    )
    got = collector.collect(100, None, 0.0, np.random.default_rng(0))
    collector.close()
    assert got.obs.shape == (100, 1, 4)
    np.testing.assert_array_equal(got.q[:, 0].argmax(1), (got.obs[:, 0, 2] > 0).astype(int))
