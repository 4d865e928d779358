"""Rule-based link adapters: OLLA (the industry baseline), ILLA, fixed CQI→MCS, genie.

All implement :class:`linkadapt.policy.Policy`. ``act`` consumes the batch's HARQ
feedback once (stateful policies update their per-row state, then decide).
"""

from __future__ import annotations

import numpy as np

from linkadapt import bler, link_map, nr
from linkadapt.olla import OuterLoop
from linkadapt.policy import DecisionBatch


def _cqi_sinr_estimate(batch: DecisionBatch, cqi_table: int) -> np.ndarray:
    """The gNB's SINR estimate from the latest CQI (CQI 0 sinr when none yet)."""
    cqi = np.where(batch.reports.cqi_age_slots >= 0, batch.reports.cqi, 0)
    return link_map.sinr_from_cqi(cqi, cqi_table=cqi_table)


class OllaPolicy:
    """OLLA: MCS = ILLA(SINR_CQI − offset), offset from ACK/NACK (:mod:`linkadapt.olla`)."""

    name = "olla"

    def __init__(self, capacity: int, *, bler_target: float = 0.1, delta_up_db: float = 1.0,
                 mcs_table: int = 2) -> None:
        self.loop = OuterLoop(capacity, bler_target=bler_target, delta_up_db=delta_up_db)
        self.mcs_table = mcs_table
        self.bler_target = bler_target

    def grow(self, capacity: int) -> None:
        self.loop.grow(capacity)

    def reset(self, rows: np.ndarray) -> None:
        self.loop.reset(rows)

    def act(self, batch: DecisionBatch) -> np.ndarray:
        self.loop.update(batch.rows, batch.reports.harq_ack, batch.reports.harq_tx_index)
        sinr = _cqi_sinr_estimate(batch, self.mcs_table) - self.loop.offset_db[batch.rows]
        return link_map.illa_mcs(sinr, table=self.mcs_table, bler_target=self.bler_target)


class IllaPolicy:
    """ILLA alone: the highest MCS meeting the BLER target at the CQI's SINR, no loop."""

    name = "illa"

    def __init__(self, capacity: int = 0, *, bler_target: float = 0.1, mcs_table: int = 2):
        self.mcs_table = mcs_table
        self.bler_target = bler_target

    def reset(self, rows: np.ndarray) -> None:
        pass

    def act(self, batch: DecisionBatch) -> np.ndarray:
        sinr = _cqi_sinr_estimate(batch, self.mcs_table)
        return link_map.illa_mcs(sinr, table=self.mcs_table, bler_target=self.bler_target)


class FixedCqiPolicy:
    """Fixed table mapping: the highest MCS whose spectral efficiency ≤ the CQI's."""

    name = "fixed"

    def __init__(self, capacity: int = 0, *, mcs_table: int = 2) -> None:
        self.mcs_table = mcs_table

    def reset(self, rows: np.ndarray) -> None:
        pass

    def act(self, batch: DecisionBatch) -> np.ndarray:
        cqi = np.where(batch.reports.cqi_age_slots >= 0, batch.reports.cqi, 0)
        return link_map.cqi_to_mcs(cqi, table=self.mcs_table)


class GeniePolicy:
    """Genie oracle: knows the coming transmission's true effective SINR and BLER model.

    Picks argmax_m TBS(m)·(1 − TBLER(m)): the expected bits delivered by the first
    transmission, with TBLER from the EESM effective SINR of the per-subband, per-layer
    SINRs ``true_sinr_db [n, subbands]`` at each MCS's β. The ceiling every learned
    policy is measured against.
    """

    name = "genie"

    def __init__(self, capacity: int = 0, *, mcs_table: int = 2) -> None:
        self.mcs_table = mcs_table

    def reset(self, rows: np.ndarray) -> None:
        pass

    def act(self, batch: DecisionBatch) -> np.ndarray:
        if batch.true_sinr_db is None:
            raise ValueError("the genie needs true_sinr_db (simulator only)")
        r = batch.reports
        offset = (np.zeros(len(batch)) if batch.bler_offset_db is None
                  else np.asarray(batch.bler_offset_db))
        n_mcs = nr.n_mcs(self.mcs_table)
        betas = bler.eesm_beta(np.arange(n_mcs), table=self.mcs_table)
        sinr_sb = np.asarray(batch.true_sinr_db).reshape(len(batch), -1)
        eff = bler.effective_sinr_db(sinr_sb[:, None, :], betas[None, :])  # [n, n_mcs]
        expected = np.zeros((len(batch), n_mcs))
        for n_symbols in np.unique(r.n_symbols):
            sel = r.n_symbols == n_symbols
            sizes, n_cb, k_cb = nr.tbs_lookup(self.mcs_table, int(n_symbols), batch.n_dmrs_re)
            tb = sizes[:, r.rank[sel], r.n_prb[sel]].T  # [n_sel, n_mcs]
            cb_bler = bler.code_block_bler(
                eff[sel], np.arange(n_mcs), table=self.mcs_table,
                cb_bits=k_cb[:, r.rank[sel], r.n_prb[sel]].T,
                offset_db=offset[sel, None])
            tbler = bler.transport_block_bler(cb_bler, n_cb[:, r.rank[sel], r.n_prb[sel]].T)
            expected[sel] = tb * (1.0 - tbler)
        return np.argmax(expected, axis=1)


BASELINES = {"olla": OllaPolicy, "illa": IllaPolicy, "fixed": FixedCqiPolicy,
             "genie": GeniePolicy}


def make_baseline(name: str, capacity: int, *, mcs_table: int = 2):
    """Build baseline ``name`` (olla, illa, fixed, genie) for ``capacity`` UE rows."""
    try:
        cls = BASELINES[name]
    except KeyError:
        raise ValueError(f"unknown baseline {name!r}; expected one of {sorted(BASELINES)}") \
            from None
    return cls(capacity, mcs_table=mcs_table)
