"""Rollout backends behind one interface: ``local`` (in-process) and ``ray`` (actors).

The learner calls :meth:`collect` for fresh experience and :meth:`sync_weights` after
gradient steps; it never knows where the envs run.

- ``local`` steps one :class:`RolloutWorker` in the learner's process, acting with the
  learner's own online network (weights are always fresh, runs are deterministic).
- ``ray`` runs ``num_actors`` workers as Ray actors with fractional CPUs. Each actor
  always has one ``collect`` call in flight; the learner consumes whichever finishes
  first, so acting and learning overlap. Weights travel through the object store
  every ``weight_sync_interval`` gradient steps; actor calls execute in submission
  order, so an actor applies new weights before its next collection. Ray runs are
  not bit-reproducible (arrival order varies), unlike local ones.
"""

from __future__ import annotations

import os
from typing import Protocol

import torch
from torch import nn

from training.dqn.config import DQNConfig
from training.dqn.rollout import RolloutResult, RolloutWorker

RAY_TIMEOUT_S = 300.0  # an actor silent this long is considered dead


class RolloutBackend(Protocol):
    """Where experience comes from."""

    def collect(self, epsilon: float) -> list[RolloutResult]:
        """Experience gathered with exploration rate ``epsilon`` (at least one result)."""
        ...

    def sync_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Make the actors act with these online-network weights."""
        ...

    def close(self) -> None: ...


class LocalBackend:
    """One in-process worker sharing the learner's online network."""

    def __init__(self, cfg: DQNConfig, network: nn.Module) -> None:
        self.cfg = cfg
        self.worker = RolloutWorker(cfg, 0, network=network)

    def collect(self, epsilon: float) -> list[RolloutResult]:
        return [self.worker.collect(self.cfg.steps_per_collect, epsilon)]

    def sync_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Nothing to do: the worker acts with the learner's network object."""

    def close(self) -> None:
        self.worker.close()


class RayBackend:
    """``num_actors`` Ray actors, each a :class:`RolloutWorker` with its own env copy."""

    def __init__(self, cfg: DQNConfig, network: nn.Module) -> None:
        import ray

        self.ray, self.cfg = ray, cfg
        self._owns_ray = False
        if not ray.is_initialized():
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            if cfg.ray_address:
                ray.init(address=cfg.ray_address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=max(1, os.cpu_count() or 1),
                    include_dashboard=False,
                    log_to_driver=False,
                )
            self._owns_ray = True
        actor_cls = ray.remote(num_cpus=cfg.actor_cpus)(_RayWorker)
        self.actors = [actor_cls.remote(cfg, i) for i in range(cfg.num_actors)]
        self.sync_weights(network.state_dict())
        self._inflight: dict[object, int] = {}

    def _submit(self, actor_index: int, epsilon: float) -> None:
        ref = self.actors[actor_index].collect.remote(self.cfg.steps_per_collect, epsilon)
        self._inflight[ref] = actor_index

    def collect(self, epsilon: float) -> list[RolloutResult]:
        for i in range(len(self.actors)):
            if i not in self._inflight.values():
                self._submit(i, epsilon)
        ready, _ = self.ray.wait(list(self._inflight), num_returns=1, timeout=RAY_TIMEOUT_S)
        if not ready:
            raise TimeoutError(f"no Ray rollout actor reported within {RAY_TIMEOUT_S:.0f} s")
        results = self.ray.get(ready, timeout=RAY_TIMEOUT_S)
        for ref in ready:
            self._submit(self._inflight.pop(ref), epsilon)
        return results

    def sync_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        ref = self.ray.put({k: v.detach().cpu().clone() for k, v in state_dict.items()})
        for actor in self.actors:
            actor.set_weights.remote(ref)

    def close(self) -> None:
        if self._inflight:
            # Let in-flight collections finish (bounded) so the actors exit cleanly.
            self.ray.wait(
                list(self._inflight), num_returns=len(self._inflight), timeout=RAY_TIMEOUT_S
            )
            self._inflight.clear()
        for actor in self.actors:
            self.ray.kill(actor)
        if self._owns_ray:
            self.ray.shutdown()


class _RayWorker(RolloutWorker):
    """RolloutWorker as a Ray actor (torch single-threaded: actors get CPU fractions)."""

    def __init__(self, cfg: DQNConfig, worker_index: int) -> None:
        torch.set_num_threads(1)
        super().__init__(cfg, worker_index)


def make_backend(cfg: DQNConfig, network: nn.Module) -> RolloutBackend:
    """The backend named by ``cfg.backend``."""
    if cfg.backend == "ray":
        return RayBackend(cfg, network)
    return LocalBackend(cfg, network)
