import numpy as np
import pytest

from training.dqn.replay import PrioritizedReplayBuffer, ReplayBuffer, SumTree
from training.dqn.transitions import TransitionBatch


def _batch(values) -> TransitionBatch:
    v = np.asarray(values, np.float32)
    m = v.size
    return TransitionBatch(
        np.repeat(v[:, None], 3, 1),
        np.arange(m),
        v,
        v[:, None] * np.ones(3),
        np.ones(m, np.float32),
    )


def test_ring_buffer_overwrites_oldest():
    buf = ReplayBuffer(4, 3, seed=0)
    buf.add(_batch([1, 2, 3]))
    buf.add(_batch([4, 5, 6]))
    assert len(buf) == 4
    assert sorted(buf.ret.tolist()) == [3, 4, 5, 6]
    _, sample, w = buf.sample(64)
    assert set(sample.ret.tolist()) <= {3, 4, 5, 6}
    np.testing.assert_allclose(w, 1.0)


def test_oversized_batch_keeps_newest_rows():
    buf = ReplayBuffer(3, 3)
    buf.add(_batch([1, 2, 3, 4, 5]))
    assert sorted(buf.ret.tolist()) == [3, 4, 5]


def test_sample_is_reproducible_from_seed():
    a, b = ReplayBuffer(100, 3, seed=7), ReplayBuffer(100, 3, seed=7)
    for buf in (a, b):
        buf.add(_batch(range(50)))
    np.testing.assert_array_equal(a.sample(10)[0], b.sample(10)[0])


def test_sum_tree_finds_prefix_intervals():
    tree = SumTree(5)
    tree.set(np.arange(5), np.array([1.0, 0.0, 3.0, 0.0, 6.0]))
    assert tree.total == pytest.approx(10.0)
    np.testing.assert_array_equal(tree.find(np.array([0.5, 1.5, 3.9, 4.1, 9.9])), [0, 2, 2, 4, 4])


def test_prioritized_sampling_follows_priorities():
    buf = PrioritizedReplayBuffer(8, 3, seed=0, alpha=1.0, eps=0.0)
    idx = buf.add(_batch(range(4)))
    buf.update_priorities(idx, np.array([1.0, 1.0, 1.0, 7.0]))
    got, sample, w = buf.sample(10_000, beta=1.0)
    frac = np.mean(got == idx[3])
    assert frac == pytest.approx(0.7, abs=0.03)
    # importance weights undo the bias: the over-sampled item gets the smallest weight
    assert w[got == idx[3]].max() < w[got != idx[3]].min()


def test_state_dict_roundtrip_preserves_contents_and_sampling():
    a = PrioritizedReplayBuffer(16, 3, seed=3)
    a.add(_batch(range(10)))
    a.update_priorities(np.arange(10), np.linspace(0.1, 2, 10))
    b = PrioritizedReplayBuffer(16, 3, seed=99)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.sample(32)[0], b.sample(32)[0])
