"""KPI summary: cell-edge throughput (p5), zero-UE share, per-UE and per-cell arrays."""

from __future__ import annotations

import numpy as np
import pytest

from linkadapt.sim.kpi import KpiAccumulator

KEYS = (
    "throughput_mbps",
    "cell_throughput_mbps",
    "throughput_p5_mbps",
    "zero_ue_share",
    "bler",
    "residual_bler",
    "spectral_efficiency",
    "mean_mcs",
)


def _acc() -> tuple[KpiAccumulator, np.ndarray]:
    k = KpiAccumulator.zeros(5, 28)
    k.slots = 1000  # 1 s at 1 ms slots: bits / 1e6 = Mbit/s
    k.delivered_bits[:] = [0, 1_000_000, 2_000_000, 3_000_000, 10_000_000]
    k.first_tx[:] = [4, 10, 10, 10, 10]
    k.first_tx_nack[:] = [4, 1, 1, 1, 1]
    k.tb_done[:] = [4, 10, 10, 10, 10]
    k.tb_lost[:] = [4, 0, 0, 0, 0]
    k.prb_slots[:] = 100
    k.mcs_hist[[5, 10]] = [1, 3]
    return k, np.array([0, 0, 1, 1, 1])


def test_summary_has_cell_edge_and_loss_kpis():
    k, cell = _acc()
    s = k.summary(1e-3, 30e3, cell)
    assert set(KEYS) <= set(s)
    tput = np.array([0.0, 1.0, 2.0, 3.0, 10.0])
    assert s["throughput_mbps"] == pytest.approx(tput.mean())
    assert s["throughput_p5_mbps"] == pytest.approx(np.percentile(tput, 5)) == pytest.approx(0.2)
    assert s["zero_ue_share"] == pytest.approx(0.2)
    assert s["cell_throughput_mbps"] == pytest.approx((1.0 + 15.0) / 2)
    assert s["bler"] == pytest.approx(8 / 44)
    assert s["residual_bler"] == pytest.approx(4 / 44)
    assert s["mean_mcs"] == pytest.approx((5 + 30) / 4)


def test_per_ue_arrays():
    k, _ = _acc()
    ue = k.per_ue(1e-3)
    np.testing.assert_allclose(ue["throughput_mbps"], [0, 1, 2, 3, 10])
    np.testing.assert_array_equal(ue["zero"], [True, False, False, False, False])


def test_nothing_delivered():
    k = KpiAccumulator.zeros(3, 28)
    s = k.summary(1e-3, 30e3, np.zeros(3, np.int64))
    assert s["throughput_p5_mbps"] == 0.0 and s["zero_ue_share"] == 1.0
