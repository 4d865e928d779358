"""The simulator's compiled kernels against the numpy code they replaced (same inputs, same
draws), and the random streams they draw against their distributions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from linkadapt import bler, link_map, nr
from linkadapt.sim import PRESETS, Simulator, channel, rng
from linkadapt.sim.cqi import CqiReporting, _measure
from linkadapt.sim.harq import IDLE, NEEDS_RETX, HarqProcesses
from linkadapt.sim.phy import PhyAbstraction
from linkadapt.sim.scheduler import Scheduler
from linkadapt.sim.traffic import Traffic

# ---------------------------------------------------------------- random streams


def test_ziggurat_normal_is_standard_normal() -> None:
    state = rng.new_state(np.random.SeedSequence(5))
    z = np.empty(400_000)
    rng.fill_normal(state, z)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 0.01 and abs(z.var() - 1.0) < 0.01
    assert abs(stats.skew(z)) < 0.02 and abs(stats.kurtosis(z)) < 0.05
    # the tail beyond the base layer (r = 3.654) comes from Marsaglia's tail algorithm
    for x in (1.0, 2.0, 3.0, rng.ZIGGURAT_R):
        expected = 2 * stats.norm.sf(x)
        got = np.mean(np.abs(z) > x)
        assert abs(got - expected) < 5 * np.sqrt(expected / z.size), x
    assert np.abs(z).max() > rng.ZIGGURAT_R  # the tail is reached at all


def test_ziggurat_tables_match_numpys() -> None:
    """Same construction as numpy's 256-layer tables (ki_double/wi_double/fi_double)."""
    assert abs(int(rng.ZIG_K[0]) - 0x000EF33D8025EF6A) < 16
    assert rng.ZIG_K[1] == 0
    assert abs(int(rng.ZIG_K[2]) - 0x000C08BE98FBC6A8) < 256
    np.testing.assert_allclose(rng.ZIG_W[0], 8.68362706080130616677e-16, rtol=1e-12)
    np.testing.assert_allclose(rng.ZIG_F[1], 9.77101701267671596263e-01, rtol=1e-12)


def test_uniform_and_exponential_streams() -> None:
    state = rng.new_state(np.random.SeedSequence(6))
    u = np.empty(200_000)
    rng.fill_uniform(state, u)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_streams_reproduce_from_their_seed() -> None:
    a, b = (rng.new_state(np.random.SeedSequence(9)) for _ in range(2))
    x, y = np.empty(1000), np.empty(1000)
    rng.fill_normal(a, x)
    rng.fill_normal(b, y)
    assert np.array_equal(x, y) and np.array_equal(a, b)
    rng.fill_normal(a, x)
    assert not np.array_equal(x, y)  # the state advanced


# ---------------------------------------------------------------- fading, SINR


def _fading_reference(
    h: np.ndarray, rho: np.ndarray, innov: np.ndarray, z: np.ndarray
) -> np.ndarray:
    """The numpy AR(1) update the kernel replaced, with the kernel's draws ``z [n, S, 2]``."""
    noise = np.stack([z[..., 0], z[..., 1]]).astype(np.float32)
    noise *= np.float32(np.sqrt(0.5)) * innov[:, None]
    h *= rho[:, None]
    h += noise
    return h[0] * h[0] + h[1] * h[1]


def test_fading_kernel_equals_numpy_ar1_on_the_same_draws() -> None:
    n, subbands = 500, 4
    rho = channel.fading_correlation(np.linspace(0.0, 150.0, n), PRESETS["mimo"])
    fading = channel.RayleighFading(rho, subbands, np.random.SeedSequence(1))
    h_ref = fading.h.copy()
    wideband = np.geomspace(1e-3, 1e4, n)
    scale = (1.0 / np.sqrt(np.arange(1.0, 10.0))).astype(np.float32)
    rank = np.random.default_rng(0).integers(1, 5, n).astype(np.int16)
    for _ in range(5):
        draws = np.empty((n, subbands, 2))
        rng.fill_normal(fading.state.copy(), draws)  # the order the kernel draws in
        power = _fading_reference(h_ref, fading.rho, fading.innov, draws)
        gain = channel.diversity_gain(power, 1.0 / scale[rank].astype(np.float64) ** 2)
        expected = wideband.astype(np.float32)[:, None] * gain
        got = fading.step(wideband, scale, rank)
        np.testing.assert_array_equal(fading.h, h_ref)
        np.testing.assert_allclose(got, expected, rtol=2e-7)


def test_fading_keeps_unit_power_and_its_correlation() -> None:
    n = 4000
    rho = np.full(n, 0.9)
    fading = channel.RayleighFading(rho, 1, np.random.SeedSequence(2))
    ones = np.ones(n)
    scale = np.ones(9, np.float32)
    rank = np.ones(n, np.int16)
    before = fading.h[0, :, 0].copy()
    power = np.concatenate([fading.step(ones, scale, rank)[:, 0].copy() for _ in range(50)])
    assert abs(power.mean() - 1.0) < 0.02  # unit mean power (scale 1: |h|²)
    assert abs(np.var(power) - 1.0) < 0.06  # exponential: variance 1
    after = fading.h[0, :, 0]
    # 50 steps of ρ = 0.9 (real part: correlation ρ^50 ≈ 0.005); one step of a fresh copy
    assert abs(np.corrcoef(before, after)[0, 1]) < 0.06
    again = channel.RayleighFading(rho, 1, np.random.SeedSequence(3))
    first = again.h[0, :, 0].copy()
    again.step(ones, scale, rank)
    assert abs(np.corrcoef(first, again.h[0, :, 0])[0, 1] - 0.9) < 0.02


def test_interference_kernel_equals_numpy_and_redraws_at_the_dwell_rate() -> None:
    n, load = 5000, 0.6
    act = channel.InterferenceActivity(n, load, np.random.SeedSequence(4))
    r = np.random.default_rng(1)
    signal, strong = r.uniform(1, 10, n), r.uniform(0, 1, (n, 2))
    background, noise = r.uniform(0, 1, n), 0.3
    out = np.empty(n)
    changed, on = [], []
    gain = act.gain.copy()
    for t in range(300):
        got = act.wideband_sinr(t, signal, strong, background, noise, out)
        interference = (strong * act.gain).sum(axis=1) + load * background
        expected = signal / (noise + interference)  # the simulator's numpy expression
        np.testing.assert_array_equal(got, expected)
        changed.append(np.mean(act.gain != gain))
        on.append(np.mean(act.gain > 0))
        gain = act.gain.copy()
    # a re-drawn interferer often lands in the same off state: P(change) = p·(1 − (1 − load)²)
    p = 1.0 / channel.INTERFERENCE_DWELL_SLOTS
    expected_change = p * (1.0 - (1.0 - load) ** 2)
    assert abs(np.mean(changed) - expected_change) < 0.1 * expected_change
    assert abs(np.mean(on) - load) < 0.02
    beams = act.gain[act.gain > 0]
    assert abs(beams.mean() - 1.0) < 0.02  # unit-mean lognormal beam


def test_layer_sinr_kernel_equals_numpy() -> None:
    cfg = PRESETS["mmimo"]
    r = np.random.default_rng(2)
    sinr = r.exponential(30.0, (700, 4)).astype(np.float32)
    sinr[0, 0], sinr[1, 1] = 0.0, np.inf  # a faded-out and an unbounded subband
    rank = r.integers(1, 9, 700).astype(np.int16)
    lin, db = channel.LayerSinr(cfg.n_tx, cfg.evm_sinr_db)(sinr, rank)
    ref = channel.layer_sinr_lin(sinr, rank, cfg.n_tx, cfg.evm_sinr_db)
    np.testing.assert_array_equal(lin, ref)
    np.testing.assert_array_equal(
        db, np.float32(10.0) * np.log10(np.maximum(ref, np.float32(1e-12)))
    )


def test_wrap_around_distances_equal_numpy_hypot() -> None:
    for preset in ("mimo", "scsu"):
        sim = Simulator(preset, 3000, seed=1)
        g = sim.geometry
        rel = g.pos[:, None, :] - g.sites[None, :, :]
        d = np.full(rel.shape[:2], np.inf)
        for shift in g.images:
            np.minimum(d, np.hypot(rel[..., 0] - shift[0], rel[..., 1] - shift[1]), out=d)
        np.testing.assert_array_equal(g.distances(), np.maximum(d, g.min_d))


# ---------------------------------------------------------------- HARQ bitmasks


def _pending_reference(state: np.ndarray) -> tuple[np.ndarray, ...]:
    needs, idle = state == NEEDS_RETX, state == IDLE
    return needs.any(axis=1), needs.argmax(axis=1), idle.any(axis=1), idle.argmax(axis=1)


@pytest.mark.parametrize("n_processes", [8, 16])
def test_harq_pending_masks_equal_the_state_scan(n_processes: int) -> None:
    """Random transmissions, feedback (ACK/NACK, the last attempt) and flushes; every
    slot the masks give what scanning the states gives, all processes busy included."""
    n = 40
    r = np.random.default_rng(n_processes)
    # feedback as late as there are processes: a UE sending every slot runs out of them
    delay = r.integers(n_processes - 2, n_processes + 2, n)
    h = HarqProcesses(n_processes, 2, delay=delay, max_delay=n_processes + 1)
    saw_all_busy = saw_top_bit = False
    for t in range(400):
        h.collect(t, max_transmissions=3)
        got = h.pending()
        for a, b in zip(got, _pending_reference(h.state), strict=True):
            np.testing.assert_array_equal(a, b)
        has_retx, retx_proc, has_idle, idle_proc = got
        saw_all_busy |= bool((~has_idle & ~has_retx).any())
        saw_top_bit |= bool((idle_proc == n_processes - 1).any())
        go = r.random(n) < 0.9  # a busy cell: most UEs send every slot
        retx = np.flatnonzero(go & has_retx)
        new = np.flatnonzero(go & ~has_retx & has_idle)
        if new.size:
            k = new.size
            ok = r.random(k) < 0.5
            h.start(t, new, idle_proc[new], np.full(k, 5), np.full(k, 100.0), ok,
                    np.full(k, 10), np.full(k, 1), np.full(k, 200.0))  # fmt: skip
        if retx.size:
            h.retransmitted(t, retx, retx_proc[retx], r.random(retx.size) < 0.5)
        if t % 37 == 0:
            h.flush(r.choice(n, 5, replace=False))
    assert saw_all_busy and saw_top_bit


# ---------------------------------------------------------------- CSI


class _ZigguratNormals:
    """``standard_normal(k)`` from a kernel stream: the errors the kernel draws, in order."""

    def __init__(self, state: np.ndarray) -> None:
        self.state = state

    def standard_normal(self, k: int) -> np.ndarray:
        out = np.empty(k)
        rng.fill_normal(self.state, out)
        return out


class _QueueCqiReference:
    """The reporting as first written: a per-UE queue searched for due reports, the
    measurement in numpy."""

    def __init__(self, cfg, period, phase, delay, generator) -> None:
        n = period.shape[0]
        self.cfg, self.period, self.phase, self.delay, self.rng = (
            cfg,
            period,
            phase,
            delay,
            generator,
        )
        self.beta = float(bler.eesm_beta(np.array([14]), table=cfg.mcs_table)[0])
        queue = int(np.ceil(cfg.cqi_delay_slots[1] / cfg.cqi_period_slots[0])) + 1
        self.pending_cqi = np.zeros((n, queue), np.int16)
        self.pending_ri = np.ones((n, queue), np.int16)
        self.pending_measured = np.full((n, queue), -1, np.int64)
        self.pending_arrival = np.full((n, queue), -1, np.int64)
        self.pending_count = np.zeros(n, np.int64)
        self.cqi = np.zeros(n, np.int16)
        self.ri = np.ones(n, np.int16)
        self.measured = np.full(n, -1, np.int64)

    def step(self, t, sinr_sb_lin) -> None:
        cfg = self.cfg
        meas = np.flatnonzero((t - self.phase) % self.period == 0)
        if meas.size:
            noise = self.rng.standard_normal(meas.size) * cfg.cqi_noise_db
            measured = sinr_sb_lin[meas] * np.power(10.0, noise / 10.0).astype(np.float32)[:, None]
            wideband_db = 10.0 * np.log10(np.mean(measured, axis=1))
            ri = channel.best_rank(wideband_db, cfg.max_rank, cfg.n_tx, cfg.evm_sinr_db)
            layer = channel.layer_sinr_lin(measured, ri, cfg.n_tx, cfg.evm_sinr_db)
            eff = bler.effective_sinr_db(10.0 * np.log10(layer), self.beta)
            slot = self.pending_count[meas] % self.pending_cqi.shape[1]
            self.pending_cqi[meas, slot] = link_map.cqi_from_sinr(eff, cqi_table=cfg.mcs_table)
            self.pending_ri[meas, slot] = ri
            self.pending_measured[meas, slot] = t
            self.pending_arrival[meas, slot] = t + self.delay[meas]
            self.pending_count[meas] += 1
        due = self.pending_arrival == t
        ue = np.flatnonzero(due.any(axis=1))
        if ue.size:
            slot = due[ue].argmax(axis=1)
            self.cqi[ue] = self.pending_cqi[ue, slot]
            self.ri[ue] = self.pending_ri[ue, slot]
            self.measured[ue] = self.pending_measured[ue, slot]

    def forget(self, ue) -> None:
        self.pending_arrival[ue] = -1
        self.measured[ue] = -1


@pytest.mark.parametrize("preset", ["mimo", "randomized"])
def test_cqi_arrival_ring_equals_the_queue_search(preset: str) -> None:
    """Same channel, same measurement errors: the same CQI, RI and age every slot,
    handovers (forget) included."""
    sim = Simulator(preset, 300, seed=4)
    cfg = sim.cfg
    r = np.random.default_rng(3)
    period = r.integers(cfg.cqi_period_slots[0], cfg.cqi_period_slots[1] + 1, 300)
    phase, delay = r.integers(0, period), r.integers(1, cfg.cqi_delay_slots[1] + 1, 300)
    fast = CqiReporting(cfg, period, phase, delay, np.random.SeedSequence(8))
    ref = _QueueCqiReference(cfg, period, phase, delay, _ZigguratNormals(fast.state.copy()))
    for t in range(250):
        sim.observe()
        sinr = sim._sinr_sb_lin
        fast.step(t, sinr)
        ref.step(t, sinr)
        assert np.array_equal(fast.cqi, ref.cqi) and np.array_equal(fast.ri, ref.ri), t
        assert np.array_equal(fast.measured, ref.measured), t
        if t % 50 == 49:
            ue = r.choice(300, 30, replace=False)
            fast.forget(ue)
            ref.forget(ue)
        sim.step(np.full(300, 5))


def test_measurement_kernel_equals_numpy_away_from_thresholds() -> None:
    """Random SINRs, zeros and huge values included: the same RI, and the same CQI except
    where the numpy effective SINR is within 1e-5 dB of a CQI threshold."""
    for preset in ("mimo", "mmimo", "scsu"):
        cfg = PRESETS[preset]
        r = np.random.default_rng(5)
        n = 5000
        sinr = (r.exponential(1.0, (n, cfg.subbands)) * np.geomspace(1e-3, 1e4, n)[:, None]).astype(
            np.float32
        )
        sinr[:5] = 0.0
        noise = r.standard_normal(n) * 1.5
        csi = CqiReporting(
            cfg, np.full(n, 5), np.zeros(n, np.int64), np.full(n, 2), np.random.SeedSequence(0)
        )
        with np.errstate(divide="ignore"):
            measured = sinr * np.power(10.0, noise / 10.0).astype(np.float32)[:, None]
            wideband_db = 10.0 * np.log10(np.mean(measured, axis=1))
            ri = channel.best_rank(wideband_db, cfg.max_rank, cfg.n_tx, cfg.evm_sinr_db)
            layer = channel.layer_sinr_lin(measured, ri, cfg.n_tx, cfg.evm_sinr_db)
            eff = bler.effective_sinr_db(10.0 * np.log10(layer), csi.beta)
        cqi = link_map.cqi_from_sinr(eff, cqi_table=cfg.mcs_table)
        ring_cqi, ring_ri = np.zeros((1, n), np.int16), np.zeros((1, n), np.int16)
        _measure(
            np.arange(n), noise, sinr, cfg.max_rank, csi._rank_gain, csi._inv_evm,
            csi.layer.gain_by_rank, csi.layer.inv_evm, csi.beta, csi._cqi_thresholds,
            np.zeros(n, np.int64), ring_cqi, ring_ri,
        )  # fmt: skip
        np.testing.assert_array_equal(ring_ri[0], ri)
        th = link_map.cqi_thresholds_db(cfg.mcs_table)[1:]
        near = np.min(np.abs(eff[:, None] - th[None, :]), axis=1) < 1e-5
        assert np.array_equal(ring_cqi[0][~near], cqi[~near])


# ---------------------------------------------------------------- scheduler, traffic


def _schedule_reference(cfg, t, eligible, cqi, ri, cell, avg_rate, last_served):
    """Per cell, the ``ues_per_slot`` eligible UEs of largest metric (no ties here)."""
    n = eligible.size
    if cfg.scheduler == "pf":
        se = np.asarray(nr.cqi_spectral_efficiency(cfg.mcs_table))[cqi] * ri
        metric = (se + 1e-3) / (avg_rate + 1.0)
    else:
        metric = (t - last_served).astype(np.float64) + np.arange(n) / (10.0 * n)
    scheduled = np.zeros(n, bool)
    for c in range(cfg.n_cells):
        rows = np.flatnonzero(eligible & (cell == c))
        scheduled[rows[np.argsort(-metric[rows], kind="stable")][: cfg.ues_per_slot]] = True
    count = np.maximum(np.bincount(cell[scheduled], minlength=cfg.n_cells), 1)
    return scheduled, np.maximum(cfg.n_prb // count, 1)[cell].astype(np.int32)


@pytest.mark.parametrize("kind", ["pf", "rr"])
def test_scheduler_kernel_equals_per_cell_sort(kind: str) -> None:
    cfg = dataclasses.replace(PRESETS["mimo"], scheduler=kind, ues_per_slot=3)
    n = 400
    r = np.random.default_rng(6)
    s = Scheduler(cfg, n)
    s.avg_rate = r.exponential(1e4, n)  # distinct metrics
    for t in range(30):
        cell = r.integers(0, cfg.n_cells, n)
        eligible = r.random(n) < (0.0 if t == 0 else 0.3)  # slot 0: nobody to schedule
        cqi = r.integers(0, 16, n).astype(np.int16)
        ri = r.integers(1, 5, n).astype(np.int16)
        expected = _schedule_reference(
            cfg, t, eligible, cqi, ri, cell, s.avg_rate, s.last_served.copy()
        )
        got = s.schedule(t, eligible, cqi, ri, cell)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
        if t == 0:
            assert not got[0].any() and (got[1] == cfg.n_prb).all()
        s.served(np.where(got[0], r.integers(0, 10**5, n), 0))


def test_scheduler_breaks_ties_by_row() -> None:
    cfg = dataclasses.replace(PRESETS["mimo"], n_cells=1, ues_per_slot=2)
    s = Scheduler(cfg, 5)
    same = np.full(5, 7, np.int16)
    scheduled, _ = s.schedule(0, np.ones(5, bool), same, np.ones(5, np.int16), np.zeros(5, int))
    assert scheduled.tolist() == [True, True, False, False, False]


def test_bursty_arrivals_are_poisson_with_exponential_sizes() -> None:
    cfg = dataclasses.replace(PRESETS["bursty"], packets_per_slot=0.2, packet_bytes=1000.0)
    n = 3000
    bursty = np.arange(n) % 2 == 0
    tr = Traffic(cfg, bursty, np.random.SeedSequence(7))
    before = tr.buffer_bits.copy()
    per_slot = []
    for _ in range(100):
        tr.arrivals()
        per_slot.append(tr.buffer_bits[bursty] - before[bursty])
        before = tr.buffer_bits.copy()
    added = np.array(per_slot)
    assert np.isinf(tr.buffer_bits[~bursty]).all()  # full buffer stays full
    # compound Poisson: mean λ·E[S], variance λ·E[S²] = λ·2·E[S]² (exponential sizes)
    mean_bits = 1000.0 * 8.0
    assert abs(added.mean() / (0.2 * mean_bits) - 1.0) < 0.03
    assert abs(added.var() / (0.2 * 2 * mean_bits**2) - 1.0) < 0.06
    assert abs(np.mean(added == 0) - np.exp(-0.2)) < 0.01  # P(no packet in a slot)


def test_no_arrivals_at_rate_zero() -> None:
    cfg = dataclasses.replace(PRESETS["bursty"], packets_per_slot=0.0)
    tr = Traffic(cfg, np.ones(10, bool), np.random.SeedSequence(0))
    for _ in range(20):
        tr.arrivals()
    assert (tr.buffer_bits == 0).all()


@pytest.mark.parametrize("preset", ["mimo", "scsu"])
def test_tbler_kernel_equals_the_bler_model(preset: str) -> None:
    """Random attempts (chase-combined SINRs, MCS, layers, PRBs, UE offsets), faded-out
    subbands included, against :mod:`linkadapt.bler` composed as before the kernel."""
    cfg = dataclasses.replace(PRESETS[preset], mcs_table=1 if preset == "scsu" else 2)
    r = np.random.default_rng(8)
    n = 3000
    offset = r.uniform(-1.0, 4.0, 50)
    phy = PhyAbstraction(cfg, offset)
    sinr = (r.exponential(1.0, (n, cfg.subbands)) * np.geomspace(0.1, 3e3, n)[:, None]).astype(
        np.float32
    )
    sinr[:10, 0] = 0.0
    mcs = r.integers(0, phy.n_mcs, n)
    rank, prb, ue = r.integers(1, 5, n), r.integers(1, cfg.n_prb + 1, n), r.integers(0, 50, n)
    with np.errstate(divide="ignore"):
        eff = bler.effective_sinr_db(10.0 * np.log10(sinr), phy.betas[mcs])
    cb = bler.code_block_bler(
        eff, mcs, table=cfg.mcs_table, cb_bits=phy.k_cb[mcs, rank, prb], offset_db=offset[ue]
    )
    expected = bler.transport_block_bler(cb, phy.n_cb[mcs, rank, prb])
    got = phy.tbler(sinr, mcs, rank, prb, ue)
    # the numpy path rounds the SINRs to float32 dB and back (~1e-7 relative): on the
    # steepest waterfalls (many code blocks) that moves the TBLER by a few 1e-6
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert ((expected > 0.01) & (expected < 0.99)).sum() > 20  # the waterfall is hit
