"""The Ray rollout backend on a real local Ray: it must learn what the local backend learns."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from training.dqn.config import DQNConfig
from training.dqn.presets import CARTPOLE
from training.dqn.trainer import train

ray = pytest.importorskip("ray")

RANDOM_CARTPOLE_RETURN = 22.0


@pytest.fixture(scope="module")
def local_ray():
    # Short temp dir: Ray's unix sockets must fit in 107 characters.
    tmp = tempfile.mkdtemp(prefix="rayt", dir="/tmp")
    old = {k: os.environ.get(k) for k in ("RAY_TMPDIR", "RAY_AUTH_MODE")}
    os.environ["RAY_TMPDIR"] = tmp
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=tmp)
    yield
    ray.shutdown()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    shutil.rmtree(tmp, ignore_errors=True)


def _cfg(backend: str) -> DQNConfig:
    return DQNConfig(
        **{
            **DQNConfig.defaults(),
            **CARTPOLE,
            "env": "CartPole-v1",
            "backend": backend,
            "num_actors": 2,
            "actor_cpus": 0.5,
            "num_envs": 2,
            "steps_per_collect": 16,
            "weight_sync_interval": 20,
            "total_transitions": 30_000,
            "eval_interval": 15_000,
            "checkpoint_interval": 10**9,
        }
    )


def test_ray_backend_learns_cartpole_like_local(local_ray, tmp_path):
    ray_result = train(_cfg("ray"), tmp_path / "ray", progress=False)
    local_result = train(_cfg("local"), tmp_path / "local", progress=False)
    threshold = 4 * RANDOM_CARTPOLE_RETURN  # random play: ~22
    print("local", local_result.final_eval, "ray", ray_result.final_eval)
    assert local_result.final_eval.mean_return > threshold, local_result.final_eval
    assert ray_result.final_eval.mean_return > threshold, ray_result.final_eval
    # Both actors contributed: the env steps exceed what one actor could have taken.
    assert ray_result.updates > 0
    assert ray.is_initialized()  # the backend left the caller's Ray running
