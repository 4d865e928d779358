"""Channel: TR 38.901 path loss and shadowing, AR(1) Rayleigh fading, interference, MIMO rank.

Large-scale terms (positions, shadowing, attachment) live in :mod:`linkadapt.sim.geometry`;
fast fading evolves per slot:

    h[t+1] = ρ·h[t] + √(1 − ρ²)·w,  w ~ CN(0, 1),  ρ = J0(2π f_D T),  f_D = v·f_c / c

per UE and subband. Inter-cell interference: each of the two strongest neighbours
transmits in a slot with probability ``interference_load`` (the flash-light effect that
makes CQI stale), the others contribute their mean ``load × power``. Each strong
neighbour keeps its state (off, or on with a random beam gain) for a geometric number of
slots with mean ``INTERFERENCE_DWELL_SLOTS``, so the interference a CQI saw is partly
still there when the CQI is used.
"""

from __future__ import annotations

import numpy as np
from scipy.special import j0

from linkadapt.sim import rng
from linkadapt.sim.jit import kernel
from linkadapt.sim.scenario import SPEED_OF_LIGHT, ScenarioConfig

BOLTZMANN_DBM_HZ = -174.0
N_STRONG_INTERFERERS = 2
INTERFERENCE_DWELL_SLOTS = 50.0
BEAM_SIGMA_DB = 1.5


def path_loss_db(env: str, d2d: np.ndarray, fc_ghz: float, los: np.ndarray) -> np.ndarray:
    """TR 38.901 Table 7.4.1-1 path loss (dB) for UMa (h_BS 25 m) or UMi (10 m), h_UT 1.5 m."""
    h_bs, h_ut = (25.0, 1.5) if env == "UMa" else (10.0, 1.5)
    d3d = np.sqrt(d2d**2 + (h_bs - h_ut) ** 2)
    d_bp = 4.0 * (h_bs - 1.0) * (h_ut - 1.0) * fc_ghz * 1e9 / SPEED_OF_LIGHT
    lf = 20.0 * np.log10(fc_ghz)
    log_d = np.log10(d3d)  # once: the three formulas share it
    if env == "UMa":
        pl1 = 28.0 + 22.0 * log_d + lf
        pl2 = 28.0 + 40.0 * log_d + lf - 9.0 * np.log10(d_bp**2 + (h_bs - h_ut) ** 2)
        nlos = 13.54 + 39.08 * log_d + lf - 0.6 * (h_ut - 1.5)
    else:
        pl1 = 32.4 + 21.0 * log_d + lf
        pl2 = 32.4 + 40.0 * log_d + lf - 9.5 * np.log10(d_bp**2 + (h_bs - h_ut) ** 2)
        nlos = 22.4 + 35.3 * log_d + 21.3 * np.log10(fc_ghz) - 0.3 * (h_ut - 1.5)
    pl_los = np.where(d2d <= d_bp, pl1, pl2)
    return np.where(los, pl_los, np.maximum(pl_los, nlos))


def los_probability(env: str, d2d: np.ndarray) -> np.ndarray:
    """TR 38.901 Table 7.4.2-1 LOS probability (outdoor UE, h_UT ≤ 13 m)."""
    d1 = 63.0 if env == "UMa" else 36.0
    d = np.maximum(d2d, 1e-3)
    return np.where(d2d <= 18.0, 1.0, 18.0 / d + np.exp(-d / d1) * (1.0 - 18.0 / d))


def shadowing_std_db(env: str, los: np.ndarray) -> np.ndarray:
    """TR 38.901 Table 7.4.1-1 shadow-fading σ (dB)."""
    return np.where(los, 4.0, 6.0 if env == "UMa" else 7.82)


def fading_correlation(speed_kmh: np.ndarray, cfg: ScenarioConfig) -> np.ndarray:
    """AR(1) coefficient ρ = J0(2π f_D T) per UE."""
    return j0(2.0 * np.pi * doppler_hz(speed_kmh, cfg) * cfg.slot_seconds)


def doppler_hz(speed_kmh: np.ndarray, cfg: ScenarioConfig) -> np.ndarray:
    """Maximum Doppler shift f_D = v·f_c / c (Hz)."""
    return speed_kmh / 3.6 * cfg.carrier_ghz * 1e9 / SPEED_OF_LIGHT


class RayleighFading:
    """Per-UE, per-subband AR(1) complex Gaussian gains with unit mean power (float32).

    One compiled kernel per slot (:func:`_fading_sinr_step`) draws the innovations
    (xoshiro256** and a ziggurat, :mod:`linkadapt.sim.rng`: each UE, each subband, real
    then imaginary part), updates h in place and returns the per-subband channel SINR,
    so the 2·n·subbands normals per slot never pass through a numpy array.

    Parameters
    ----------
    rho : float ``[n]``
        AR(1) coefficient per UE (:func:`fading_correlation`).
    subbands : int
        Subbands per UE.
    seed : numpy.random.SeedSequence
        The fading stream (its own: no other draw shifts it).
    """

    def __init__(self, rho: np.ndarray, subbands: int, seed: np.random.SeedSequence) -> None:
        n = rho.shape[0]
        self.state = rng.new_state(seed)
        self.rho = np.empty(n, np.float32)
        self.innov = np.empty(n, np.float32)
        self.retune(rho)
        self.h = np.empty((2, n, subbands), np.float32)
        rng.fill_normal(self.state, self.h)
        self.h *= np.float32(np.sqrt(0.5))
        self._sinr = np.empty((n, subbands), np.float32)

    def retune(self, rho: np.ndarray) -> None:
        """Set each UE's AR(1) coefficient to ``rho [n]`` (its speed changed); h keeps its state."""
        self.rho[:] = rho
        self.innov[:] = np.sqrt(1.0 - np.asarray(rho, np.float64) ** 2)

    def step(
        self, wideband_sinr: np.ndarray, diversity_scale: np.ndarray, rank: np.ndarray
    ) -> np.ndarray:
        """Advance one slot; return the channel SINR per subband, float32 ``[n, subbands]``.

        SINR = Γ·(1 + (|h|² − 1)·s) with Γ ``wideband_sinr`` (float64 ``[n]``, linear) and
        s = ``diversity_scale[rank]`` (float32, 1/√L per rank, :func:`diversity_gain`).
        The returned buffer is reused by the next step.
        """
        _fading_sinr_step(
            self.h, self.rho, self.innov, self.state, wideband_sinr, diversity_scale, rank,
            self._sinr,
        )  # fmt: skip
        return self._sinr


_SQRT_HALF = np.float32(np.sqrt(0.5))


@kernel
def _fading_sinr_step(
    h: np.ndarray,
    rho: np.ndarray,
    innov: np.ndarray,
    state: np.ndarray,
    wideband: np.ndarray,
    scale_by_rank: np.ndarray,
    rank: np.ndarray,
    sinr: np.ndarray,
) -> None:
    """h ← ρ·h + √(1 − ρ²)·w (w ~ CN(0, 1)), then SINR = Γ·(1 + (|h|² − 1)·s), all float32
    in the order the numpy version rounded (the tests compare them on the same draws)."""
    one = np.float32(1.0)
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    for u in range(h.shape[1]):
        r = rho[u]
        q = _SQRT_HALF * innov[u]
        gamma = np.float32(wideband[u])
        scale = scale_by_rank[rank[u]]
        for k in range(h.shape[2]):
            z, s0, s1, s2, s3 = rng.normal(s0, s1, s2, s3)
            re = h[0, u, k] * r + np.float32(z) * q
            z, s0, s1, s2, s3 = rng.normal(s0, s1, s2, s3)
            im = h[1, u, k] * r + np.float32(z) * q
            h[0, u, k] = re
            h[1, u, k] = im
            power = re * re + im * im
            sinr[u, k] = gamma * (one + (power - one) * scale)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3


MAX_DIVERSITY = 16


def diversity_order(rank: np.ndarray, n_tx: int, n_rx: int) -> np.ndarray:
    """Spatial diversity per layer, L = clip(n_tx·n_rx / rank², 1, 16)."""
    r = np.asarray(rank, dtype=np.float64)
    return np.clip(n_tx * n_rx / r**2, 1.0, MAX_DIVERSITY)


def diversity_gain(power: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Variance-matched diversity: 1 + (|h|² − 1)/√L (mean 1, variance 1/L, ≥ 1 − 1/√L).

    Same mean and variance as the average of L Rayleigh branches, for the cost of one.
    L = 1 keeps plain Rayleigh.
    """
    scale = (1.0 / np.sqrt(order)).astype(np.float32)[:, None]
    return np.float32(1.0) + (power - np.float32(1.0)) * scale


def layer_sinr_gain_db(rank: np.ndarray, n_tx: int) -> np.ndarray:
    """Per-layer SINR change for ``rank`` layers with ``n_tx`` gNB ports (dB).

    Precoding gain 10·log10(n_tx / rank), power split over layers −10·log10(rank), and an
    inter-layer interference loss of 1 dB per extra layer (imperfect orthogonality).
    """
    r = np.asarray(rank, dtype=np.float64)
    return 10.0 * np.log10(n_tx / r) - 10.0 * np.log10(r) - 1.0 * (r - 1.0)


def with_evm_cap(sinr_lin: np.ndarray, evm_sinr_db: float) -> np.ndarray:
    """Impairments cap the SINR after precoding and layer gains: 1/SINR = 1/SINR_ch + 1/SINR_EVM."""
    evm = np.float32(10.0 ** (evm_sinr_db / 10.0))
    with np.errstate(divide="ignore"):  # a faded-out subband (SINR 0) stays 0
        return np.float32(1.0) / (np.float32(1.0) / sinr_lin + np.float32(1.0) / evm)


def layer_sinr_lin(
    sinr_lin: np.ndarray, rank: np.ndarray, n_tx: int, evm_sinr_db: float
) -> np.ndarray:
    """Per-layer SINR (linear, float32) of ``rank`` layers: channel SINR ``[n, S]`` times the
    layer gain, then the EVM cap (the cap bounds what the receiver sees per layer)."""
    gain = np.power(10.0, layer_sinr_gain_db(rank, n_tx) / 10.0).astype(np.float32)
    return with_evm_cap(sinr_lin * gain[:, None], evm_sinr_db)


class LayerSinr:
    """Per-layer SINR of every UE's coming transmission, linear (one kernel, the values of
    :func:`layer_sinr_lin`) and in dB (10·log10(max(·, 10⁻¹²)), float32, per subband).

    Parameters: ``n_tx`` gNB ports and ``evm_sinr_db``, the impairment cap.
    """

    def __init__(self, n_tx: int, evm_sinr_db: float) -> None:
        ranks = np.arange(1, 9)
        gain = np.power(10.0, layer_sinr_gain_db(ranks, n_tx) / 10.0).astype(np.float32)
        self.gain_by_rank = np.concatenate([np.ones(1, np.float32), gain])  # [rank 0..8]
        evm = np.float32(10.0 ** (evm_sinr_db / 10.0))
        self.inv_evm = np.float32(1.0) / evm

    def __call__(self, sinr_lin: np.ndarray, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(linear, dB)`` float32 ``[n, S]`` each, of channel SINR ``[n, S]`` at ``rank [n]``."""
        lin = np.empty(sinr_lin.shape, np.float32)
        _layer_sinr(sinr_lin, rank, self.gain_by_rank, self.inv_evm, lin)
        # numpy's vectorized float32 log10 (a scalar log10f per value costs 10x more)
        db = np.maximum(lin, _DB_FLOOR)
        np.log10(db, out=db)
        db *= np.float32(10.0)
        return lin, db


_DB_FLOOR = np.float32(1e-12)


@kernel
def _layer_sinr(
    sinr: np.ndarray,
    rank: np.ndarray,
    gain_by_rank: np.ndarray,
    inv_evm: np.float32,
    lin: np.ndarray,
) -> None:
    """1 / (1 / (SINR·G(ν)) + 1 / SINR_EVM), float32 as :func:`with_evm_cap`."""
    one = np.float32(1.0)
    for u in range(sinr.shape[0]):
        g = gain_by_rank[rank[u]]
        for k in range(sinr.shape[1]):
            lin[u, k] = one / (one / (sinr[u, k] * g) + inv_evm)


def best_rank(
    sinr_db: np.ndarray, max_rank: int, n_tx: int, evm_sinr_db: float | None = None
) -> np.ndarray:
    """Rank indicator: the layer count maximizing r·log2(1 + SINR_layer(r)) (int16).

    ``evm_sinr_db`` applies the impairment cap to each candidate's layer SINR.
    """
    ranks = np.arange(1, max_rank + 1)
    layer_db = sinr_db[:, None] + layer_sinr_gain_db(ranks, n_tx)[None, :]
    layer = np.power(10.0, layer_db / 10.0)
    if evm_sinr_db is not None:
        layer = 1.0 / (1.0 / layer + 10.0 ** (-evm_sinr_db / 10.0))
    capacity = ranks[None, :] * np.log2(1.0 + layer)
    return (np.argmax(capacity, axis=1) + 1).astype(np.int16)


class InterferenceActivity:
    """Per-UE gain of each strong interferer: its activity times its beam towards the UE.

    Every slot, with probability 1 / dwell, an interferer re-draws its state: off with
    probability 1 − load, otherwise on with a lognormal beam gain (σ = ``BEAM_SIGMA_DB``,
    unit mean) — a neighbour serving another UE points another beam. The slots between
    re-draws are geometric (mean ``INTERFERENCE_DWELL_SLOTS``), drawn once per re-draw,
    so a slot only compares each interferer's next re-draw slot with the clock
    (:func:`_interference_step`) instead of drawing a uniform for each.

    Parameters
    ----------
    n_ues : int
        UEs (two strong interferers each).
    load : float
        Probability that an interferer is on after a re-draw.
    seed : numpy.random.SeedSequence
        The interference stream.
    """

    def __init__(self, n_ues: int, load: float, seed: np.random.SeedSequence) -> None:
        self.state = rng.new_state(seed)
        self.load = float(load)
        self.gain = np.zeros((n_ues, N_STRONG_INTERFERERS))
        # −1: the first re-draw is due at once, and draws the initial state
        self.next_redraw = np.full((n_ues, N_STRONG_INTERFERERS), -1, np.int64)
        _interference_redraw(-1, self.gain, self.next_redraw, self.load, self.state)

    def wideband_sinr(
        self,
        t: int,
        signal_mw: np.ndarray,
        strong_mw: np.ndarray,
        background_mw: np.ndarray,
        noise_mw: float,
        out: np.ndarray,
    ) -> np.ndarray:
        """Advance to slot ``t``; write S / (N + Σ_j a_j·I_j + load·I_rest) (linear,
        float64 ``[n]``) into ``out`` and return it (the large-scale powers of
        :class:`~linkadapt.sim.geometry.LargeScale`)."""
        _interference_redraw(t, self.gain, self.next_redraw, self.load, self.state)
        _wideband_sinr(
            signal_mw, strong_mw, background_mw, noise_mw, self.load, self.gain, out
        )  # fmt: skip
        return out


_BEAM_SIGMA = BEAM_SIGMA_DB * np.log(10.0) / 10.0
_LOG_STAY = float(np.log1p(-1.0 / INTERFERENCE_DWELL_SLOTS))


@kernel
def _interference_redraw(
    t: int, gain: np.ndarray, next_redraw: np.ndarray, load: float, state: np.ndarray
) -> None:
    """Re-draw the interferers due at slot ``t`` and the slot of their next re-draw
    (t + G, G ~ Geometric(1 / dwell) on 1, 2, ...)."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    flat_gain = gain.reshape(-1)
    flat_next = next_redraw.reshape(-1)
    for i in range(flat_next.size):
        if flat_next[i] > t:
            continue
        u, s0, s1, s2, s3 = rng.uniform(s0, s1, s2, s3)
        if u < load:
            z, s0, s1, s2, s3 = rng.normal(s0, s1, s2, s3)
            flat_gain[i] = np.exp(_BEAM_SIGMA * z - _BEAM_SIGMA * _BEAM_SIGMA / 2.0)
        else:
            flat_gain[i] = 0.0
        u, s0, s1, s2, s3 = rng.uniform(s0, s1, s2, s3)
        flat_next[i] = t + 1 + np.int64(np.log1p(-u) / _LOG_STAY)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3


@kernel
def _wideband_sinr(
    signal: np.ndarray,
    strong: np.ndarray,
    background: np.ndarray,
    noise: float,
    load: float,
    gain: np.ndarray,
    out: np.ndarray,
) -> None:
    for u in range(signal.shape[0]):
        interference = 0.0
        for j in range(strong.shape[1]):
            interference += strong[u, j] * gain[u, j]
        out[u] = signal[u] / (noise + (interference + load * background[u]))
