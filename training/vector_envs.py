"""Vector-env factory: our link-adaptation simulator or any Gymnasium id, same interface.

Both come back as a ``gymnasium.vector.VectorEnv`` with SAME_STEP autoreset (the obs
returned on a done step is already the next episode's; ``info["final_obs"]`` holds the
last one), float32 observations ``[num_envs, obs_dim]`` and a ``Discrete`` action per
sub-env.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from linkadapt.sim.reward import RewardConfig


def is_gym_id(name: str) -> bool:
    """Gymnasium ids carry a version suffix (``CartPole-v1``); scenario names do not."""
    return "-v" in name and name.rsplit("-v", 1)[1].isdigit()


def make_vector_env(
    name: str,
    num_envs: int,
    seed: int,
    *,
    privileged: bool = False,
    episode_slots: int = 200,
    reward: RewardConfig | str = "harq",
) -> gym.vector.VectorEnv:
    """Build ``num_envs`` sub-envs of scenario/Gymnasium id ``name`` and reset them with ``seed``.

    A simulator scenario gives one natively batched env (each sub-env is one UE; in the
    ``randomized`` scenario every reset re-samples the scenario parameters). A Gymnasium
    id gives a synchronous vector env.
    """
    if is_gym_id(name):
        if privileged:
            raise ValueError("--privileged only applies to simulator scenarios")
        env = gym.make_vec(
            name,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
        )
    else:
        from linkadapt.sim.envs import LinkAdaptVectorEnv

        env = LinkAdaptVectorEnv(
            scenario=name,
            num_envs=num_envs,
            seed=seed,
            privileged=privileged,
            episode_slots=episode_slots,
            reward=reward,
        )
    env.action_space.seed(seed)
    return env


def env_dims(env: gym.vector.VectorEnv) -> tuple[int, int]:
    """(obs_dim, n_actions) of a vector env with flat Box obs and Discrete actions."""
    obs_space, act_space = env.single_observation_space, env.single_action_space
    if not isinstance(act_space, gym.spaces.Discrete):
        raise TypeError(f"DQN needs a Discrete action space, got {act_space}")
    return int(np.prod(obs_space.shape)), int(act_space.n)


def upcoming_decisions(env: gym.vector.VectorEnv) -> np.ndarray | None:
    """Rows whose *next* action will be used, if the env can tell (else ``None``).

    Our simulator decides who starts a new transport block when it observes (before
    the action), so ``env.sim.new_tx`` is exactly the next step's ``info["new_tx"]``.
    Only ~n_cells × ues_per_slot of thousands of UEs decide per slot; evaluating the
    Q-network on those rows alone makes acting ~50× cheaper. Any other env returns
    ``None`` (act on every row), so this is a pure optimization.
    """
    mask = getattr(getattr(env, "sim", None), "new_tx", None)
    if isinstance(mask, np.ndarray) and mask.shape == (env.num_envs,) and mask.dtype == bool:
        return mask.copy()
    return None


def step_throughput(info: dict) -> float | None:
    """Mean per-UE throughput (Mbit/s) the env reported in this step's info, if any.

    The simulator reports a drop's KPIs once, at its end (``info["episode_kpis"]``).
    """
    if "throughput_mbps" in info:
        return float(np.mean(info["throughput_mbps"]))
    kpis = info.get("episode_kpis")
    if isinstance(kpis, dict) and "throughput_mbps" in kpis:
        return float(kpis["throughput_mbps"])
    return None


def decision_mask(info: dict, num_envs: int) -> np.ndarray:
    """Rows whose action was a real decision: ``info["new_tx"]`` if present, else all."""
    mask = info.get("new_tx")
    if mask is None:
        return np.ones(num_envs, bool)
    return np.asarray(mask, bool)


def decision_reward(reward: np.ndarray, info: dict, decision: np.ndarray) -> float:
    """Reward earned by decisions in this step's report, for logging.

    A delayed credit (``info["credit"]``) may land on any row, so all rows count; an
    immediate reward counts only on the rows that decided.
    """
    reward = np.asarray(reward, np.float64)
    return float(reward.sum() if "credit" in info else reward[decision].sum())
