"""Rule-based link adapters: OLLA (the industry baseline), tuned OLLA, ILLA, fixed
CQI→MCS, genie.

All implement :class:`linkadapt.policy.Policy`. ``act`` consumes the batch's HARQ
feedback once (stateful policies update their per-row state, then decide).

``olla`` is OLLA with textbook settings (BLER target 10 %, Δ_up 1 dB). ``olla-tuned`` is
the same loop with the per-preset BLER target and Δ_up that ``ran-distill tune-olla``
found on tuning seeds (:mod:`linkadapt.sim.olla_tuning`, committed in
``linkadapt/data/olla_tuned.json``): a learned policy's gain over it is the gain over a
fairly configured OLLA, not over an arbitrary one. The scenario picks the entry: a
preset's own name, otherwise (scenario files with other names, no scenario) the ``mimo``
entry; a drive-test trace keeps its base scenario's name.

:data:`BASELINES` / :data:`BASELINE_NAMES` are the one list of baseline names (each
spelled once, as its class's ``name``); the CLIs, :mod:`training.policies` and the
evaluation read them from here.

Every ``act`` takes a :class:`~linkadapt.policy.DecisionBatch` of ``n`` UEs and returns
int64 ``[n]`` MCS indices of MCS table ``mcs_table`` (TS 38.214 Table 5.1.3.1-1/-2); the
simulator uses them only where ``new_tx`` is True.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from linkadapt import bler, link_map, nr
from linkadapt.olla import OuterLoop
from linkadapt.policy import DecisionBatch, Policy


def _cqi_sinr_estimate(batch: DecisionBatch, cqi_table: int) -> np.ndarray:
    """The gNB's SINR estimate (dB) from the latest CQI; CQI 0's when none has arrived."""
    cqi = np.where(batch.reports.cqi_age_slots >= 0, batch.reports.cqi, 0)
    return link_map.sinr_from_cqi(cqi, cqi_table=cqi_table)


class OllaPolicy:
    """Outer-loop link adaptation: MCS = ILLA(SINR_CQI − Δ) with Δ from HARQ feedback.

    SINR_CQI is the lower edge of the reported CQI's SINR interval
    (:func:`linkadapt.link_map.sinr_from_cqi`, TS 38.214 §5.2.2.1); Δ is the per-UE
    offset of :class:`~linkadapt.olla.OuterLoop` (Nakamura et al., WPMC 2002; steps as in
    Pedersen et al., VTC 2007-Fall), updated with the batch's first-transmission feedback
    before deciding; ILLA picks the highest MCS whose predicted BLER at that SINR is
    ≤ ``bler_target`` (:func:`linkadapt.link_map.illa_mcs`).

    Parameters
    ----------
    capacity : int
        UE rows (``DecisionBatch.rows`` index them); :meth:`grow` adds more.
    bler_target : float
        BLER_t of the loop and of ILLA, in (0, 1) (default 0.1).
    delta_up_db : float
        Δ_up, the offset step on a NACK (dB, default 1).
    mcs_table : int
        MCS table 1 (64QAM) or 2 (256QAM); the CQI table with the same top modulation.
    """

    name = "olla"

    def __init__(
        self,
        capacity: int,
        *,
        bler_target: float = 0.1,
        delta_up_db: float = 1.0,
        mcs_table: int = 2,
    ) -> None:
        self.loop = OuterLoop(capacity, bler_target=bler_target, delta_up_db=delta_up_db)
        self.mcs_table = mcs_table
        self.bler_target = bler_target

    def grow(self, capacity: int) -> None:
        """Extend to ``capacity`` UE rows."""
        self.loop.grow(capacity)

    def reset(self, rows: np.ndarray) -> None:
        """Forget the offset of ``rows`` (a new UE or a handover)."""
        self.loop.reset(rows)

    def act(self, batch: DecisionBatch) -> np.ndarray:
        """Fold the batch's HARQ feedback into Δ, then int64 ``[n]`` ILLA(SINR_CQI − Δ)."""
        self.loop.update(batch.rows, batch.reports.harq_ack, batch.reports.harq_tx_index)
        sinr = _cqi_sinr_estimate(batch, self.mcs_table) - self.loop.offset_db[batch.rows]
        return link_map.illa_mcs(sinr, table=self.mcs_table, bler_target=self.bler_target)


class IllaPolicy:
    """Inner-loop link adaptation alone: ILLA(SINR_CQI), no outer loop.

    The highest MCS whose predicted BLER at the CQI's SINR is ≤ ``bler_target``
    (:func:`linkadapt.link_map.illa_mcs`); stateless.
    """

    name = "illa"

    def __init__(self, capacity: int = 0, *, bler_target: float = 0.1, mcs_table: int = 2) -> None:
        self.mcs_table = mcs_table
        self.bler_target = bler_target

    def reset(self, rows: np.ndarray) -> None:
        """Stateless: nothing to forget."""

    def act(self, batch: DecisionBatch) -> np.ndarray:
        sinr = _cqi_sinr_estimate(batch, self.mcs_table)
        return link_map.illa_mcs(sinr, table=self.mcs_table, bler_target=self.bler_target)


class FixedCqiPolicy:
    """Fixed CQI → MCS table: the highest MCS whose spectral efficiency Qm·R is ≤ the CQI's.

    Both from TS 38.214 (CQI Table 5.2.2.1-2/-3, MCS Table 5.1.3.1-1/-2,
    :func:`linkadapt.link_map.cqi_to_mcs`); MCS 0 before any CQI; stateless.
    """

    name = "fixed"

    def __init__(self, capacity: int = 0, *, mcs_table: int = 2) -> None:
        self.mcs_table = mcs_table

    def reset(self, rows: np.ndarray) -> None:
        """Stateless: nothing to forget."""

    def act(self, batch: DecisionBatch) -> np.ndarray:
        cqi = np.where(batch.reports.cqi_age_slots >= 0, batch.reports.cqi, 0)
        return link_map.cqi_to_mcs(cqi, table=self.mcs_table)


class GeniePolicy:
    """Genie oracle: knows the coming transmission's true SINR and the decoder's BLER model.

    Picks the MCS that maximizes the expected bits of a full block's first transmission:

        m* = argmax_m  TBS(m, ν, n_PRB) · (1 − TBLER_m),
        TBLER_m = 1 − (1 − BLER_CB(EESM_β(m)(SINR_1..S), K'_m; offset))^(C_m)

    with TBS, C and K' per TS 38.214 §5.1.3.2 / TS 38.212 §5.2.2 for the batch's layers,
    PRBs, symbols and DM-RS (:func:`linkadapt.nr.tbs_lookup`), the EESM effective SINR of
    the per-subband per-layer SINRs at each MCS's β, and the UE's BLER-threshold offset
    (:mod:`linkadapt.bler`). Ties go to the lower MCS. Stateless; the ceiling every
    learned policy is measured against.

    Input (of :meth:`act`, beyond the reports): ``true_sinr_db`` float ``[n, subbands]``
    (dB; required: ValueError without it, so outside the simulator) and
    ``bler_offset_db`` float ``[n]`` (dB; 0 when absent).
    """

    name = "genie"

    def __init__(self, capacity: int = 0, *, mcs_table: int = 2) -> None:
        self.mcs_table = mcs_table

    def reset(self, rows: np.ndarray) -> None:
        """Stateless: nothing to forget."""

    def act(self, batch: DecisionBatch) -> np.ndarray:
        if batch.true_sinr_db is None:
            raise ValueError("the genie needs true_sinr_db (simulator only)")
        r = batch.reports
        offset = (
            np.zeros(len(batch))
            if batch.bler_offset_db is None
            else np.asarray(batch.bler_offset_db)
        )
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
                eff[sel],
                np.arange(n_mcs),
                table=self.mcs_table,
                cb_bits=k_cb[:, r.rank[sel], r.n_prb[sel]].T,
                offset_db=offset[sel, None],
            )
            tbler = bler.transport_block_bler(cb_bler, n_cb[:, r.rank[sel], r.n_prb[sel]].T)
            expected[sel] = tb * (1.0 - tbler)
        return np.argmax(expected, axis=1)


TUNED_OLLA_FILE = "olla_tuned.json"
TUNED_OLLA_FALLBACK = "mimo"  # entry for scenarios that are not a tuned preset


@cache
def tuned_olla_table() -> dict[str, Any]:
    """The committed tuning result ``linkadapt/data/olla_tuned.json`` (see module doc)."""
    text = resources.files("linkadapt.data").joinpath(TUNED_OLLA_FILE).read_text()
    return json.loads(text)


def tuned_olla_params(scenario: str | None) -> dict[str, float]:
    """``{"bler_target", "delta_up_db"}`` of ``scenario``'s preset entry (else ``mimo``'s)."""
    presets = tuned_olla_table()["presets"]
    entry = presets.get(scenario or TUNED_OLLA_FALLBACK) or presets.get(TUNED_OLLA_FALLBACK)
    if entry is None:
        raise ValueError(
            f"{TUNED_OLLA_FILE} has no entry for {scenario!r} nor "
            f"{TUNED_OLLA_FALLBACK!r}; run ran-distill tune-olla"
        )
    return {"bler_target": float(entry["bler_target"]), "delta_up_db": float(entry["delta_up_db"])}


class TunedOllaPolicy(OllaPolicy):
    """OLLA with the tuned per-preset BLER target and Δ_up (:func:`tuned_olla_params`).

    ``scenario`` (a scenario name) picks the entry of ``linkadapt/data/olla_tuned.json``:
    the preset's own, else ``mimo``'s.
    """

    name = "olla-tuned"

    def __init__(self, capacity: int, *, mcs_table: int = 2, scenario: str | None = None) -> None:
        self.scenario = scenario
        super().__init__(capacity, mcs_table=mcs_table, **tuned_olla_params(scenario))


# each name is spelled once, as its class's ``name``; everything else reads these two
BASELINES: dict[str, type[OllaPolicy | IllaPolicy | FixedCqiPolicy | GeniePolicy]] = {
    cls.name: cls for cls in (OllaPolicy, TunedOllaPolicy, IllaPolicy, FixedCqiPolicy, GeniePolicy)
}
BASELINE_NAMES: tuple[str, ...] = tuple(BASELINES)


def make_baseline(
    name: str, capacity: int, *, mcs_table: int = 2, scenario: str | None = None
) -> Policy:
    """A fresh baseline policy by name.

    Parameters
    ----------
    name : str
        One of :data:`BASELINE_NAMES`: ``olla``, ``olla-tuned``, ``illa``, ``fixed``,
        ``genie``; ValueError naming the known ones otherwise.
    capacity : int
        UE rows the policy keeps state for (``DecisionBatch.rows`` < capacity).
    mcs_table : int
        MCS table 1 or 2 (TS 38.214 Table 5.1.3.1-1/-2) the MCS indices refer to.
    scenario : str | None
        A scenario name; only ``olla-tuned`` reads it, to pick its tuned entry.

    Output
    ------
    policy : Policy
        ``act(DecisionBatch) -> int64 [n]`` MCS indices; ``reset(rows)``.
    """
    try:
        cls = BASELINES[name]
    except KeyError:
        known = ", ".join(BASELINE_NAMES)
        raise ValueError(f"unknown baseline {name!r}; expected one of {known}") from None
    if cls is TunedOllaPolicy:
        return cls(capacity, mcs_table=mcs_table, scenario=scenario)
    return cls(capacity, mcs_table=mcs_table)
