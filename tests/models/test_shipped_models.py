"""The shipped teacher and student on the cell edge: an outage UE must get MCS 0."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from linkadapt.baselines import make_baseline
from linkadapt.sim import PRESETS, Simulator

MODELS = Path(__file__).resolve().parents[2] / "models"
N_UES = 42


def _mcs_in_outage(policy) -> np.ndarray:
    """MCS the policy picks, in closed loop, for UEs far below MCS 0's threshold.

    A noise-limited cell far too weak for anything to decode; decisions are counted once
    the first CQI report has told the gNB the UE is out of range (before, nobody can know).
    """
    cfg = dataclasses.replace(PRESETS["mimo"], n_cells=1, tx_power_dbm=-50.0)
    sim = Simulator(cfg, N_UES, seed=7)
    chosen = []
    for _ in range(300):
        batch = sim.observe()
        mcs = policy.act(batch)
        sim.step(mcs)
        chosen.append(mcs[batch.new_tx & (batch.reports.cqi_age_slots >= 0)])
    assert sim.kpi.delivered_bits.sum() == 0  # a true outage: nothing ever decodes
    return np.concatenate(chosen)


def test_olla_sends_mcs0_in_an_outage() -> None:
    chosen = _mcs_in_outage(make_baseline("olla", N_UES))
    assert chosen.size > 100 and np.all(chosen == 0)


@pytest.mark.parametrize("spec", ["teacher-generalist", "default"])
def test_outage_ues_get_mcs0_from_the_shipped_models(spec: str) -> None:
    from training.policies import resolve_policy

    prefer = "onnx" if spec == "default" else "torch"
    chosen = _mcs_in_outage(resolve_policy(str(MODELS / spec), prefer=prefer)(N_UES))
    assert chosen.size > 100
    assert np.mean(chosen == 0) >= 0.99, np.bincount(chosen)
