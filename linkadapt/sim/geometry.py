"""Geometry and mobility: hex layout with wrap-around, moving UEs, strongest-cell attachment.

Large-scale received power of UE u from cell j (TR 38.901 §7.4):

    P_rx[u, j] = P_tx + G_BS − PL(d_uj, LOS_uj) − S_uj            (dBm)

- ``d_uj`` is the distance to the nearest *wrap-around image* of site j: for the full
  7- and 19-cell clusters the layout is tiled by the cluster's translation vectors
  (length √N·ISD, N = i² + ij + j², (i, j) = (2, 1) or (3, 2)), so every cell has a full
  ring of neighbours and no cell is an edge of the world. Other cell counts have no
  wrap-around (documented in docs/simulator.md).
- ``S_uj`` is log-normal shadowing (σ per 38.901 Table 7.4.1-1) that evolves with the
  distance travelled Δd as a Gudmundson AR(1) process,
  S ← a·S + √(1 − a²)·σ·w with a = exp(−Δd / d_corr), d_corr from 38.901 Table 7.5-6
  (UMa 37 m LOS / 50 m NLOS, UMi 10 m / 13 m). Links are independent (the 0.5 inter-site
  correlation of 38.901 is not modelled). LOS states are drawn once per drop.
- UEs move in a straight line at their speed in a random direction.
- A share ``deep_indoor_share`` of UEs (0 in the presets, up to 6 % in ``randomized``) is deep
  indoor: an extra ``deep_indoor_loss_db`` on all its links makes it noise-limited, down to
  outage, so learners see the cell edge where MCS 0 and retransmissions are all that work.

Attachment (38.331 event A3): at the drop each UE attaches to its strongest cell (RSRP
incl. shadowing). Afterwards it hands over when a neighbour is stronger than the serving
cell by more than ``handover_hysteresis_db`` for ``handover_ttt_ms`` (time-to-trigger).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from linkadapt.sim.channel import (
    BOLTZMANN_DBM_HZ,
    N_STRONG_INTERFERERS,
    los_probability,
    path_loss_db,
    shadowing_std_db,
)
from linkadapt.sim.jit import kernel
from linkadapt.sim.scenario import ScenarioConfig

# 38.901 Table 7.5-6: shadow-fading decorrelation distance (m), (LOS, NLOS)
SHADOW_DECORRELATION_M = {"UMa": (37.0, 50.0), "UMi": (10.0, 13.0)}
WRAP_CLUSTERS = {7: (2, 1), 19: (3, 2)}  # N = i² + ij + j²


def hex_sites(n_cells: int, isd_m: float) -> np.ndarray:
    """``[n_cells, 2]`` site positions (m) on a hexagonal grid, spiralling out from 0."""
    sites = [(0.0, 0.0)]
    ring = 1
    directions = [(1, 0), (1, -1), (0, -1), (-1, 0), (-1, 1), (0, 1)]  # axial, walking the ring
    while len(sites) < n_cells:
        q, r = -ring, ring  # start of the ring in axial coordinates
        for dq, dr in directions:
            for _ in range(ring):
                sites.append((isd_m * (q + r / 2.0), isd_m * r * np.sqrt(3) / 2.0))
                q, r = q + dq, r + dr
        ring += 1
    return np.asarray(sites[:n_cells])


def wrap_offsets(n_cells: int, isd_m: float) -> np.ndarray:
    """``[K, 2]`` translations of the wrap-around images (row 0 = no shift).

    K = 7 for the 7- and 19-cell clusters (the layout and its six shifted copies around
    it), K = 1 (no wrap-around) for any other cell count.
    """
    if n_cells not in WRAP_CLUSTERS:
        return np.zeros((1, 2))
    i, j = WRAP_CLUSTERS[n_cells]
    u, v = np.array([isd_m, 0.0]), np.array([isd_m / 2.0, isd_m * np.sqrt(3) / 2.0])
    t = i * u + j * v
    angles = np.arange(6) * np.pi / 3.0
    rot = np.stack(
        [
            np.cos(angles) * t[0] - np.sin(angles) * t[1],
            np.sin(angles) * t[0] + np.cos(angles) * t[1],
        ],
        axis=1,
    )
    return np.concatenate([np.zeros((1, 2)), rot])


@dataclass
class LargeScale:
    """Per-UE large-scale state derived from :class:`Geometry` (powers in mW)."""

    cell: np.ndarray  # int64 [n] serving cell
    signal_mw: np.ndarray  # [n] received signal power incl. BS antenna gain
    strong_interf_mw: np.ndarray  # [n, 2] two strongest neighbours
    background_interf_mw: np.ndarray  # [n] all other neighbours, full load
    noise_mw: float


class Geometry:
    """UE positions, mobility, per-link shadowing and serving cells of one drop.

    Args:
        cfg: the drop's scenario.
        speed_kmh: float ``[n]`` UE speeds.
        rng: the drop's generator (positions, directions, LOS, initial shadowing).
        mobility_rng: the stream of shadowing innovations as UEs move.
    """

    def __init__(
        self,
        cfg: ScenarioConfig,
        speed_kmh: np.ndarray,
        rng: np.random.Generator,
        mobility_rng: np.random.Generator,
    ) -> None:
        n = speed_kmh.shape[0]
        self.cfg = cfg
        self.rng = mobility_rng
        isd = np.sqrt(3.0) * cfg.cell_radius_m
        self.sites = hex_sites(cfg.n_cells, isd)
        self.images = wrap_offsets(cfg.n_cells, isd)
        self.min_d = 35.0 if cfg.environment == "UMa" else 10.0
        home = np.arange(n) % cfg.n_cells  # drop density: one disk of UEs per cell
        radius = np.sqrt(rng.uniform((self.min_d / cfg.cell_radius_m) ** 2, 1.0, n))
        angle = rng.uniform(0.0, 2.0 * np.pi, n)
        self.pos = self.sites[home] + cfg.cell_radius_m * radius[:, None] * np.stack(
            [np.cos(angle), np.sin(angle)], axis=1
        )
        heading = rng.uniform(0.0, 2.0 * np.pi, n)
        self.velocity = (speed_kmh / 3.6)[:, None] * np.stack(
            [np.cos(heading), np.sin(heading)], axis=1
        )  # m/s
        d2d = self.distances()
        self.los = rng.random(d2d.shape) < los_probability(cfg.environment, d2d)
        self.sigma = shadowing_std_db(cfg.environment, self.los)
        d_los, d_nlos = SHADOW_DECORRELATION_M[cfg.environment]
        self.decorrelation_m = np.where(self.los, d_los, d_nlos)
        self.shadow_db = rng.standard_normal(d2d.shape) * self.sigma
        # deep-indoor UEs (basements, 38.901 §7.4.3 high-loss O2I and beyond): one extra
        # loss on all their links, so they are noise-limited: the cell edge and outages
        deep = rng.random(n) < cfg.deep_indoor_share
        self.indoor_loss_db = np.where(deep, rng.uniform(*cfg.deep_indoor_loss_db, n), 0.0)
        bandwidth_hz = cfg.n_prb * 12 * cfg.scs_khz * 1e3
        noise_dbm = BOLTZMANN_DBM_HZ + 10.0 * np.log10(bandwidth_hz) + cfg.noise_figure_db
        self.noise_mw = float(10.0 ** (noise_dbm / 10.0))
        self.rx_dbm = self._rx_dbm(d2d)
        self.cell = np.argmax(self.rx_dbm, axis=1).astype(np.int64)
        self.a3_slots = np.zeros(n, np.int64)  # how long the A3 condition has held
        self.a3_target = np.full(n, -1, np.int64)

    def distances(self) -> np.ndarray:
        """``[n, n_cells]`` 2-D distance (m) to the nearest image of each site, ≥ min_d."""
        out = np.empty((self.pos.shape[0], self.sites.shape[0]))
        _nearest_image_distances(self.pos, self.sites, self.images, self.min_d, out)
        return out

    def _rx_dbm(self, d2d: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        return (
            cfg.tx_power_dbm
            + cfg.bs_antenna_gain_dbi
            - self.indoor_loss_db[:, None]
            - path_loss_db(cfg.environment, d2d, cfg.carrier_ghz, self.los)
            - self.shadow_db
        )

    def move(self, seconds: float, ttt_slots_elapsed: int) -> np.ndarray:
        """Advance ``seconds``; update shadowing, RSRP and A3 handovers.

        ``ttt_slots_elapsed`` is the number of slots the step stands for (the A3 timer
        counts slots). Returns the int64 rows that handed over.
        """
        step = self.velocity * seconds
        self.pos += step
        moved = np.hypot(step[:, 0], step[:, 1])[:, None]
        # a = exp(−Δd / d_corr) takes two values per UE (LOS, NLOS): two exps, not one
        # per link
        d_los, d_nlos = SHADOW_DECORRELATION_M[self.cfg.environment]
        a_los, a_nlos = np.exp(-moved / d_los), np.exp(-moved / d_nlos)
        a = np.where(self.los, a_los, a_nlos)
        keep = np.where(self.los, np.sqrt(1.0 - a_los * a_los), np.sqrt(1.0 - a_nlos * a_nlos))
        noise = self.rng.standard_normal(self.shadow_db.shape)
        self.shadow_db = a * self.shadow_db + keep * self.sigma * noise
        self.rx_dbm = self._rx_dbm(self.distances())
        return self._handover(ttt_slots_elapsed)

    def _handover(self, slots: int) -> np.ndarray:
        cfg = self.cfg
        rows = np.arange(self.cell.shape[0])
        serving = self.rx_dbm[rows, self.cell]
        others = self.rx_dbm.copy()
        others[rows, self.cell] = -np.inf
        best = np.argmax(others, axis=1)
        a3 = others[rows, best] > serving + cfg.handover_hysteresis_db
        same = a3 & (best == self.a3_target)
        self.a3_slots = np.where(same, self.a3_slots + slots, np.where(a3, slots, 0))
        self.a3_target = np.where(a3, best, -1)
        ttt = cfg.handover_ttt_ms * 1e-3 / cfg.slot_seconds
        go = np.flatnonzero(a3 & (self.a3_slots >= ttt))
        self.cell[go] = best[go]
        self.a3_slots[go] = 0
        self.a3_target[go] = -1
        return go

    def large_scale(self) -> LargeScale:
        """Serving signal, the two strongest neighbours and the rest (full-load powers)."""
        n = self.cell.shape[0]
        rx_mw = np.power(10.0, self.rx_dbm / 10.0)
        rows = np.arange(n)
        signal = rx_mw[rows, self.cell].copy()
        rx_mw[rows, self.cell] = 0.0
        order = np.sort(rx_mw, axis=1)[:, ::-1]
        strong = np.zeros((n, N_STRONG_INTERFERERS))
        k = min(N_STRONG_INTERFERERS, self.cfg.n_cells - 1)
        strong[:, :k] = order[:, :k]
        return LargeScale(
            cell=self.cell.copy(),
            signal_mw=signal,
            strong_interf_mw=strong,
            background_interf_mw=order[:, k:].sum(axis=1),
            noise_mw=self.noise_mw,
        )


# an image whose squared distance exceeds the nearest one's by more than this cannot be
# the nearest after rounding (hypot is within an ulp, 2.2e-16, of the true distance)
_NEAR_TIE = 1e-12


@kernel
def _nearest_image_distances(
    pos: np.ndarray, sites: np.ndarray, images: np.ndarray, min_d: float, out: np.ndarray
) -> None:
    """out[u, j] = max(min over images of hypot(pos_u − site_j − image), min_d): the same
    value as taking ``np.hypot`` of every image, with hypot evaluated only for the images
    within rounding of the nearest (compared by squared distance first)."""
    for u in range(pos.shape[0]):
        for j in range(sites.shape[0]):
            rx = pos[u, 0] - sites[j, 0]
            ry = pos[u, 1] - sites[j, 1]
            nearest_sq = np.inf
            for i in range(images.shape[0]):
                dx = rx - images[i, 0]
                dy = ry - images[i, 1]
                nearest_sq = min(nearest_sq, dx * dx + dy * dy)
            best = np.inf
            for i in range(images.shape[0]):
                dx = rx - images[i, 0]
                dy = ry - images[i, 1]
                if dx * dx + dy * dy <= nearest_sq * (1.0 + _NEAR_TIE):
                    best = min(best, math.hypot(dx, dy))
            out[u, j] = max(best, min_d)
