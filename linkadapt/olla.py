"""Outer-loop link adaptation (OLLA): the per-UE SINR offset driven by HARQ feedback.

The loop corrects the bias of the gNB's SINR estimate (CQI quantization, delay, a UE's
optimistic or pessimistic receiver) with the ACK/NACK of what was sent:

    Δ ← Δ − Δ_down  on ACK,      Δ ← Δ + Δ_up  on NACK,      Δ clipped to ±OFFSET_LIMIT_DB

    Δ_down = Δ_up · BLER_t / (1 − BLER_t)

and the MCS is ILLA(SINR_est − Δ) (:func:`linkadapt.link_map.illa_mcs`). In steady state
the offset does not drift, (1 − p)·Δ_down = p·Δ_up, so the NACK rate p is BLER_t.

The outer loop is that of K. Nakamura, Y. Awad, S. Vadgama, "Adaptive control of link
adaptation for high speed downlink packet access (HSDPA) in W-CDMA", WPMC 2002; the
relation of the steps to the BLER target is as in K. I. Pedersen et al., "Frequency
domain scheduling for OFDMA with limited and noisy channel feedback", IEEE VTC 2007-Fall.
(The same up/down "jump" rule sets the target SIR of CDMA outer-loop power control:
A. Sampath, P. Sarath Kumar, J. M. Holtzman, "On setting reverse link target SIR in a
CDMA system", IEEE VTC 1997.)

When the HARQ transmission index of each feedback is known, only first-transmission
feedback drives the loop: the BLER target is a first-transmission BLER, and the outcome
of a retransmission (soft-combined, sent at the original MCS) says little about the
current offset. This is the one OLLA implementation: the OLLA baselines, the xApp's
fallback and the feature encoder's offset feature all use it.
"""

from __future__ import annotations

import numpy as np

OFFSET_LIMIT_DB = 20.0  # clamp so a long outage does not wind the loop up without bound


class OuterLoop:
    """Per-row OLLA offsets Δ (dB) for ``capacity`` UE rows (see the module doc).

    Parameters
    ----------
    capacity : int
        Number of UE rows; :meth:`grow` adds more.
    bler_target : float
        BLER_t, the first-transmission BLER the loop steers to, in (0, 1).
    delta_up_db : float
        Δ_up (dB, > 0), the step up on a NACK; Δ_down follows from the target.

    Attributes: ``offset_db`` float64 ``[capacity]`` (Δ per row, dB, starts at 0),
    ``delta_down_db`` (Δ_down, dB). ValueError for a target outside (0, 1) or Δ_up ≤ 0.
    """

    def __init__(
        self, capacity: int, *, bler_target: float = 0.1, delta_up_db: float = 1.0
    ) -> None:
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
        """Number of UE rows."""
        return int(self.offset_db.shape[0])

    def grow(self, capacity: int) -> None:
        """Extend to ``capacity`` rows (new rows start at offset 0)."""
        extra = capacity - self.capacity
        if extra > 0:
            self.offset_db = np.concatenate([self.offset_db, np.zeros(extra)])

    def reset(self, rows: np.ndarray) -> None:
        """Set the offset of ``rows`` back to 0 (a new UE, or a handover)."""
        self.offset_db[rows] = 0.0

    def update(
        self, rows: np.ndarray, harq_ack: np.ndarray, harq_tx_index: np.ndarray | None = None
    ) -> None:
        """Apply one slot's HARQ feedback to the offsets of ``rows``.

        Input
        -----
        rows : int ``[k]``
            UE rows, unique within the call.
        harq_ack : int ``[k]``
            1 ACK (Δ −= Δ_down), 0 NACK (Δ += Δ_up), −1 no feedback (Δ unchanged).
        harq_tx_index : int ``[k]`` | None
            HARQ transmission index of each feedback: 0 first transmission, 1 first
            retransmission, ..., −1 unknown. Feedback with index > 0 does not move Δ;
            0 and −1 do. ``None``: every feedback counts.
        """
        ack = np.asarray(harq_ack)
        counts = (ack == 0) | (ack == 1)
        if harq_tx_index is not None:
            counts &= np.asarray(harq_tx_index) <= 0
        # only the rows whose feedback counts move (a few per slot); the others keep Δ,
        # which is within the clamp already
        moved = np.flatnonzero(counts)
        at = np.asarray(rows)[moved]
        step = np.where(ack[moved] == 1, -self.delta_down_db, self.delta_up_db)
        step += self.offset_db[at]
        # np.clip's own overhead is several times these two passes (same result, NaN too)
        np.maximum(step, -OFFSET_LIMIT_DB, out=step)
        np.minimum(step, OFFSET_LIMIT_DB, out=step)
        self.offset_db[at] = step
