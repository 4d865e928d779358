"""Q-networks: MLP, dueling MLP and GRU (DRQN), plus a registry of named architectures.

Every network maps observations ``[batch, obs_dim]`` (float32) to Q-values
``[batch, n_actions]``. The recurrent network additionally accepts sequences
``[batch, time, obs_dim]`` and a hidden state; see :class:`GRUQNet`.

Named architectures (``ARCHITECTURES``) are the vocabulary of the CLI and of the
manifests: ``mlp-7x128`` is the reference teacher (7 hidden layers of 128 units,
about 105k parameters at our observation size), ``mlp-3x32`` / ``mlp-4x32`` /
``mlp-4x64`` are the student sizes of the distillation work.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ArchSpec:
    """What a named architecture means.

    Attributes:
        kind: ``"mlp"``, ``"dueling"`` or ``"gru"``.
        depth: number of hidden layers (for ``gru``: MLP layers after the GRU cell).
        width: units per hidden layer (for ``gru``: also the GRU hidden size).
    """

    kind: str
    depth: int
    width: int


ARCHITECTURES: dict[str, ArchSpec] = {
    "mlp-7x128": ArchSpec("mlp", 7, 128),
    "dueling-7x128": ArchSpec("dueling", 7, 128),
    "gru-128": ArchSpec("gru", 1, 128),
    "mlp-2x64": ArchSpec("mlp", 2, 64),
    "mlp-3x32": ArchSpec("mlp", 3, 32),
    "mlp-4x32": ArchSpec("mlp", 4, 32),
    "mlp-4x64": ArchSpec("mlp", 4, 64),
    "mlp-2x128": ArchSpec("mlp", 2, 128),
}

# "<kind>-<depth>x<width>" for any size not in the table (e.g. "dueling-3x32"), "gru-<width>".
_ARCH_RE = re.compile(r"^(mlp|dueling)-(\d+)x(\d+)$|^gru-(\d+)$")


def arch_spec(name: str) -> ArchSpec:
    """Resolve an architecture name (registered or of the form ``mlp-DxW``, ``gru-W``)."""
    if name in ARCHITECTURES:
        return ARCHITECTURES[name]
    m = _ARCH_RE.match(name)
    if m is None:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {name!r}; known: {known} (or mlp-DxW, gru-W)")
    if m.group(4) is not None:
        return ArchSpec("gru", 1, int(m.group(4)))
    depth, width = int(m.group(2)), int(m.group(3))
    if depth < 1 or width < 1:
        raise ValueError(f"architecture {name!r}: depth and width must be >= 1")
    return ArchSpec(m.group(1), depth, width)


def _mlp_trunk(in_dim: int, depth: int, width: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_dim if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*layers)


class MLPQNet(nn.Module):
    """Plain MLP: ``depth`` ReLU layers of ``width`` units, then a linear Q head."""

    recurrent = False

    def __init__(self, obs_dim: int, n_actions: int, depth: int, width: int) -> None:
        super().__init__()
        self.obs_dim, self.n_actions = obs_dim, n_actions
        self.trunk = _mlp_trunk(obs_dim, depth, width)
        self.head = nn.Linear(width, n_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs`` ``[batch, obs_dim]`` -> Q-values ``[batch, n_actions]``."""
        return self.head(self.trunk(obs))


class DuelingQNet(nn.Module):
    """Dueling head (Wang et al. 2016): Q = V + A − mean(A), on a shared MLP trunk.

    The mean (not max) subtraction keeps the advantage identifiable and is what the
    original paper found most stable.
    """

    recurrent = False

    def __init__(self, obs_dim: int, n_actions: int, depth: int, width: int) -> None:
        super().__init__()
        self.obs_dim, self.n_actions = obs_dim, n_actions
        self.trunk = _mlp_trunk(obs_dim, depth, width)
        self.value = nn.Linear(width, 1)
        self.advantage = nn.Linear(width, n_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs`` ``[batch, obs_dim]`` -> Q-values ``[batch, n_actions]``."""
        h = self.trunk(obs)
        adv = self.advantage(h)
        return self.value(h) + adv - adv.mean(dim=-1, keepdim=True)


class GRUQNet(nn.Module):
    """Recurrent Q-network (DRQN): linear encoder -> GRU -> ``depth`` MLP layers -> Q head.

    ``forward(obs)`` with ``obs`` ``[batch, obs_dim]`` treats each row as a sequence of
    length one from a zero state (what a stateless caller gets);
    :meth:`forward_seq` is the real recurrent interface.
    """

    recurrent = True

    def __init__(self, obs_dim: int, n_actions: int, depth: int, width: int) -> None:
        super().__init__()
        self.obs_dim, self.n_actions, self.hidden_size = obs_dim, n_actions, width
        self.encoder = nn.Sequential(nn.Linear(obs_dim, width), nn.ReLU())
        self.gru = nn.GRU(width, width, batch_first=True)
        self.post = _mlp_trunk(width, depth, width)
        self.head = nn.Linear(width, n_actions)

    def initial_state(self, batch: int) -> torch.Tensor:
        """Zero hidden state ``[1, batch, hidden_size]``."""
        return torch.zeros(1, batch, self.hidden_size)

    def forward_seq(
        self, obs: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs`` ``[B, T, obs_dim]`` -> (Q ``[B, T, n_actions]``, last state ``[1, B, H]``)."""
        z = self.encoder(obs)
        out, h = self.gru(z, h0)
        return self.head(self.post(out)), h

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs`` ``[batch, obs_dim]`` -> Q-values ``[batch, n_actions]`` from a zero state."""
        q, _ = self.forward_seq(obs.unsqueeze(1))
        return q.squeeze(1)


def build_qnet(arch: str, obs_dim: int, n_actions: int) -> nn.Module:
    """Instantiate the named architecture for ``obs_dim`` inputs and ``n_actions`` outputs."""
    spec = arch_spec(arch)
    cls = {"mlp": MLPQNet, "dueling": DuelingQNet, "gru": GRUQNet}[spec.kind]
    return cls(obs_dim, n_actions, spec.depth, spec.width)


def state_dict_dims(state: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    """(obs_dim, n_actions) of a saved Q-network: its first weight matrix's inputs and its
    last one's outputs (every network here starts with a Linear on the observation and ends
    with a Linear Q head)."""
    matrices = [t for t in state.values() if t.ndim == 2]
    if not matrices:
        raise ValueError("state_dict holds no weight matrix: not a Q-network")
    return int(matrices[0].shape[1]), int(matrices[-1].shape[0])


def parameter_count(module: nn.Module) -> int:
    """Number of scalar parameters (trainable or not) of ``module``."""
    return sum(p.numel() for p in module.parameters())


def is_recurrent(module: nn.Module) -> bool:
    """True for networks that carry a hidden state between decisions."""
    return bool(getattr(module, "recurrent", False))
