"""HARQ bookkeeping of the simulator: per-UE processes, soft combining, feedback timing.

Each UE has ``harq_processes`` (8 or 16) stop-and-wait HARQ processes (TS 38.321 §5.3.2;
at most 16 downlink processes per cell, TS 38.214 §5.1). A process is in one of three
states:

- ``IDLE``: free for a new transport block;
- ``WAITING``: a transmission is in flight; its ACK/NACK reaches the gNB ``delay`` slots
  later (the PDSCH-to-HARQ-ACK timing K1 of TS 38.213 §9.2.3 plus the gNB's processing,
  drawn per UE from ``ScenarioConfig.harq_delay_slots``);
- ``NEEDS_RETX``: NACKed before the last of ``max_transmissions``; the UE's next
  scheduling opportunity retransmits it with the MCS, PRBs and layers of its first
  transmission.

Chase combining: ``acc[ue, proc]`` holds the per-subband sum of the linear per-layer SINRs
of the block's transmissions, S_acc,i = Σ_k SINR_k,i; the simulator applies EESM to it at
every decoding attempt (combining before EESM, as a receiver combines soft bits).

Which process a UE uses next: ``idle_mask`` / ``retx_mask`` (one bit per process) mirror
the ``IDLE`` / ``NEEDS_RETX`` states, updated where a state changes (a few UEs a slot), so
:meth:`HarqProcesses.pending` reads the lowest set bit of each mask from a table instead of
scanning every UE's processes every slot.

Feedback timing: with one transmission per UE per slot and a fixed per-UE delay, at most
one process of a UE has feedback due in any slot, so ``feedback_due[ue, slot % R]`` (a ring
of R = max delay + 1 columns) names it and delivering feedback is O(n), not a scan of
every process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linkadapt.sim.jit import kernel

IDLE, WAITING, NEEDS_RETX = 0, 1, 2
MAX_PROCESSES = 16  # TS 38.214 §5.1: at most 16 downlink HARQ processes

# LOWEST_BIT[m]: index of the lowest set bit of the 16-bit mask m (0 for m = 0)
LOWEST_BIT = np.zeros(1 << MAX_PROCESSES, np.int64)
for _index in reversed(range(MAX_PROCESSES)):
    LOWEST_BIT[(np.arange(1 << MAX_PROCESSES) >> _index) & 1 == 1] = _index
LOWEST_BIT.setflags(write=False)


@dataclass(frozen=True)
class Feedback:
    """The HARQ feedback that reaches the gNB in one slot.

    Per UE (what its report carries), ``[n]``:

    - ``harq_ack``: int8, 1 ACK, 0 NACK, −1 no feedback this slot;
    - ``harq_mcs``: int16, the MCS of that transmission (0 without feedback);
    - ``harq_tx_index``: int16, 0 for a first transmission, k for the k-th
      retransmission, −1 without feedback.

    Per feedback, ``[k]`` for the ``k`` UEs that got one:

    - ``ue`` / ``proc``: int64 UE row and process;
    - ``decoded``: bool, the transmission decoded (ACK);
    - ``n_tx``: int16, transmissions of the block so far (1 = first);
    - ``payload``: float64, payload bits of the block;
    - ``finished``: bool, the block's fate is known (decoded, or the last transmission
      failed: a residual loss); unfinished blocks now wait for a retransmission.
    """

    harq_ack: np.ndarray
    harq_mcs: np.ndarray
    harq_tx_index: np.ndarray
    ue: np.ndarray
    proc: np.ndarray
    decoded: np.ndarray
    n_tx: np.ndarray
    payload: np.ndarray
    finished: np.ndarray


class HarqProcesses:
    """The HARQ processes of ``n`` UEs (arrays ``[n, processes]``) and their feedback ring.

    Parameters
    ----------
    n_processes : int
        HARQ processes per UE (8 or 16).
    subbands : int
        Subbands of the per-subband combined SINR ``acc``.
    delay : int ``[n]``
        Slots from a transmission to its ACK/NACK at the gNB, per UE (≥ 1).
    max_delay : int
        The largest delay any UE can have (sizes the feedback ring).
    """

    def __init__(self, n_processes: int, subbands: int, delay: np.ndarray, max_delay: int) -> None:
        n, h = int(delay.shape[0]), n_processes
        if not 1 <= h <= MAX_PROCESSES:
            raise ValueError(f"n_processes must be 1..{MAX_PROCESSES}, got {h}")
        self.delay = delay
        self.state = np.zeros((n, h), np.int8)
        self.mcs = np.zeros((n, h), np.int16)
        self.payload = np.zeros((n, h), np.float64)
        self.n_tx = np.zeros((n, h), np.int16)
        self.acc = np.zeros((n, h, subbands), np.float32)  # combined per-subband SINR
        self.max_bits = np.ones((n, h), np.float64)  # B_max of the first transmission
        self.decision = np.zeros((n, h), np.int64)  # which decision opened the block
        self.decoded = np.zeros((n, h), bool)
        self.prb = np.ones((n, h), np.int32)
        self.rank = np.ones((n, h), np.int16)
        self.decisions = np.zeros(n, np.int64)  # decisions made per UE since the drop
        self.all_idle = (1 << h) - 1
        self.idle_mask = np.full(n, self.all_idle, np.int64)  # bit p: process p is IDLE
        self.retx_mask = np.zeros(n, np.int64)  # bit p: process p is NEEDS_RETX
        # feedback_due[ue, slot % ring]: the process whose ACK/NACK lands in that slot (−1: none)
        self.feedback_ring = int(max_delay) + 1
        self.feedback_due = np.full((n, self.feedback_ring), -1, np.int16)

    def pending(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What each UE could send now, ``[n]`` each.

        Returns ``(has_retx, retx_proc, has_idle, idle_proc)``: whether a process awaits a
        retransmission and the lowest-numbered such process, whether a process is free and
        the lowest-numbered free one (the ``*_proc`` entries are 0 where there is none).
        """
        retx, idle = self.retx_mask, self.idle_mask
        return retx != 0, LOWEST_BIT[retx], idle != 0, LOWEST_BIT[idle]

    def start(
        self,
        t: int,
        ue: np.ndarray,
        proc: np.ndarray,
        mcs: np.ndarray,
        payload: np.ndarray,
        decoded: np.ndarray,
        prb: np.ndarray,
        rank: np.ndarray,
        max_bits: np.ndarray,
    ) -> None:
        """Open a block on the free process ``proc`` of each UE ``ue`` (unique), sent in slot
        ``t``; the decision that chose its MCS gets the UE's next decision index.

        ``acc[ue, proc]`` must already hold the first transmission's per-subband SINR.
        """
        self.state[ue, proc] = WAITING
        self.idle_mask[ue] &= ~_bit(proc)
        self.mcs[ue, proc] = mcs
        self.payload[ue, proc] = payload
        self.n_tx[ue, proc] = 1
        self.decoded[ue, proc] = decoded
        self._expect_feedback(t, ue, proc)
        self.prb[ue, proc] = prb
        self.rank[ue, proc] = rank
        self.max_bits[ue, proc] = max_bits
        self.decision[ue, proc] = self.decisions[ue]
        self.decisions[ue] += 1

    def retransmitted(self, t: int, ue: np.ndarray, proc: np.ndarray, decoded: np.ndarray) -> None:
        """Record a retransmission of ``proc`` of each UE ``ue`` in slot ``t``.

        ``acc[ue, proc]`` must already include this transmission's SINR.
        """
        self.decoded[ue, proc] = decoded
        self.n_tx[ue, proc] += 1
        self.state[ue, proc] = WAITING
        self.retx_mask[ue] &= ~_bit(proc)
        self._expect_feedback(t, ue, proc)

    def collect(self, t: int, max_transmissions: int) -> Feedback:
        """Take the feedback due in slot ``t``; finished processes become ``IDLE``, NACKed
        ones before the ``max_transmissions``-th transmission ``NEEDS_RETX``."""
        n = self.state.shape[0]
        harq_ack = np.empty(n, np.int8)
        harq_mcs = np.empty(n, np.int16)
        harq_tx = np.empty(n, np.int16)
        rows = np.empty((2, n), np.int64)
        k = _collect(
            t % self.feedback_ring, self.feedback_due, self.decoded, self.n_tx, self.mcs,
            max_transmissions, self.state, self.idle_mask, self.retx_mask, harq_ack, harq_mcs,
            harq_tx, rows,
        )  # fmt: skip
        ue, proc = rows[0, :k], rows[1, :k]
        decoded = self.decoded[ue, proc]
        n_tx = self.n_tx[ue, proc]
        finished = decoded | (n_tx >= max_transmissions)
        return Feedback(
            harq_ack=harq_ack,
            harq_mcs=harq_mcs,
            harq_tx_index=harq_tx,
            ue=ue,
            proc=proc,
            decoded=decoded,
            n_tx=n_tx,
            payload=self.payload[ue, proc],
            finished=finished,
        )

    def flush(self, ue: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Free every process of the UEs ``ue`` (a handover: the MAC resets).

        Returns ``(rows, decisions, payload_bits)``: the UE row and decision index of each
        block that was in flight ``[k]``, and the payload bits those blocks carried per UE
        ``[len(ue)]`` (float64, back to the buffer).
        """
        busy = self.state[ue] != IDLE  # [k, h]
        k, proc = np.nonzero(busy)
        rows, decisions = ue[k], self.decision[ue[k], proc]
        payload_bits = np.where(busy, self.payload[ue], 0.0).sum(axis=1)
        self.state[ue] = IDLE
        self.idle_mask[ue] = self.all_idle
        self.retx_mask[ue] = 0
        self.feedback_due[ue] = -1
        return rows, decisions, payload_bits

    def _expect_feedback(self, t: int, ue: np.ndarray, proc: np.ndarray) -> None:
        self.feedback_due[ue, (t + self.delay[ue]) % self.feedback_ring] = proc


def _bit(proc: np.ndarray) -> np.ndarray:
    """int64 mask bit of each process index (int64 whatever the index dtype: a 16-bit
    shift would make bit 15 negative)."""
    return np.left_shift(1, np.asarray(proc, np.int64))


@kernel
def _collect(
    column: int,
    feedback_due: np.ndarray,
    decoded: np.ndarray,
    n_tx: np.ndarray,
    mcs: np.ndarray,
    max_transmissions: int,
    state: np.ndarray,
    idle_mask: np.ndarray,
    retx_mask: np.ndarray,
    harq_ack: np.ndarray,
    harq_mcs: np.ndarray,
    harq_tx: np.ndarray,
    rows: np.ndarray,
) -> int:
    """The feedback of ring column ``column``: fills the per-UE report columns (−1, 0, −1
    without feedback), clears the ring entries, moves each process to ``IDLE`` (decoded,
    or the last transmission) or ``NEEDS_RETX`` with its mask bit, and writes the UE and
    process of each feedback into ``rows[0, :k]`` / ``rows[1, :k]``; returns k."""
    k = 0
    for u in range(feedback_due.shape[0]):
        p = feedback_due[u, column]
        if p < 0:
            harq_ack[u] = -1
            harq_mcs[u] = 0
            harq_tx[u] = -1
            continue
        feedback_due[u, column] = -1
        ok = decoded[u, p]
        sent = n_tx[u, p]
        harq_ack[u] = 1 if ok else 0
        harq_mcs[u] = mcs[u, p]
        harq_tx[u] = sent - 1
        bit = np.int64(1) << np.int64(p)
        if ok or sent >= max_transmissions:
            state[u, p] = IDLE
            idle_mask[u] |= bit
        else:
            state[u, p] = NEEDS_RETX
            retx_mask[u] |= bit
        rows[0, k] = u
        rows[1, k] = p
        k += 1
    return k
