"""Geometry: wrap-around, strongest-cell attachment, A3 handover, moving shadowing."""

from __future__ import annotations

import dataclasses

import numpy as np

from linkadapt.sim import PRESETS
from linkadapt.sim.geometry import Geometry, hex_sites, wrap_offsets


def _geometry(preset: str = "mimo", n: int = 2000, seed: int = 0, **over) -> Geometry:
    cfg = dataclasses.replace(PRESETS[preset], **over)
    rng = np.random.default_rng(seed)
    speed = rng.uniform(*cfg.speed_kmh, n)
    return Geometry(cfg, speed, rng, np.random.default_rng(seed + 1))


def _sinr_db(g: Geometry) -> np.ndarray:
    ls = g.large_scale()
    return 10 * np.log10(
        ls.signal_mw / (ls.noise_mw + ls.strong_interf_mw.sum(1) + ls.background_interf_mw)
    )


def test_wrap_around_images_sit_sqrt_n_isd_away() -> None:
    for n_cells in (7, 19):
        off = wrap_offsets(n_cells, 100.0)
        assert off.shape == (7, 2) and np.allclose(off[0], 0)
        assert np.allclose(np.hypot(off[1:, 0], off[1:, 1]), np.sqrt(n_cells) * 100.0)
    assert wrap_offsets(3, 100.0).shape == (1, 2)  # no wrap-around for partial rings


def test_after_attachment_no_neighbour_is_stronger_than_the_serving_cell() -> None:
    g = _geometry()
    serving = g.rx_dbm[np.arange(g.cell.size), g.cell]
    assert np.all(g.rx_dbm.max(axis=1) <= serving + g.cfg.handover_hysteresis_db)
    assert np.all(g.rx_dbm.max(axis=1) == serving)  # at the drop: the strongest exactly


def test_full_load_geometry_sinr_has_no_deep_edge_and_no_edge_of_the_world() -> None:
    g = _geometry(n=7000)
    sinr = _sinr_db(g)
    assert np.percentile(sinr, 5) > -9.0  # strongest-cell attachment in 7 loaded cells
    med = [np.median(sinr[g.cell == c]) for c in range(7)]
    assert max(med) - min(med) < 2.0  # centre cell no worse than the outer ring


def test_a3_handover_needs_hysteresis_for_the_time_to_trigger() -> None:
    g = _geometry(n=4, handover_hysteresis_db=3.0, handover_ttt_ms=40.0)  # 80 slots
    g.cell[:] = 0
    g.rx_dbm[:] = -100.0
    g.rx_dbm[:, 1] = [-98.0, -96.0, -96.0, -90.0]  # +2, +4, +4, +10 dB over cell 0
    assert g._handover(40).size == 0  # condition holds for 40 slots only
    g.rx_dbm[2, 1] = -99.0  # UE 2 drops out of A3: its timer restarts
    handed = g._handover(40)
    assert set(handed.tolist()) == {1, 3}
    assert g.cell.tolist() == [0, 1, 0, 1]


def test_moving_ues_decorrelate_their_shadowing_with_distance() -> None:
    g = _geometry(n=4000, speed_kmh=(36.0, 36.0))  # 10 m/s
    before = g.shadow_db.copy()
    for _ in range(10):
        g.move(0.5, 1000)  # 50 m in total
    rho = np.corrcoef(before.ravel(), g.shadow_db.ravel())[0, 1]
    d_los, d_nlos = 37.0, 50.0
    assert np.exp(-50.0 / d_los) - 0.1 < rho < np.exp(-50.0 / d_nlos) + 0.1
    assert abs(g.shadow_db.std() / before.std() - 1.0) < 0.05  # stationary variance


def test_every_site_has_six_neighbours_at_the_isd_under_wrap_around() -> None:
    for n_cells in (7, 19):
        sites, images = hex_sites(n_cells, 1.0), wrap_offsets(n_cells, 1.0)
        for i in range(n_cells):
            rel = sites[i] - sites
            d = np.min(
                np.hypot(
                    rel[:, None, 0] - images[None, :, 0], rel[:, None, 1] - images[None, :, 1]
                ),
                axis=1,
            )
            assert np.isclose(np.sort(d)[1:7], 1.0).all() and np.isclose(d, 0).sum() == 1
    assert np.allclose(np.hypot(*hex_sites(7, 1.0)[1:].T), 1.0)  # ring 1 around site 0


def test_deep_indoor_ues_carry_one_extra_loss_on_every_link() -> None:
    g = _geometry(n=3000, deep_indoor_share=0.1, deep_indoor_loss_db=(30.0, 60.0))
    deep = g.indoor_loss_db > 0
    assert 0.07 < deep.mean() < 0.13
    assert g.indoor_loss_db[deep].min() >= 30.0 and g.indoor_loss_db.max() <= 60.0
    plain = _geometry(n=3000, deep_indoor_share=0.0)
    assert not (plain.indoor_loss_db > 0).any()
