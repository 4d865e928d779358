"""Outer-loop link adaptation (OLLA): the per-UE SINR offset driven by HARQ feedback.

offset ← offset − Δ_down on ACK,  offset ← offset + Δ_up on NACK,
Δ_down = Δ_up · BLER_t / (1 − BLER_t), so that in steady state the NACK rate is BLER_t.
The MCS is then ILLA(SINR_est − offset). This is the one OLLA implementation: the
OLLA baseline, the xApp's fallback and the feature encoder's offset feature all use it.

The step rule is the "jump algorithm" of A. Sampath, P. Sarath Kumar, J. M. Holtzman,
"On setting reverse link target SIR in a CDMA system", IEEE VTC 1997. When the HARQ
transmission index of each feedback is known, only first-transmission feedback drives
the loop (retransmissions are ignored), as is common NR practice (e.g. Pocovi et al.;
Ericsson): the BLER target is a first-transmission BLER, and retransmission outcomes
(soft-combined, usually sent at the original MCS) say little about the current
offset.
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

    def update(
        self, rows: np.ndarray, harq_ack: np.ndarray, harq_tx_index: np.ndarray | None = None
    ) -> None:
        """Apply feedback ``harq_ack`` (1 ACK, 0 NACK, −1 none) of unique ``rows``.

        ``harq_tx_index`` (same length, optional) is the HARQ transmission index of each
        feedback: 0 = first transmission, 1 = first retransmission, ..., −1 = unknown.
        When given, feedback of retransmissions (index > 0) does not move the offset;
        index 0 or −1 counts as without it (first-transmission feedback only, see the
        module docstring). Without it every feedback counts.
        """
        if harq_tx_index is not None:
            harq_ack = np.where(np.asarray(harq_tx_index) > 0, -1, harq_ack)
        step = np.where(
            harq_ack == 1, -self.delta_down_db, np.where(harq_ack == 0, self.delta_up_db, 0.0)
        )
        self.offset_db[rows] = np.clip(
            self.offset_db[rows] + step, -OFFSET_LIMIT_DB, OFFSET_LIMIT_DB
        )
