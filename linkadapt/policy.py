"""One policy interface for every link adapter: baselines, teachers, students, a remote xApp.

A policy maps a batch of UEs to MCS indices. It receives a :class:`DecisionBatch`:
the encoded observations (what learned policies read), the raw reports (what
rule-based policies read), the history rows the UEs occupy (so stateful policies such
as OLLA keep per-UE state), and, only inside the simulator, privileged truth (the
genie reads it; students never do).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from linkadapt.reports import ReportBatch


@dataclass(frozen=True)
class DecisionBatch:
    """Everything known when choosing the MCS for ``n`` UEs in one slot.

    Attributes:
        obs: float32 ``[n, OBS_DIM]`` from :mod:`linkadapt.features` (privileged
            columns appended only when the producer was built with ``privileged=True``).
        reports: the raw reports of this slot, length ``n``.
        rows: int64 ``[n]`` history rows of these UEs (stable per UE across slots).
        true_sinr_db: float ``[n, subbands]`` per-layer SINR (dB) per subband that the
            coming transmission will see; ``None`` outside the simulator.
        new_tx: bool ``[n]``, True where the decision starts a new transport block
            (False: a HARQ retransmission reuses its MCS or nothing is sent).
        bler_offset_db: float ``[n]`` the link abstraction's threshold offset each UE's
            channel uses; simulator only (the genie reads it to know the true BLER).
        n_dmrs_re: DM-RS REs per PRB of the slot format (for TBS), when known.
        attached: bool ``[n]``, True where the UE's context restarted this slot (a
            handover: new serving cell); drivers call ``policy.reset`` on those rows
            before ``act``. ``None`` when the producer does not know.
    """

    obs: np.ndarray
    reports: ReportBatch
    rows: np.ndarray
    true_sinr_db: np.ndarray | None = None
    new_tx: np.ndarray | None = None
    bler_offset_db: np.ndarray | None = None
    n_dmrs_re: int = 12
    attached: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.rows.shape[0])


@runtime_checkable
class Policy(Protocol):
    """``act`` returns int ``[n]`` MCS indices (0..n_mcs-1) for a batch."""

    name: str

    def act(self, batch: DecisionBatch) -> np.ndarray: ...

    def reset(self, rows: np.ndarray) -> None:
        """Forget per-UE state of ``rows`` (a UE dropped or re-attached)."""
        ...


PolicyFactory = Callable[[int], Policy]
"""Builds a policy for a given number of UE history rows (one fresh policy per run)."""


def act_on_deciding_rows(
    new_tx: np.ndarray | None, n: int, choose: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """MCS indices int64 ``[n]``: ``choose(rows)`` for the rows that start a new transport
    block this slot, 0 for the others.

    ``new_tx`` is bool ``[n]`` (:attr:`DecisionBatch.new_tx`, or a simulator's prediction
    of it); ``None`` means unknown, and then every row decides. ``choose`` gets the int64
    indices of the deciding rows (never called when there are none) and returns their MCS.
    A row that does not start a block sends a HARQ retransmission, which reuses its
    block's MCS, or nothing: the transmitter ignores what it is given, so a learned policy
    saves the network evaluation on those rows (most rows, most slots).
    """
    if new_tx is None:
        rows = np.arange(n)
    else:
        mask = np.asarray(new_tx, bool)
        if mask.shape != (n,):
            raise ValueError(f"new_tx must be bool [{n}], got shape {mask.shape}")
        rows = np.flatnonzero(mask)
    out = np.zeros(n, np.int64)
    if rows.size:
        out[rows] = choose(rows)
    return out
