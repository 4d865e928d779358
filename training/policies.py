"""Policy loaders: baselines, torch Q-networks and ONNX models as ``linkadapt.policy.Policy``.

A policy *spec* (what ``ran-distill evaluate --policy`` accepts) is one of:

- a baseline name: ``olla``, ``olla-tuned``, ``illa``, ``fixed``, ``genie``
  (:data:`linkadapt.baselines.BASELINE_NAMES`, the one list of names);
- a teacher run / model directory with ``model.pt`` and ``manifest.json`` (or
  ``config.json``): a torch Q-network, greedy argmax;
- a directory containing ``model.onnx`` (or the ``.onnx`` file itself): an onnxruntime
  Q-network, greedy argmax (see ``docs/model-format.md``).

:func:`resolve_policy` returns a *factory* ``Callable[[int], Policy]`` taking the number
of UE rows, which is what :func:`linkadapt.sim.evaluation.evaluate` expects (for baselines a
:class:`linkadapt.sim.evaluation.BaselineFactory`, which the evaluation binds to its scenario
so ``olla-tuned`` uses that scenario's tuned entry).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from linkadapt.baselines import BASELINE_NAMES
from linkadapt.policy import DecisionBatch, PolicyFactory, act_on_deciding_rows
from training.artifacts import has_torch_weights, load_torch_qnet, onnx_model_file


def _net_input(obs: np.ndarray, obs_dim: int) -> np.ndarray:
    """The columns a network reads: privileged columns beyond ``obs_dim`` are dropped,
    missing ones are an error (a privileged teacher cannot run on student obs)."""
    obs = np.asarray(obs, np.float32)
    if obs.ndim != 2 or obs.shape[1] < obs_dim:
        raise ValueError(f"policy needs obs [n, {obs_dim}], got {obs.shape}")
    return np.ascontiguousarray(obs[:, :obs_dim])


class TorchQPolicy:
    """Greedy argmax over a torch Q-network's outputs.

    For a recurrent (GRU) network the hidden state lives per history row: ``act``
    advances it for the rows of the batch (only where ``batch.new_tx`` is True when
    given, matching how it was trained: the state moves on real decisions), and
    ``reset(rows)`` clears it.
    """

    def __init__(self, net, name: str = "teacher") -> None:
        import torch

        from training.networks import is_recurrent

        self._torch = torch
        self.net = net.eval()
        self.name = name
        self.obs_dim = int(net.obs_dim)
        self.recurrent = is_recurrent(net)
        self._hidden = np.zeros((0, getattr(net, "hidden_size", 0)), np.float32)

    def _ensure_rows(self, max_row: int) -> None:
        if max_row >= self._hidden.shape[0]:
            grown = np.zeros(
                (max(max_row + 1, 2 * self._hidden.shape[0]), self._hidden.shape[1]), np.float32
            )
            grown[: self._hidden.shape[0]] = self._hidden
            self._hidden = grown

    def q_values(
        self, obs: np.ndarray, rows: np.ndarray | None = None, commit: np.ndarray | None = None
    ) -> np.ndarray:
        """Q-values float32 ``[n, n_actions]`` for ``obs`` ``[n, >= obs_dim]``.

        For a GRU, ``rows`` select the hidden states; ``commit`` (bool ``[n]``, default
        all) says which rows keep their advanced state.
        """
        torch = self._torch
        x = torch.as_tensor(_net_input(obs, self.obs_dim))
        with torch.no_grad():
            if not self.recurrent:
                return self.net(x).numpy()
            rows = np.arange(x.shape[0]) if rows is None else np.asarray(rows, np.int64)
            if rows.size:
                self._ensure_rows(int(rows.max()))
            h0 = torch.as_tensor(self._hidden[rows]).unsqueeze(0)
            q, h = self.net.forward_seq(x.unsqueeze(1), h0)
            keep = np.ones(rows.size, bool) if commit is None else np.asarray(commit, bool)
            self._hidden[rows[keep]] = h[0].numpy()[keep]
            return q.squeeze(1).numpy()

    def act(self, batch: DecisionBatch) -> np.ndarray:
        """MCS indices int64 ``[n]``: argmax of the Q-values.

        When ``batch.new_tx`` is given only those rows are evaluated (the others' MCS is
        ignored by the transmitter and returned as 0); the KPIs are identical to
        evaluating every row, only the work is smaller.
        """
        rows = np.asarray(batch.rows)
        return act_on_deciding_rows(
            batch.new_tx,
            len(batch),
            lambda sel: self.q_values(batch.obs[sel], rows[sel]).argmax(axis=1),
        )

    def reset(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, np.int64)
        rows = rows[rows < self._hidden.shape[0]]
        self._hidden[rows] = 0.0


class OnnxQPolicy:
    """Greedy argmax over an ONNX Q-network (input ``obs``, output ``q_values``)."""

    def __init__(self, model_path: str | Path, name: str = "onnx", threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # Explicit thread counts: the default (all cores) oversubscribes shared machines.
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(model_path), opts, providers=["CPUExecutionProvider"]
        )
        self.name = name
        self.obs_dim = int(self.session.get_inputs()[0].shape[1])

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values float32 ``[n, n_actions]``."""
        return self.session.run(["q_values"], {"obs": _net_input(obs, self.obs_dim)})[0]

    def act(self, batch: DecisionBatch) -> np.ndarray:
        """MCS indices int64 ``[n]``; like :meth:`TorchQPolicy.act`, only ``new_tx`` rows."""
        return act_on_deciding_rows(
            batch.new_tx, len(batch), lambda sel: self.q_values(batch.obs[sel]).argmax(axis=1)
        )

    def reset(self, rows: np.ndarray) -> None:
        """Stateless."""


def policy_name(spec: str) -> str:
    """A short display name: the baseline name or the directory / file stem."""
    if spec in BASELINE_NAMES:
        return spec
    p = Path(spec)
    return p.stem if p.is_file() else p.name


def resolve_policy(spec: str, *, prefer: str = "torch") -> PolicyFactory:
    """A factory ``n_ues -> Policy`` for a baseline name, a torch model dir or an ONNX model.

    Args:
        spec: see the module docstring.
        prefer: when a directory has both ``model.pt`` and ``model.onnx``, which to use
            (``"torch"`` or ``"onnx"``).
    """
    if prefer not in ("torch", "onnx"):
        raise ValueError(f"prefer must be 'torch' or 'onnx', not {prefer!r}")
    if spec in BASELINE_NAMES:
        from linkadapt.sim.evaluation import baseline_factory

        return baseline_factory(spec)
    p = Path(spec)
    if not p.exists():
        raise ValueError(f"policy {spec!r} is neither a baseline {BASELINE_NAMES} nor a path")
    name = policy_name(spec)
    onnx_path = onnx_model_file(p)
    has_torch = has_torch_weights(p)
    if has_torch and (prefer == "torch" or onnx_path is None):
        net = load_torch_qnet(p)
        # Each evaluation gets its own policy object (GRU state is per run) but the same
        # immutable weights.
        return lambda n_ues: TorchQPolicy(net, name)
    if onnx_path is not None:
        return lambda n_ues: OnnxQPolicy(onnx_path, name)
    raise ValueError(f"{spec!r}: expected model.pt (+manifest.json) or model.onnx")
