"""What the shadow comparison counts: agreement tallies, outcome matching, predicted KPIs.

A shadow candidate never transmits, so its KPIs cannot be measured; they are predicted
from the outcomes the gNB reports for the active model's decisions (docs/service.md
"Shadow models", with the method's limits):

* each first transmission of a shadowed decision (outcome report of the same cell, slot
  and UE, sent with the active model's MCS ``a``) is one observation ``y`` (1 ACK, 0 NACK);
* decoding is modelled as a threshold on the effective SINR ``S`` of that transmission:
  MCS ``k`` decodes iff ``S >= T_k``, ``T_k`` its 10 %-BLER SINR from linkadapt's BLER
  abstraction (:func:`linkadapt.bler.mcs_thresholds_db`, 8448-bit code blocks), so both
  MCS see the same channel and only the offset ``T_c - T_a`` matters;
* the active model is assumed to run at the BLER target ``t``: ``S ~ N(T_a + z σ, σ²)``
  with ``Φ(-z) = t`` and ``σ`` = :data:`SINR_SPREAD_DB`;
* then P(ACK at the candidate's ``c`` | ``y``) is exact where the outcome settles it (an
  ACK at ``a`` means any lower MCS decodes too; a NACK, that any higher one fails) and the
  conditional normal probability otherwise. The candidate's expected bits are that
  probability times the TBS of ``c`` (38.214, the request's rank / PRBs / symbols, capped
  by the reported buffer), the active model's are ``y`` times the TBS of ``a``.

State is bounded: pending decisions are kept for at most :data:`PENDING_MAX_REQUESTS`
decide requests and :data:`PENDING_MAX_UES` UEs (oldest dropped first), tallies are sums.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, fields
from statistics import NormalDist
from typing import Any

import numpy as np

from linkadapt import bler, nr
from linkadapt.reports import ReportBatch

# Spread (dB) of the effective SINR around the active MCS's operating point: CQI reports
# come in ~2 dB steps and age while the channel fades.
SINR_SPREAD_DB = 2.0
# Decide requests (cell, slot) and UEs whose decisions wait for their outcome report.
PENDING_MAX_REQUESTS = 4096
PENDING_MAX_UES = 131072


class AckModel:
    """P(first transmission at MCS ``c`` decodes | outcome ``y`` at MCS ``a``) (module doc).

    Parameters
    ----------
    mcs_table : int
        38.214 MCS table (1 or 2).
    bler_target : float
        First-transmission BLER the active model is assumed to run at, in (0, 1).
    spread_db : float
        σ of the effective SINR (dB).
    """

    def __init__(
        self, mcs_table: int, bler_target: float, spread_db: float = SINR_SPREAD_DB
    ) -> None:
        self.mcs_table = mcs_table
        self.modulation = nr.mcs_table(mcs_table)  # [n_mcs, 2]: Qm, R x 1024
        thresholds = bler.mcs_thresholds_db(table=mcs_table)
        offset = (thresholds[None, :] - thresholds[:, None]) / spread_db  # [a, c]: Δ/σ
        phi = np.vectorize(NormalDist().cdf)
        z = NormalDist().inv_cdf(1.0 - bler_target)
        ack = (1.0 - phi(np.maximum(offset, 0.0) - z)) / (1.0 - bler_target)
        nack = np.maximum(bler_target - phi(offset - z), 0.0) / bler_target
        # [y, a, c]; the diagonal is exactly y (same MCS, same outcome)
        self.p_ack = np.clip(np.stack([nack, ack]), 0.0, 1.0)
        idx = np.arange(offset.shape[0])
        self.p_ack[0, idx, idx], self.p_ack[1, idx, idx] = 0.0, 1.0

    def tbs_bits(
        self,
        mcs: np.ndarray,
        rank: np.ndarray,
        n_prb: np.ndarray,
        n_symbols: np.ndarray,
        buffer_bytes: np.ndarray,
    ) -> np.ndarray:
        """Bits one transmission at ``mcs`` can deliver: the TBS (38.214 §5.1.3.2), at most
        the DL buffer where it is known (>= 0). All int arrays [n]; float64 [n] out."""
        t = self.modulation[mcs]
        size = nr.tbs(t[:, 0], t[:, 1], n_prb, n_symbols=n_symbols, n_layers=rank)
        size = np.asarray(size, dtype=np.float64)
        return np.where(buffer_bytes >= 0, np.minimum(size, 8.0 * buffer_bytes), size)


@dataclass
class Tally:
    """Sums over some cell-slots of the shadow comparison (all zero: nothing seen)."""

    cell_slots: int = 0
    compared: int = 0
    agree: int = 0
    agree_one: int = 0
    mcs_diff: int = 0  # sum of candidate - active
    first_tx: int = 0  # matched first transmissions
    active_bits: float = 0.0
    candidate_bits: float = 0.0  # expected
    active_nacks: float = 0.0
    candidate_nacks: float = 0.0  # expected

    def add(self, other: Tally) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def summary(self) -> dict[str, Any]:
        """The ``ShadowStats`` message as a dict (ratios 0 where nothing was seen)."""
        n, k = max(self.compared, 1), max(self.first_tx, 1)
        bits = self.active_bits
        return {
            "cell_slots": self.cell_slots,
            "compared_decisions": self.compared,
            "agreement": self.agree / n,
            "agreement_within_one": self.agree_one / n,
            "mean_mcs_difference": self.mcs_diff / n,
            "matched_outcomes": self.first_tx,
            "predicted_throughput_change": (self.candidate_bits - bits) / bits if bits else 0.0,
            "predicted_first_tx_bler_change": (self.candidate_nacks - self.active_nacks) / k,
        }


def compare(active: np.ndarray, candidate: np.ndarray, cell_slots: int) -> Tally:
    """The agreement tally of one shadowed group (``active`` / ``candidate`` MCS [n])."""
    diff = candidate.astype(np.int64) - active
    return Tally(
        cell_slots=cell_slots,
        compared=int(diff.shape[0]),
        agree=int(np.count_nonzero(diff == 0)),
        agree_one=int(np.count_nonzero(np.abs(diff) <= 1)),
        mcs_diff=int(diff.sum()),
    )


def pending_columns(reports: ReportBatch, active: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """int64 [6, n]: what an outcome needs of a shadowed decision (active and candidate
    MCS, rank, PRBs, symbols, buffer bytes), for a whole group at once."""
    return np.stack(
        [active, cand, reports.rank, reports.n_prb, reports.n_symbols, reports.buffer_bytes]
    ).astype(np.int64)


@dataclass
class _Pending:
    """The shadowed decisions of one decide request, sorted by UE id."""

    ue_id: np.ndarray  # int64
    columns: np.ndarray  # int64 [6, n]: active, candidate, rank, n_prb, n_symbols, buffer
    used: np.ndarray  # bool: outcome already counted


@dataclass
class Matched:
    """What one outcome report contributed: a :class:`Tally` of its matched first
    transmissions, and rows by result."""

    tally: Tally
    matched: int = 0
    unmatched: int = 0
    not_followed: int = 0


class OutcomeMatcher:
    """Shadowed decisions waiting for their outcome report, keyed by (cell, slot) and UE.

    Not thread-safe: the caller (:class:`service.shadow.Shadow`) holds its lock.
    """

    def __init__(
        self,
        model: AckModel,
        max_requests: int = PENDING_MAX_REQUESTS,
        max_ues: int = PENDING_MAX_UES,
    ) -> None:
        self.model = model
        self.max_requests = max_requests
        self.max_ues = max_ues
        self.n_ues = 0
        self._pending: OrderedDict[tuple[int, int], _Pending] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def clear(self) -> None:
        self._pending.clear()
        self.n_ues = 0

    def add(self, cell_id: int, slot: int, ue_id: np.ndarray, columns: np.ndarray) -> None:
        """Remember the decisions of one request: its UEs and :func:`pending_columns`
        [6, n] (a request for the same cell and slot again replaces them); the oldest
        requests go beyond the bounds."""
        order = np.argsort(ue_id, kind="stable")
        entry = _Pending(ue_id[order], columns[:, order], np.zeros(order.shape[0], bool))
        self._drop((cell_id, slot))
        self._pending[(cell_id, slot)] = entry
        self.n_ues += order.shape[0]
        while self._pending and (
            len(self._pending) > self.max_requests or self.n_ues > self.max_ues
        ):
            self._drop(next(iter(self._pending)))

    def _drop(self, key: tuple[int, int]) -> None:
        entry = self._pending.pop(key, None)
        if entry is not None:
            self.n_ues -= entry.ue_id.shape[0]

    def match(self, cell_id: int, slot: int, cols: dict[str, np.ndarray]) -> Matched:
        """Fold one validated outcome report: its first transmissions (``first_tx_ack`` >= 0)
        of shadowed decisions sent with the active model's MCS (``mcs``, when reported)."""
        first = cols["first_tx_ack"] >= 0
        ue_id, ack = cols["ue_id"][first], cols["first_tx_ack"][first]
        entry = self._pending.get((cell_id, slot))
        if entry is None:
            return Matched(Tally(), unmatched=int(ue_id.shape[0]))
        pos = np.minimum(np.searchsorted(entry.ue_id, ue_id), entry.ue_id.shape[0] - 1)
        found = (entry.ue_id[pos] == ue_id) & ~entry.used[pos]
        active, cand, rank, n_prb, n_symbols, buffer = entry.columns[:, pos]
        followed = found
        if "mcs" in cols:
            followed = found & (cols["mcs"][first] == active)
        out = Matched(
            Tally(),
            matched=int(followed.sum()),
            unmatched=int((~found).sum()),
            not_followed=int((found & ~followed).sum()),
        )
        entry.used[pos[found]] = True
        if entry.used.all():
            self._drop((cell_id, slot))
        if not out.matched:
            return out
        k = followed
        y, a, c = ack[k], active[k], cand[k]
        alloc = (rank[k], n_prb[k], n_symbols[k], buffer[k])
        p = self.model.p_ack[y, a, c]
        t = out.tally
        t.first_tx = out.matched
        t.active_bits = float(np.dot(y, self.model.tbs_bits(a, *alloc)))
        t.candidate_bits = float(np.dot(p, self.model.tbs_bits(c, *alloc)))
        t.active_nacks = float(np.count_nonzero(y == 0))
        t.candidate_nacks = float((1.0 - p).sum())
        return out
