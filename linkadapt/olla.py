"""Outer-loop link adaptation (OLLA): the per-UE SINR offset driven by HARQ feedback.

offset ← offset − Δ_down on ACK,  offset ← offset + Δ_up on NACK,
Δ_down = Δ_up · BLER_t / (1 − BLER_t), so that in steady state the NACK rate is BLER_t.
The MCS is then ILLA(SINR_est − offset). This is the one OLLA implementation: the
OLLA baseline, the xApp's fallback and the feature encoder's offset feature all use it.
"""

from __future__ import annotations

import numpy as np

OFFSET_LIMIT_DB = 20.0  # clamp so a long outage does not wind the loop up without bound


class OuterLoop:
    """Per-row OLLA offsets (dB) for ``capacity`` UE rows."""

    def __init__(self, capacity: int, *, bler_target: float = 0.1, delta_up_db: float = 1.0):
        if not 0.0 < bler_target < 1.0:
            raise ValueError(f"bler_target must be in (0, 1), got {bler_target}")
        if delta_up_db <= 0.0:
            raise ValueError(f"delta_up_db must be > 0, got {delta_up_db}")
        self.bler_target = bler_target
        self.delta_up_db = delta_up_db
        self.delta_down_db = delta_up_db * bler_target / (1.0 - bler_target)
        self.offset_db = np.zeros(capacity, dtype=np.float64)

    @property
    def capacity(self) -> int:
        return int(self.offset_db.shape[0])

    def grow(self, capacity: int) -> None:
        """Extend to ``capacity`` rows (new rows start at offset 0)."""
        extra = capacity - self.capacity
        if extra > 0:
            self.offset_db = np.concatenate([self.offset_db, np.zeros(extra)])

    def reset(self, rows: np.ndarray) -> None:
        self.offset_db[rows] = 0.0

    def update(self, rows: np.ndarray, harq_ack: np.ndarray) -> None:
        """Apply feedback ``harq_ack`` (1 ACK, 0 NACK, −1 none) of unique ``rows``."""
        step = np.where(harq_ack == 1, -self.delta_down_db,
                        np.where(harq_ack == 0, self.delta_up_db, 0.0))
        self.offset_db[rows] = np.clip(self.offset_db[rows] + step, -OFFSET_LIMIT_DB,
                                       OFFSET_LIMIT_DB)
