"""The RL reward of one MCS decision, and the delayed credit that carries it.

``harq`` (default): a decision that opens a transport block answers for the block's whole
HARQ life. When the block's fate is known (ACK at transmission k, or NACK after the last
of ``max_transmissions``), the decision is credited

    r = (D − κ·(n_tx − 1)·P − λ·P·𝟙[lost]) / B_max

- P: the block's payload bits, D = P if it was decoded else 0;
- n_tx: transmissions it took (1 = decoded at the first attempt);
- κ (``retx_charge``): each retransmission occupies the block's PRBs again, an
  allocation that could have carried a new block of about the same size; κ = 1 charges it
  that payload (throughput counts delivered bits per allocation used: maximizing
  ΣD / Σn_tx is, in Dinkelbach's form, maximizing Σ(D − ρ·n_tx) with ρ the bits an
  allocation carries, ≈ P). κ = 0.5 was tried first: the teacher then ran at 30 %
  first-transmission BLER and lost to the tuned OLLA;
- λ (``loss_penalty``): a residual loss reaches RLC, which must resend the payload;
- B_max: bits MCS max would carry on the first transmission's allocation, so r is in
  units of the allocation's capacity whatever the bandwidth or rank.

In an outage nothing decodes, every MCS pays −(κ·(N − 1) + λ)·P/B_max and MCS 0, the
smallest payload, is strictly the best action; when MCS 0 decodes after retransmissions it
earns more still. ``first_tx`` is the earlier reward, kept for comparison: D·𝟙[n_tx = 1] /
B_max at the decision itself (it scores every undecodable MCS 0, so nothing steers a cell-
edge UE to MCS 0).

Delayed credit: the simulator numbers each UE's decisions since the drop (0, 1, 2, ...)
and emits a :class:`Credit` when a block's fate is known, a few slots to tens of slots
later; the batched env hands it to the learner in ``info["credit"]``, and the transition
builder completes that decision's transition then.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REWARDS = ("harq", "first_tx")


@dataclass(frozen=True)
class RewardConfig:
    """Which reward the simulator computes (see module doc)."""

    kind: str = "harq"  # "harq" (delayed, whole HARQ life) or "first_tx" (immediate)
    retx_charge: float = 1.0  # κ: charge per retransmission, in units of the payload
    loss_penalty: float = 1.0  # λ: charge of a residual loss, in units of the payload

    def __post_init__(self) -> None:
        if self.kind not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {self.kind!r}")
        if self.retx_charge < 0 or self.loss_penalty < 0:
            raise ValueError("retx_charge and loss_penalty must be ≥ 0")


@dataclass(frozen=True)
class Credit:
    """Rewards of finished blocks: ``row`` made decision ``index`` (int64 ``[k]``)."""

    row: np.ndarray
    index: np.ndarray
    reward: np.ndarray  # float32 [k]

    @classmethod
    def empty(cls) -> Credit:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))

    @classmethod
    def concat(cls, parts: list[Credit]) -> Credit:
        parts = [p for p in parts if p.row.size]
        if not parts:
            return cls.empty()
        return cls(
            *(np.concatenate([getattr(p, k) for p in parts]) for k in ("row", "index", "reward"))
        )

    def per_row(self, n_rows: int) -> np.ndarray:
        """float32 ``[n_rows]``: the credits summed per row (what the env's reward shows)."""
        return np.bincount(self.row, weights=self.reward, minlength=n_rows).astype(np.float32)


def harq_credit(
    cfg: RewardConfig,
    payload: np.ndarray,
    decoded: np.ndarray,
    n_tx: np.ndarray,
    max_bits: np.ndarray,
) -> np.ndarray:
    """The ``harq`` reward of finished blocks (float32, same shape as the inputs).

    A block that is not decoded finished because it reached the last transmission, so
    ``~decoded`` means a residual loss.
    """
    payload = np.asarray(payload, np.float64)
    delivered = payload * decoded
    charge = cfg.retx_charge * (np.asarray(n_tx) - 1) * payload
    loss = cfg.loss_penalty * payload * ~np.asarray(decoded, bool)
    return ((delivered - charge - loss) / np.maximum(max_bits, 1)).astype(np.float32)
