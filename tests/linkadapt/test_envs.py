"""Gymnasium interfaces: single-UE Env (check_env) and the natively batched VectorEnv."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from linkadapt import nr
from linkadapt.features import OBS_DIM, PRIVILEGED_DIM
from linkadapt.sim.envs import ENV_ID, LinkAdaptEnv, LinkAdaptVectorEnv


def test_registered():
    assert ENV_ID in gym.registry


def test_single_env_passes_check_env():
    env = gym.make(ENV_ID, episode_slots=20).unwrapped
    assert isinstance(env, LinkAdaptEnv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=True)


def test_single_env_episode():
    env = LinkAdaptEnv("scsu", episode_slots=7)
    obs, info = env.reset(seed=3)
    assert obs.shape == (OBS_DIM,) and obs.dtype == np.float32
    assert env.observation_space.contains(obs)
    assert env.action_space.n == nr.n_mcs(2)
    for t in range(7):
        obs, reward, terminated, truncated, info = env.step(5)
        assert env.observation_space.contains(obs)
        assert 0.0 <= reward <= 1.0 and not terminated
        assert truncated == (t == 6)
        assert isinstance(info["new_tx"], bool)
    with pytest.raises(RuntimeError):
        LinkAdaptEnv("scsu").step(0)


def test_single_env_privileged():
    env = LinkAdaptEnv("scsu", privileged=True, episode_slots=5)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (OBS_DIM + PRIVILEGED_DIM,)


def test_vector_env_shapes_and_autoreset():
    env = LinkAdaptVectorEnv("scsu", num_envs=4, seed=1, episode_slots=6, reward="first_tx")
    assert env.single_observation_space.shape == (OBS_DIM,)
    assert env.observation_space.shape == (4, OBS_DIM)
    assert env.single_action_space.n == 28
    with pytest.raises(RuntimeError):
        env.step(np.zeros(4, np.int64))
    obs, info = env.reset()
    assert obs.shape == (4, OBS_DIM) and obs.dtype == np.float32
    for t in range(6):
        obs, rew, term, trunc, info = env.step(np.full(4, 3))
        assert obs.shape == (4, OBS_DIM) and obs.dtype == np.float32
        assert rew.shape == (4,) and rew.dtype == np.float32
        assert np.all((rew >= 0) & (rew <= 1))
        assert term.shape == trunc.shape == (4,) and term.dtype == bool
        assert not term.any()
        assert info["new_tx"].shape == (4,) and info["new_tx"].dtype == bool
        assert np.all(rew[~info["new_tx"]] == 0)
        if t < 5:
            assert not trunc.any() and "final_obs" not in info and "episode_kpis" not in info
    # SAME_STEP autoreset: the truncation step reports the old episode and returns the new one
    assert trunc.all()
    assert info["final_obs"].shape == (4, OBS_DIM)
    kpis = info["episode_kpis"]
    for k in ("throughput_mbps", "bler", "residual_bler", "spectral_efficiency"):
        assert k in kpis
    assert not np.array_equal(info["final_obs"], obs)
    assert env.sim.t == 0
    obs, rew, term, trunc, info = env.step(np.full(4, 3))  # the new episode continues
    assert not trunc.any()
    assert env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP


def test_vector_env_privileged_adds_two_columns():
    env = LinkAdaptVectorEnv("scsu", num_envs=3, seed=0, privileged=True, episode_slots=4)
    obs, _ = env.reset()
    assert obs.shape == (3, OBS_DIM + PRIVILEGED_DIM)
    assert env.single_observation_space.shape == (OBS_DIM + PRIVILEGED_DIM,)
    plain = LinkAdaptVectorEnv("scsu", num_envs=3, seed=0, episode_slots=4)
    p_obs, _ = plain.reset()
    np.testing.assert_array_equal(obs[:, :OBS_DIM], p_obs)
    obs, *_ = env.step(np.zeros(3, np.int64))
    assert obs.shape == (3, OBS_DIM + PRIVILEGED_DIM)


def test_make_vec_vector_entry_point():
    envs = gym.make_vec(
        ENV_ID,
        num_envs=3,
        vectorization_mode="vector_entry_point",
        scenario="scsu",
        episode_slots=5,
    )
    try:
        assert envs.num_envs == 3
        obs, _ = envs.reset(seed=2)
        assert obs.shape == (3, OBS_DIM)
        obs, rew, term, trunc, _ = envs.step(envs.action_space.sample())
        assert obs.shape == (3, OBS_DIM) and rew.shape == (3,)
    finally:
        envs.close()


def _rollout(seed: int, slots: int = 30) -> tuple[np.ndarray, np.ndarray]:
    env = LinkAdaptVectorEnv("mimo", num_envs=6, seed=seed, episode_slots=slots + 5)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(0)
    all_obs, all_rew = [obs], []
    for _ in range(slots):
        obs, rew, *_ = env.step(rng.integers(0, 28, 6))
        all_obs.append(obs)
        all_rew.append(rew)
    return np.stack(all_obs), np.stack(all_rew)


def test_vector_env_deterministic_per_seed():
    o1, r1 = _rollout(7)
    o2, r2 = _rollout(7)
    assert np.array_equal(o1, o2) and np.array_equal(r1, r2)
    o3, r3 = _rollout(8)
    assert not np.array_equal(o1, o3)


def test_single_env_deterministic_per_seed():
    def run(seed):
        env = LinkAdaptEnv("mimo", episode_slots=50)
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for a in range(40):
            out.append(env.step(a % 28)[0])
        return np.stack(out)

    assert np.array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_privileged_single_env_passes_check_env():
    env = gym.make(ENV_ID, privileged=True, episode_slots=10).unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=True)


def test_vector_reset_without_seed_is_a_new_drop():
    env = LinkAdaptVectorEnv("mimo", num_envs=5, seed=0, episode_slots=10)
    env.reset()
    first = env.sim.large.signal_mw.copy()
    env.reset()
    assert not np.array_equal(env.sim.large.signal_mw, first)
    env.reset(seed=4)
    seeded = env.sim.large.signal_mw.copy()
    env.reset(seed=4)
    assert np.array_equal(env.sim.large.signal_mw, seeded)


def test_vector_env_rejects_invalid_actions():
    env = LinkAdaptVectorEnv("scsu", num_envs=2, seed=0, episode_slots=5)
    env.reset()
    with pytest.raises(ValueError):
        env.step(np.array([0, 28]))
    with pytest.raises(ValueError):
        env.step(np.array([-1, 0]))
