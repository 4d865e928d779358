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
    if env == "UMa":
        pl1 = 28.0 + 22.0 * np.log10(d3d) + lf
        pl2 = 28.0 + 40.0 * np.log10(d3d) + lf - 9.0 * np.log10(d_bp**2 + (h_bs - h_ut) ** 2)
        nlos = 13.54 + 39.08 * np.log10(d3d) + lf - 0.6 * (h_ut - 1.5)
    else:
        pl1 = 32.4 + 21.0 * np.log10(d3d) + lf
        pl2 = 32.4 + 40.0 * np.log10(d3d) + lf - 9.5 * np.log10(d_bp**2 + (h_bs - h_ut) ** 2)
        nlos = 22.4 + 35.3 * np.log10(d3d) + 21.3 * np.log10(fc_ghz) - 0.3 * (h_ut - 1.5)
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

    Real and imaginary parts are kept as separate float32 arrays updated in place: the
    update is the simulator's largest per-slot cost, and complex temporaries double it.
    """

    def __init__(self, rho: np.ndarray, subbands: int, rng: np.random.Generator) -> None:
        n = rho.shape[0]
        self.rng = rng
        self.rho = rho.astype(np.float32)[:, None]
        self.innov = np.sqrt(1.0 - self.rho**2).astype(np.float32)
        scale = np.float32(np.sqrt(0.5))
        self.h = rng.standard_normal((2, n, subbands), dtype=np.float32) * scale
        self._noise = np.empty_like(self.h)
        self._power = np.empty(self.h.shape[1:], np.float32)

    def retune(self, rho: np.ndarray) -> None:
        """Set each UE's AR(1) coefficient to ``rho [n]`` (its speed changed); h keeps its state."""
        self.rho[:, 0] = rho
        self.innov[:, 0] = np.sqrt(1.0 - rho**2)

    def step(self) -> np.ndarray:
        """Advance one slot; return the power gains |h|² ``[n, subbands]`` (a reused buffer)."""
        self.rng.standard_normal(self.h.shape, dtype=np.float32, out=self._noise)
        self._noise *= np.float32(np.sqrt(0.5)) * self.innov
        self.h *= self.rho
        self.h += self._noise
        np.multiply(self.h[0], self.h[0], out=self._power)
        self._power += self.h[1] * self.h[1]
        return self._power


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
    unit mean) — a neighbour serving another UE points another beam.
    """

    def __init__(self, n_ues: int, load: float, rng: np.random.Generator) -> None:
        self.rng = rng
        self.load = load
        self.gain = self._draw((n_ues, N_STRONG_INTERFERERS))

    def _draw(self, shape: tuple[int, ...]) -> np.ndarray:
        on = self.rng.random(shape) < self.load
        sigma = BEAM_SIGMA_DB * np.log(10.0) / 10.0
        beam = np.exp(sigma * self.rng.standard_normal(shape) - sigma**2 / 2.0)
        return on * beam

    def step(self) -> np.ndarray:
        """Advance one slot; return the float ``[n, 2]`` interferer gains."""
        redraw = np.flatnonzero(self.rng.random(self.gain.size) < 1.0 / INTERFERENCE_DWELL_SLOTS)
        self.gain.ravel()[redraw] = self._draw((redraw.size,))
        return self.gain
