"""Gymnasium interface to the simulator: a natively batched VectorEnv and a single-UE Env.

Each sub-env of :class:`LinkAdaptVectorEnv` is one UE; all UEs share cells and step in
one vectorized simulator call. Episodes are drops of ``episode_slots`` slots; every
reset starts a new drop (the ``randomized`` scenario re-draws its deployment then).

- observation: float32 ``[OBS_DIM]`` per UE (+ ``PRIVILEGED_DIM`` with ``privileged``),
  the feature encoder's schema (:mod:`linkadapt.features`);
- action: ``Discrete(n_mcs)``, the MCS index for the UE's next new transmission;
- reward (:mod:`linkadapt.sim.reward`): with ``reward="harq"`` (default) a decision's
  credit arrives when its transport block finishes, some steps later:
  ``info["credit"]`` is a :class:`~linkadapt.sim.reward.Credit` naming (row, decision
  index, reward), where a row's decisions are numbered 0, 1, ... since its episode
  started; the returned reward array is those credits summed per row (for logging).
  ``reward="first_tx"`` gives the immediate first-attempt reward instead (no credit);
- ``info["new_tx"]``: bool per UE, True where the action was used (a new transport
  block); elsewhere the action was ignored (retransmission or not scheduled), so a
  learner stores only those transitions;
- autoreset: SAME_STEP; all UEs truncate together, ``info["final_obs"]`` holds the last
  observation and ``info["episode_kpis"]`` the drop's KPI summary.

Registered ids: ``RanDistill/LinkAdapt-v0`` (``gymnasium.make`` gives the single-UE env,
``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`` the batched one).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from linkadapt import nr
from linkadapt.features import OBS_DIM, PRIVILEGED_DIM
from linkadapt.sim import ScenarioConfig, Simulator, load_scenario
from linkadapt.sim.reward import RewardConfig

ENV_ID = "RanDistill/LinkAdapt-v0"
OBS_BOUND = 10.0  # features are scaled to about [-1, 1]; the box is generous


def _obs_space(privileged: bool) -> gym.spaces.Box:
    dim = OBS_DIM + (PRIVILEGED_DIM if privileged else 0)
    return gym.spaces.Box(-OBS_BOUND, OBS_BOUND, shape=(dim,), dtype=np.float32)


class LinkAdaptVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` UEs of one scenario, stepped together (see module doc)."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(
        self,
        scenario: str | ScenarioConfig = "randomized",
        num_envs: int = 256,
        seed: int = 0,
        privileged: bool = False,
        episode_slots: int = 200,
        reward: RewardConfig | str = "harq",
    ) -> None:
        self.scenario = load_scenario(scenario)
        self.num_envs = int(num_envs)
        self.episode_slots = int(episode_slots)
        self.privileged = privileged
        self.single_observation_space = _obs_space(privileged)
        self.single_action_space = gym.spaces.Discrete(nr.n_mcs(self.scenario.mcs_table))
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, self.num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.reward = RewardConfig(reward) if isinstance(reward, str) else reward
        self.sim = self._simulator(seed)
        self._obs: np.ndarray | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self.sim = self._simulator(seed)
        else:
            self.sim.drop()
        self._obs = self.sim.observe().obs
        return self._obs, {}

    def _simulator(self, seed: int) -> Simulator:
        return Simulator(
            self.scenario, self.num_envs, seed, privileged=self.privileged, reward=self.reward
        )

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        result = self.sim.step(np.asarray(actions, dtype=np.int64).reshape(self.num_envs))
        info: dict[str, Any] = {"new_tx": result.new_tx, "sent_bits": result.sent_bits}
        done = self.sim.t >= self.episode_slots
        obs = self.sim.observe().obs
        reward = result.reward
        if self.reward.kind == "harq":
            info["credit"] = self.sim.pop_credits()
            reward = info["credit"].per_row(self.num_envs)
        if done:
            info["final_obs"] = obs
            info["episode_kpis"] = self.sim.summary()
            self.sim.drop()
            obs = self.sim.observe().obs
        self._obs = obs
        terminated = np.zeros(self.num_envs, bool)
        truncated = np.full(self.num_envs, done)
        return obs, reward.astype(np.float32), terminated, truncated, info


class LinkAdaptEnv(gym.Env):
    """One UE in its own simulator (for generic RL tooling and ``check_env``).

    With the ``harq`` reward the credits of blocks that finished arrive in later steps
    (a delayed reward); ``reward="first_tx"`` makes it immediate.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        scenario: str | ScenarioConfig = "scsu",
        privileged: bool = False,
        episode_slots: int = 200,
        reward: str = "harq",
    ) -> None:
        self.scenario = load_scenario(scenario)
        self.privileged = privileged
        self.episode_slots = episode_slots
        self.reward = reward
        self.observation_space = _obs_space(privileged)
        self.action_space = gym.spaces.Discrete(nr.n_mcs(self.scenario.mcs_table))
        self.sim: Simulator | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        sim_seed = int(self.np_random.integers(2**31)) if seed is None else seed
        self.sim = Simulator(
            self.scenario, 1, sim_seed, privileged=self.privileged, reward=self.reward
        )
        return self.sim.observe().obs[0], {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.sim is None:
            raise RuntimeError("call reset() before step()")
        result = self.sim.step(np.array([int(action)]))
        obs = self.sim.observe().obs[0]
        truncated = self.sim.t >= self.episode_slots
        info = {"new_tx": bool(result.new_tx[0])}
        reward = float(result.reward[0]) + float(self.sim.pop_credits().reward.sum())
        return obs, reward, False, truncated, info


if ENV_ID not in gym.registry:
    gym.register(
        id=ENV_ID,
        entry_point="linkadapt.sim.envs:LinkAdaptEnv",
        vector_entry_point="linkadapt.sim.envs:LinkAdaptVectorEnv",
    )
