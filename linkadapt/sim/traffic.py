"""Downlink traffic of the simulator: each UE's buffer, full or fed by bursty packet arrivals.

- full buffer: the buffer is infinite, every new transport block is full (TBS bits) and
  the UE reports its buffer as unknown (−1);
- bursty: packets arrive as a Poisson process of ``packets_per_slot`` per slot with
  exponential sizes of mean ``packet_bytes``; a new block carries min(TBS, queued bits)
  and the UE reports the queued bytes.

``ScenarioConfig.traffic`` picks full buffer, bursty, or ``mixed`` (each UE bursty with
probability ½, drawn per drop by the simulator). Arrivals are drawn for every UE every
slot, bursty or not, so the random stream does not depend on the traffic mix or on
decisions.
"""

from __future__ import annotations

import numpy as np

from linkadapt.sim.scenario import ScenarioConfig


class Traffic:
    """Buffers of ``n`` UEs (bits, float64 ``[n]``; ``inf`` for full-buffer UEs).

    Parameters
    ----------
    cfg : ScenarioConfig
        The drop's scenario (``packets_per_slot``, ``packet_bytes``).
    bursty : bool ``[n]``
        Which UEs have bursty traffic (the others are full buffer).
    rng : numpy.random.Generator
        The stream of arrivals (the simulator's channel stream).
    """

    def __init__(self, cfg: ScenarioConfig, bursty: np.ndarray, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.bursty = bursty
        self.rng = rng
        self.buffer_bits = np.where(bursty, 0.0, np.inf)

    def send(self, ue: np.ndarray, tbs_bits: np.ndarray) -> np.ndarray:
        """Fill new blocks of ``tbs_bits`` for UEs ``ue`` (unique) from their buffers;
        returns the payload bits, min(TBS, buffer), float64 ``[len(ue)]``."""
        payload = np.minimum(tbs_bits, self.buffer_bits[ue])
        self.buffer_bits[ue] -= payload
        return payload

    def requeue(self, ue: np.ndarray, bits: np.ndarray) -> None:
        """Put ``bits`` back into the buffers of UEs ``ue`` (blocks flushed at a handover)."""
        self.buffer_bits[ue] += bits

    def buffer_bytes(self) -> np.ndarray:
        """int64 ``[n]`` reported buffer: bytes queued for bursty UEs, −1 (unknown) otherwise."""
        finite = np.where(self.bursty, self.buffer_bits, 0.0)
        return np.where(self.bursty, np.floor(finite / 8.0), -1).astype(np.int64)

    def arrivals(self) -> None:
        """One slot of Poisson packet arrivals with exponential sizes (drawn for all UEs)."""
        cfg = self.cfg
        n = self.buffer_bits.shape[0]
        packets = self.rng.poisson(cfg.packets_per_slot, n)
        sizes = self.rng.exponential(cfg.packet_bytes * 8.0, n)
        self.buffer_bits += np.where(self.bursty, packets * sizes, 0.0)
