"""Students: the networks of :mod:`training.networks`, read through one sequence interface.

Training batches are ``[B, T, obs_dim]``: ``T = 1`` for feed-forward students (each row a
decision), ``T = seq_len`` for a GRU student (one UE's successive decisions, from a zero
state, the way the stateful rollouts and the exported model run it). The report sizes
are :data:`STUDENT_ARCHS`.
"""

from __future__ import annotations

import torch
from torch import nn

from training.networks import arch_spec, build_qnet, is_recurrent

STUDENT_ARCHS = ("mlp-4x64", "mlp-4x32", "mlp-3x32")
SMALL_GRU = "gru-32"


def build_student(arch: str, obs_dim: int, n_actions: int) -> nn.Module:
    """The named student for ``obs_dim`` inputs and ``n_actions`` outputs."""
    return build_qnet(arch, obs_dim, n_actions)


def sequence_length(arch: str, seq_len: int) -> int:
    """Decisions per training sample: ``seq_len`` for a GRU, 1 otherwise."""
    return seq_len if arch_spec(arch).kind == "gru" else 1


def forward_with_hidden(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` ``[B, T, obs_dim]`` -> (Q ``[B, T, A]``, last hidden layer ``[B, T, W]``).

    A GRU runs each sequence from a zero state; a feed-forward net maps every step alone.
    """
    if is_recurrent(net):
        out, _ = net.gru(net.encoder(x))
        feat = net.post(out)
        return net.head(feat), feat
    feat = net.trunk(x)
    if hasattr(net, "advantage"):  # dueling: Q = V + A - mean(A)
        adv = net.advantage(feat)
        return net.value(feat) + adv - adv.mean(dim=-1, keepdim=True), feat
    return net.head(feat), feat


def last_hidden(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The last hidden layer's activations ``[n, W]`` for single observations ``[n, D]``."""
    return forward_with_hidden(net, x.unsqueeze(1))[1].squeeze(1)


def hidden_width(net: nn.Module) -> int:
    """Units of the last hidden layer."""
    return int(last_hidden(net, torch.zeros(1, int(net.obs_dim))).shape[1])
