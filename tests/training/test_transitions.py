import numpy as np
import pytest

from training.dqn.transitions import NStepBuilder, final_observations


def _obs(t: int, n: int = 1) -> np.ndarray:
    return np.full((n, 2), float(t), np.float32)


def _step(b, t, reward, *, term=False, trunc=False, decision=True, final=None):
    n = b.num_envs
    return b.add(
        _obs(t, n),
        np.full(n, t),
        np.full(n, reward, float),
        np.full(n, term),
        np.full(n, trunc),
        _obs(t + 1, n) if final is None else final,
        np.full(n, decision),
    )


def test_one_step_transitions_link_consecutive_decisions():
    b = NStepBuilder(1, 2, n_step=1, gamma=0.9)
    assert len(_step(b, 0, 1.0)) == 0  # its successor is not known yet
    out = _step(b, 1, 2.0)
    assert len(out) == 1
    assert out.obs[0, 0] == 0 and out.action[0] == 0 and out.ret[0] == pytest.approx(1.0)
    assert out.next_obs[0, 0] == 1 and out.discount[0] == pytest.approx(0.9)


def test_three_step_return_and_discount():
    g = 0.5
    b = NStepBuilder(1, 2, n_step=3, gamma=g)
    for t, r in enumerate([1.0, 2.0, 4.0]):
        assert len(_step(b, t, r)) == 0
    out = _step(b, 3, 8.0)
    assert out.ret[0] == pytest.approx(1 + g * 2 + g * g * 4)
    assert out.next_obs[0, 0] == 3 and out.discount[0] == pytest.approx(g**3)


def test_termination_flushes_with_zero_discount_and_partial_returns():
    g = 0.5
    b = NStepBuilder(1, 2, n_step=3, gamma=g)
    _step(b, 0, 1.0)
    _step(b, 1, 2.0)
    out = _step(b, 2, 4.0, term=True, final=np.full((1, 2), 99.0, np.float32))
    assert len(out) == 3
    np.testing.assert_allclose(out.ret, [1 + g * 2 + g * g * 4, 2 + g * 4, 4])
    np.testing.assert_allclose(out.discount, 0.0)
    np.testing.assert_allclose(out.next_obs[:, 0], 99.0)
    assert len(_step(b, 3, 1.0)) == 0  # new episode starts clean


def test_truncation_bootstraps_from_final_observation():
    g = 0.5
    b = NStepBuilder(1, 2, n_step=2, gamma=g)
    _step(b, 0, 1.0)
    out = _step(b, 1, 2.0, trunc=True, final=np.full((1, 2), 7.0, np.float32))
    # decision 0: r0 + g r1, bootstrap g^2 from final; decision 1: r1, bootstrap g.
    order = np.argsort(out.obs[:, 0])
    np.testing.assert_allclose(out.ret[order], [1 + g * 2, 2])
    np.testing.assert_allclose(out.discount[order], [g**2, g])
    np.testing.assert_allclose(out.next_obs[:, 0], 7.0)


def test_non_decision_rewards_are_credited_to_the_previous_decision():
    b = NStepBuilder(1, 2, n_step=1, gamma=0.9)
    _step(b, 0, 1.0)
    _step(b, 1, 5.0, decision=False)  # HARQ retransmission delivering more bits
    out = _step(b, 2, 0.0)
    assert len(out) == 1
    assert out.ret[0] == pytest.approx(6.0)
    assert out.next_obs[0, 0] == 2  # bootstraps from the next *decision*, not the next slot


def test_rows_are_independent():
    b = NStepBuilder(2, 2, n_step=1, gamma=1.0)
    n = 2
    b.add(
        _obs(0, n),
        np.array([0, 0]),
        np.array([1.0, 1.0]),
        np.zeros(n, bool),
        np.zeros(n, bool),
        _obs(1, n),
        np.array([True, False]),
    )
    out = b.add(
        _obs(1, n),
        np.array([1, 1]),
        np.array([0.0, 0.0]),
        np.zeros(n, bool),
        np.zeros(n, bool),
        _obs(2, n),
        np.array([True, True]),
    )
    # Row 0 completes its first decision; row 1's first decision was at t=1.
    assert len(out) == 1 and out.ret[0] == pytest.approx(1.0)


def test_final_observations_accepts_gymnasium_object_arrays_and_float_arrays():
    nxt = np.zeros((3, 2), np.float32)
    done = np.array([False, True, False])
    obj = np.array([None, np.array([5.0, 6.0]), None], dtype=object)
    np.testing.assert_allclose(final_observations({"final_obs": obj}, nxt, done)[1], [5, 6])
    flt = np.full((3, 2), 3.0, np.float32)
    got = final_observations({"final_obs": flt}, nxt, done)
    np.testing.assert_allclose(got[:, 0], [0, 3, 0])


def _credit(rows, index, reward):
    from linkadapt.sim.reward import Credit

    return Credit(
        np.asarray(rows, np.int64), np.asarray(index, np.int64), np.asarray(reward, np.float32)
    )


def _dstep(b, t, credit, *, decision=True, trunc=False):
    n = b.num_envs
    return b.add(
        _obs(t, n),
        np.full(n, t),
        np.zeros(n),
        np.zeros(n, bool),
        np.full(n, trunc),
        _obs(t + 1, n),
        np.full(n, decision),
        credit,
    )


def test_delayed_credit_completes_a_transition_only_when_it_arrives():
    b = NStepBuilder(1, 2, n_step=1, gamma=0.5)
    empty = _credit([], [], [])
    assert len(_dstep(b, 0, empty)) == 0
    assert len(_dstep(b, 1, empty)) == 0  # successor known, but no credit yet
    assert len(_dstep(b, 2, empty, decision=False)) == 0
    out = _dstep(b, 3, _credit([0, 0], [1, 0], [0.25, -0.5]), decision=False)
    assert len(out) == 1  # decision 0 completes; decision 1 still awaits decision 2
    assert out.obs[0, 0] == 0 and out.ret[0] == pytest.approx(-0.5)
    assert out.next_obs[0, 0] == 1 and out.discount[0] == pytest.approx(0.5)
    out = _dstep(b, 4, empty)
    assert len(out) == 1 and out.obs[0, 0] == 1 and out.ret[0] == pytest.approx(0.25)
    assert out.next_obs[0, 0] == 4


def test_delayed_credit_flush_keeps_known_decisions_and_drops_the_rest():
    b = NStepBuilder(1, 2, n_step=1, gamma=0.5)
    empty = _credit([], [], [])
    _dstep(b, 0, empty)
    _dstep(b, 1, empty)
    out = _dstep(b, 2, _credit([0], [1], [1.0]), decision=False, trunc=True)
    assert len(out) == 1 and out.obs[0, 0] == 1  # decision 0's fate never became known
    assert out.next_obs[0, 0] == 3 and out.discount[0] == pytest.approx(0.5)  # final obs
    assert b.dropped == 1
    # the next episode numbers its decisions from 0 again
    _dstep(b, 10, empty)
    out = _dstep(b, 11, _credit([0], [0], [2.0]))
    assert len(out) == 1 and out.obs[0, 0] == 10 and out.ret[0] == pytest.approx(2.0)
