"""The shipped teacher and student on the cell edge: an outage UE must get MCS 0."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from linkadapt.baselines import make_baseline
from linkadapt.sim import PRESETS, Simulator

MODELS = Path(__file__).resolve().parents[2] / "models"


def _outage_batches(n_slots: int = 300):
    """Decision batches of UEs far below MCS 0's threshold (a noise-limited cell far too weak)."""
    cfg = dataclasses.replace(PRESETS["mimo"], n_cells=1, tx_power_dbm=-50.0)
    sim = Simulator(cfg, 42, seed=7)
    olla = make_baseline("olla", 42)
    for _ in range(n_slots):
        batch = sim.observe()
        mcs = olla.act(batch)
        sim.step(mcs)
        if batch.new_tx.any():
            yield batch, mcs
    assert sim.kpi.delivered_bits.sum() == 0  # a true outage: nothing ever decodes


@pytest.mark.parametrize("spec", ["teacher-generalist", "default"])
def test_outage_ues_get_mcs0_from_the_shipped_models_and_from_olla(spec: str) -> None:
    from training.policies import resolve_policy

    policy = resolve_policy(str(MODELS / spec), prefer="onnx" if spec == "default" else "torch")(42)
    chosen, olla_chosen = [], []
    for batch, olla_mcs in _outage_batches():
        # once a CQI report has told the gNB it is out of range (before, nobody can know)
        rows = batch.new_tx & (batch.reports.cqi_age_slots >= 0)
        chosen.append(policy.act(batch)[rows])
        olla_chosen.append(olla_mcs[rows])
    chosen, olla_chosen = np.concatenate(chosen), np.concatenate(olla_chosen)
    assert chosen.size > 100
    assert np.all(olla_chosen[len(olla_chosen) // 2:] == 0)  # OLLA winds down to MCS 0
    assert np.mean(chosen == 0) >= 0.99, np.bincount(chosen)
