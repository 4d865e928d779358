"""Seed hygiene: disjoint training / tuning / evaluation ranges and their helpers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from linkadapt import seeds
from linkadapt.seeds import (
    EVALUATION,
    RANGES,
    TRAINING,
    TUNING,
    check_range,
    evaluation_seeds,
    parse_seeds,
    training_env_seed,
    tuning_seeds,
)


def _overlap(a: tuple[int, int | None], b: tuple[int, int | None]) -> bool:
    hi_a = a[1] if a[1] is not None else float("inf")
    hi_b = b[1] if b[1] is not None else float("inf")
    return max(a[0], b[0]) < min(hi_a, hi_b)


def test_ranges_are_disjoint():
    for r1, r2 in itertools.combinations(RANGES.values(), 2):
        for a, b in itertools.product(r1.intervals, r2.intervals):
            assert not _overlap(a, b), (r1.name, r2.name)
    # and every seed we hand out lands in exactly one range
    for s in [0, 4_999, 5_000, 9_999, 10_000, 19_999, 100_000, 10**9]:
        assert sum(s in r for r in RANGES.values()) == 1, s
    for s in (-1, 20_000, 99_999):
        assert not any(s in r for r in RANGES.values()), s


def test_documented_boundaries():
    assert 0 in TRAINING and 4_999 in TRAINING and 5_000 not in TRAINING
    assert 100_000 in TRAINING and 123_456_789 in TRAINING
    assert 5_000 in TUNING and 9_999 in TUNING and 10_000 not in TUNING
    assert 10_000 in EVALUATION and 19_999 in EVALUATION and 20_000 not in EVALUATION
    assert np.int64(10_001) in EVALUATION and "10001" not in EVALUATION
    assert "5 000–9 999" in TUNING.describe() and "≥ 100 000" in TRAINING.describe()


def test_first_seeds_of_each_range():
    assert evaluation_seeds(5) == [10_000, 10_001, 10_002, 10_003, 10_004]
    assert tuning_seeds(2) == [5_000, 5_001]
    with pytest.raises(ValueError):
        evaluation_seeds(0)
    with pytest.raises(ValueError, match="only 10000"):
        evaluation_seeds(10_001)


def test_training_env_seeds_stay_in_the_training_range_and_are_distinct():
    got = {training_env_seed(s, w) for s in (0, 1, 7, 4_999) for w in (0, 1, 999)}
    assert len(got) == 12
    assert all(s in TRAINING and s >= seeds.TRAINING_ENV_BASE for s in got)
    # the old scheme seed + 10 007 (worker + 1) hit the evaluation range; this one cannot
    assert all(s not in EVALUATION and s not in TUNING for s in got)
    assert training_env_seed(3, 2) == 103_002
    with pytest.raises(ValueError):
        training_env_seed(0, 1_000)
    with pytest.raises(ValueError):
        training_env_seed(-1, 0)


def test_check_range_names_offenders():
    assert check_range([10_000, 10_007], "evaluation") == [10_000, 10_007]
    with pytest.raises(ValueError, match=r"seeds 0, 1 are outside the tuning range \(5 000"):
        check_range([0, 1, 5_000], "tuning")
    with pytest.raises(ValueError, match="unknown seed range"):
        check_range([0], "testing")
    assert check_range([7], TRAINING) == [7]


def test_parse_seeds():
    assert parse_seeds("3") == [10_000, 10_001, 10_002]
    assert parse_seeds("2", "tuning") == [5_000, 5_001]
    assert parse_seeds("4, 9,11") == [4, 9, 11]  # explicit lists stay possible
    for bad in ("zero", "0", ","):
        with pytest.raises(ValueError):
            parse_seeds(bad)
