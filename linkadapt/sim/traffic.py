"""Downlink traffic of the simulator: each UE's buffer, full or fed by bursty packet arrivals.

- full buffer: the buffer is infinite, every new transport block is full (TBS bits) and
  the UE reports its buffer as unknown (−1);
- bursty: packets arrive as a Poisson process of ``packets_per_slot`` per slot with
  independent exponential sizes of mean ``packet_bytes``; a new block carries
  min(TBS, queued bits) and the UE reports the queued bytes.

``ScenarioConfig.traffic`` picks full buffer, bursty, or ``mixed`` (each UE bursty with
probability ½, drawn per drop by the simulator). Arrivals come from their own stream and
are drawn per packet, only for bursty UEs (a compiled kernel keeps each UE's next arrival
time, exponential gaps of mean 1 / ``packets_per_slot`` slots), so a slot costs a
comparison per bursty UE and the stream depends on nothing but the seed and the traffic
mix, which the drop fixes: paired runs see the same packets.
"""

from __future__ import annotations

import numpy as np

from linkadapt.sim import rng
from linkadapt.sim.jit import kernel
from linkadapt.sim.scenario import ScenarioConfig


class Traffic:
    """Buffers of ``n`` UEs (bits, float64 ``[n]``; ``inf`` for full-buffer UEs).

    Parameters
    ----------
    cfg : ScenarioConfig
        The drop's scenario (``packets_per_slot``, ``packet_bytes``).
    bursty : bool ``[n]``
        Which UEs have bursty traffic (the others are full buffer).
    seed : numpy.random.SeedSequence
        The stream of arrivals.
    """

    def __init__(
        self, cfg: ScenarioConfig, bursty: np.ndarray, seed: np.random.SeedSequence
    ) -> None:
        self.cfg = cfg
        self.bursty = np.asarray(bursty, bool)
        self.bursty_rows = np.flatnonzero(self.bursty)
        self.state = rng.new_state(seed)
        self.buffer_bits = np.where(self.bursty, 0.0, np.inf)
        self.slot = 0  # the slot the next arrivals() call covers
        self.next_arrival = np.full(self.bursty.shape[0], np.inf)  # slots, continuous time
        _first_arrivals(
            self.bursty_rows, self.next_arrival, float(cfg.packets_per_slot), self.state
        )  # fmt: skip

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
        out = np.full(self.buffer_bits.shape[0], -1, np.int64)
        rows = self.bursty_rows
        out[rows] = np.floor(self.buffer_bits[rows] / 8.0)
        return out

    def arrivals(self) -> None:
        """The packets that arrive during this slot (bursty UEs), then the next slot."""
        cfg = self.cfg
        _slot_arrivals(
            self.slot + 1.0, self.bursty_rows, self.next_arrival, self.buffer_bits,
            float(cfg.packets_per_slot), cfg.packet_bytes * 8.0, self.state,
        )  # fmt: skip
        self.slot += 1


@kernel
def _first_arrivals(
    rows: np.ndarray, next_arrival: np.ndarray, rate: float, state: np.ndarray
) -> None:
    """The first arrival time of each bursty UE, Exp(rate) after slot 0 (never at rate 0)."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    for u in rows:
        gap, s0, s1, s2, s3 = rng.exponential(s0, s1, s2, s3)
        next_arrival[u] = gap / rate if rate > 0.0 else np.inf
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3


@kernel
def _slot_arrivals(
    end: float,
    rows: np.ndarray,
    next_arrival: np.ndarray,
    buffer_bits: np.ndarray,
    rate: float,
    mean_bits: float,
    state: np.ndarray,
) -> None:
    """Add every packet arriving before ``end`` (an exponential size each) and draw the
    next arrival after it."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    for u in rows:
        while next_arrival[u] < end:
            size, s0, s1, s2, s3 = rng.exponential(s0, s1, s2, s3)
            buffer_bits[u] += size * mean_bits
            gap, s0, s1, s2, s3 = rng.exponential(s0, s1, s2, s3)
            next_arrival[u] += gap / rate
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
