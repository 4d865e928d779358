import numpy as np
import pytest
import torch

from training.dqn.sequence import SequenceBatch, SequenceBuilder, SequenceReplay, sequence_targets


def _add(b, t, n=1, *, decision=True, term=False, reward=1.0, final=None):
    obs = np.full((n, 2), float(t), np.float32)
    return b.add(
        obs,
        np.full(n, t % 3),
        np.full(n, reward),
        np.full(n, term),
        np.zeros(n, bool),
        obs + 1 if final is None else final,
        np.full(n, decision),
        torch.full((1, n, 4), float(t)),
    )


def test_windows_overlap_by_burn_in_and_store_actor_state():
    b = SequenceBuilder(1, 2, hidden=4, seq_len=4, burn_in=1)
    got = [w for t in range(8) if (w := _add(b, t)) is not None]
    assert len(got) == 2
    first, second = got
    np.testing.assert_allclose(first.obs[0, :, 0], [0, 1, 2, 3, 4])  # 4 decisions + bootstrap
    assert first.length[0] == 4 and not first.terminal[0]
    # next window starts burn_in decisions before the first one's bootstrap
    np.testing.assert_allclose(second.obs[0, :, 0], [3, 4, 5, 6, 7])
    np.testing.assert_allclose(second.h0[0], 3.0)


def test_episode_end_closes_a_short_window_with_final_obs():
    b = SequenceBuilder(1, 2, hidden=4, seq_len=4, burn_in=1)
    _add(b, 0)
    w = _add(b, 1, term=True, final=np.full((1, 2), 42.0, np.float32))
    assert w.length[0] == 2 and w.terminal[0]
    assert w.obs[0, 2, 0] == 42.0
    assert _add(b, 2) is None  # the row restarted


def test_too_short_episode_windows_are_dropped():
    b = SequenceBuilder(1, 2, hidden=4, seq_len=4, burn_in=2)
    _add(b, 0)
    assert _add(b, 1, term=True) is None  # 2 decisions, all burn-in: no loss possible


def test_sequence_targets_n_step_and_termination():
    g = 0.5
    batch = SequenceBatch(
        obs=np.zeros((1, 4, 1), np.float32),
        action=np.zeros((1, 3), np.int64),
        reward=np.array([[1.0, 2.0, 4.0]], np.float32),
        length=np.array([3]),
        terminal=np.array([True]),
        h0=np.zeros((1, 2), np.float32),
    )
    q_boot = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    y, valid = sequence_targets(q_boot, batch, g, n_step=2)
    # t=0: 1 + g*2 + g^2*Q(2); t=1: 2 + g*4 (bootstrap at terminal end -> 0); t=2: 4
    np.testing.assert_allclose(y[0].numpy(), [1 + g * 2 + g * g * 30, 2 + g * 4, 4])
    assert valid.all()


def test_sequence_replay_samples_stored_windows():
    b = SequenceBuilder(2, 2, hidden=4, seq_len=3, burn_in=1)
    rep = SequenceReplay(10, 2, 3, 4, seed=0)
    for t in range(10):
        rep.add(_add(b, t, n=2))
    assert len(rep) > 0
    _, s, w = rep.sample(5)
    assert s.obs.shape == (5, 4, 2) and s.h0.shape == (5, 4)
    np.testing.assert_allclose(w, 1.0)
    with pytest.raises(ValueError):
        SequenceReplay(4, 2, 3, 4).sample(1)


def test_delayed_credit_holds_a_window_until_its_rewards_are_known():
    from linkadapt.sim.reward import Credit

    def add(b, t, credit):
        return b.add(
            np.full((1, 2), float(t), np.float32),
            np.array([t]),
            np.zeros(1),
            np.zeros(1, bool),
            np.zeros(1, bool),
            np.full((1, 2), t + 1.0, np.float32),
            np.ones(1, bool),
            torch.full((1, 1, 4), float(t)),
            credit,
        )

    none = Credit.empty()
    b = SequenceBuilder(1, 2, hidden=4, seq_len=2, burn_in=0)
    assert add(b, 0, none) is None
    assert add(b, 1, none) is None
    assert add(b, 2, Credit(np.array([0]), np.array([0]), np.array([1.0], np.float32))) is None
    w = add(b, 3, Credit(np.array([0, 0]), np.array([1, 2]), np.array([2.0, 3.0], np.float32)))
    assert w is not None and len(w) == 1  # decisions 0-1 (+ bootstrap 2); 2-3 wait for 4
    np.testing.assert_allclose(w.obs[0, :, 0], [0, 1, 2])
    np.testing.assert_allclose(w.reward[0], [1.0, 2.0])
