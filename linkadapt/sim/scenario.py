"""Scenario presets: typed, documented, loadable from YAML/JSON, reproducible from (scenario, seed).

A :class:`ScenarioConfig` fixes the deployment (cells, bandwidth, power, antennas) and the
*ranges* per-UE quantities are drawn from at each drop (speed, CQI period/delay/noise,
BLER-model offset, HARQ feedback delay). The ``randomized`` preset additionally re-draws
the deployment itself at each drop (:meth:`ScenarioConfig.sample`): that is the domain
randomization the generalist teacher trains on.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ANTENNAS = {"4T4R": 4, "8T8R": 8, "32T32R": 32, "64T64R": 64}
SPEED_OF_LIGHT = 299_792_458.0


@dataclass(frozen=True)
class Randomization:
    """Deployment ranges re-drawn at every drop of the ``randomized`` preset."""

    environment: tuple[str, ...] = ("UMa", "UMi")
    cell_radius_m: tuple[float, float] = (100.0, 600.0)
    n_prb: tuple[int, ...] = (51, 106, 273)
    tx_power_dbm: tuple[float, float] = (40.0, 49.0)
    antenna: tuple[str, ...] = ("4T4R", "8T8R", "32T32R", "64T64R")
    traffic: tuple[str, ...] = ("full_buffer", "full_buffer", "bursty", "mixed")
    interference_load: tuple[float, float] = (0.6, 1.0)
    n_cells: tuple[int, ...] = (1, 7)
    handover_hysteresis_db: tuple[float, float] = (1.0, 5.0)
    handover_ttt_ms: tuple[float, ...] = (0.0, 40.0, 80.0, 160.0)
    # a share of drops is one coverage-limited cell (rural macro, deep edge): edge and
    # outage UEs, where MCS 0 plus retransmissions is the only thing that delivers
    coverage_limited_share: float = 0.15
    coverage_radius_m: tuple[float, float] = (1000.0, 4000.0)
    deep_indoor_share: tuple[float, float] = (0.0, 0.06)
    # a share of drops is a coverage hole (every cell far too weak): all UEs in outage,
    # scheduled like any others, so the learner sees what a UE in outage should get
    outage_share: float = 0.05
    outage_tx_power_dbm: tuple[float, float] = (-60.0, -30.0)


@dataclass(frozen=True)
class ScenarioConfig:
    """One link-adaptation scenario: deployment, radio, procedures, traffic (frozen).

    Each field is documented where it is declared, with its unit. Scalars fix the
    deployment; ranges ``(lo, hi)`` are drawn uniformly per UE at every drop (integer
    ranges inclusive). Path loss, LOS and shadowing follow TR 38.901 §7.4 for the
    ``environment``; numerology, MCS table, DM-RS and symbols define the TBS
    (TS 38.214 §5.1.3); ``randomization`` (the ``randomized`` preset) re-draws the
    deployment per drop (:meth:`sample`). Invalid values raise ValueError naming the field.
    """

    name: str = "mimo"
    environment: str = "UMa"  # TR 38.901 scenario: "UMa" or "UMi" (street canyon)
    n_cells: int = 7  # cells on a hexagonal grid (7 and 19 wrap around; see geometry.py)
    cell_radius_m: float = 250.0  # hexagon circumradius; UEs dropped in disks of it per site
    handover_hysteresis_db: float = 3.0  # A3 offset: a neighbour must be this much stronger
    handover_ttt_ms: float = 40.0  # A3 time-to-trigger before the handover (ms)
    deep_indoor_share: float = 0.0  # share of UEs with an extra deep-indoor loss
    deep_indoor_loss_db: tuple[float, float] = (30.0, 60.0)  # that extra loss (dB), uniform
    carrier_ghz: float = 3.5  # carrier frequency f_c (GHz)
    scs_khz: float = 30.0  # subcarrier spacing (kHz); slot = 1 ms · 15 / scs
    n_prb: int = 273  # PRBs per cell (273 = 100 MHz at 30 kHz)
    tx_power_dbm: float = 46.0  # total gNB transmit power per cell (dBm)
    bs_antenna_gain_dbi: float = 8.0  # element gain of the gNB antenna (dBi)
    antenna: str = "4T4R"  # gNB ports: 4T4R, 8T8R, 32T32R, 64T64R
    ue_rx_antennas: int = 4  # UE receive antennas (caps the rank)
    noise_figure_db: float = 7.0  # UE noise figure (dB)
    evm_sinr_db: float = 30.0  # transmitter/receiver impairment ceiling on SINR (EVM, dB)
    subbands: int = 4  # frequency-selective fading subbands (EESM inputs)
    speed_kmh: tuple[float, float] = (3.0, 30.0)  # UE speed range (km/h)
    interference_load: float = 1.0  # probability a neighbour cell transmits (1 = full load)
    traffic: str = "full_buffer"  # "full_buffer", "bursty" or "mixed" (half bursty)
    packet_bytes: float = 30_000.0  # bursty: mean packet size (bytes, exponential)
    packets_per_slot: float = 0.03  # bursty: Poisson packet arrival rate per slot
    scheduler: str = "pf"  # "rr" round-robin or "pf" proportional-fair, time domain
    ues_per_slot: int = 4  # UEs scheduled per cell per slot (PRBs split equally)
    cqi_period_slots: tuple[int, int] = (5, 20)  # CQI report period range (slots)
    cqi_delay_slots: tuple[int, int] = (2, 6)  # measurement → use delay range (slots)
    cqi_noise_db: float = 1.0  # std of the UE's SINR measurement error (dB)
    harq_processes: int = 16  # HARQ processes per UE (8 or 16)
    harq_delay_slots: tuple[int, int] = (4, 6)  # transmission → ACK/NACK at the gNB
    max_transmissions: int = 4  # first transmission + up to 3 retransmissions
    bler_offset_db: tuple[float, float] = (0.0, 3.0)  # per-UE CQI optimism vs decoder (dB)
    n_symbols: int = 12  # PDSCH symbols per slot
    n_dmrs_re: int = 12  # DM-RS REs per PRB
    mcs_table: int = 2  # 38.214 MCS table (2 = 256QAM)
    randomization: Randomization | None = None  # re-draw the deployment per drop
    trace: str | None = None  # drive-test CSV replayed as large-scale SINR (see trace.py)
    trace_columns: dict[str, str] = field(default_factory=dict)  # trace column renames

    def __post_init__(self) -> None:
        _check(self.environment in ("UMa", "UMi"), "environment", "must be UMa or UMi")
        _check(self.antenna in ANTENNAS, "antenna", f"must be one of {list(ANTENNAS)}")
        _check(
            self.traffic in ("full_buffer", "bursty", "mixed"),
            "traffic",
            "must be full_buffer, bursty or mixed",
        )
        _check(self.scheduler in ("rr", "pf"), "scheduler", "must be rr or pf")
        _check(self.harq_processes in (8, 16), "harq_processes", "must be 8 or 16")
        _check(1 <= self.max_transmissions <= 8, "max_transmissions", "must be 1..8")
        _check(1 <= self.n_prb <= 275, "n_prb", "must be 1..275")
        _check(self.n_cells >= 1 and self.ues_per_slot >= 1, "n_cells", "must be ≥ 1")
        _check(self.cqi_period_slots[0] >= 1, "cqi_period_slots", "must be ≥ 1")
        _check(self.harq_delay_slots[0] >= 1, "harq_delay_slots", "must be ≥ 1")
        _check(self.mcs_table in (1, 2), "mcs_table", "must be 1 or 2")
        _check(self.handover_hysteresis_db >= 0.0, "handover_hysteresis_db", "must be ≥ 0")
        _check(self.handover_ttt_ms >= 0.0, "handover_ttt_ms", "must be ≥ 0")
        _check(0.0 <= self.deep_indoor_share <= 1.0, "deep_indoor_share", "must be in [0, 1]")

    @property
    def slot_seconds(self) -> float:
        """Slot duration (s): 1 ms · 15 kHz / SCS (TS 38.211 §4.3.2, normal CP)."""
        return 1e-3 * 15.0 / self.scs_khz

    @property
    def n_tx(self) -> int:
        """gNB transmit ports of ``antenna`` (4, 8, 32 or 64)."""
        return ANTENNAS[self.antenna]

    @property
    def max_rank(self) -> int:
        """Largest rank a UE may report: min(gNB ports, UE receive antennas, 8)."""
        return int(min(self.n_tx, self.ue_rx_antennas, 8))

    def sample(self, rng: np.random.Generator) -> ScenarioConfig:
        """The deployment of one drop: itself, or a random draw for ``randomized``."""
        r = self.randomization
        if r is None:
            return self
        traffic = str(rng.choice(r.traffic))
        drop = dataclasses.replace(
            self,
            randomization=None,
            environment=str(rng.choice(r.environment)),
            cell_radius_m=float(rng.uniform(*r.cell_radius_m)),
            n_prb=int(rng.choice(r.n_prb)),
            tx_power_dbm=float(rng.uniform(*r.tx_power_dbm)),
            antenna=str(rng.choice(r.antenna)),
            traffic=traffic,
            interference_load=float(rng.uniform(*r.interference_load)),
            n_cells=int(rng.choice(r.n_cells)),
            handover_hysteresis_db=float(rng.uniform(*r.handover_hysteresis_db)),
            handover_ttt_ms=float(rng.choice(r.handover_ttt_ms)),
            deep_indoor_share=float(rng.uniform(*r.deep_indoor_share)),
        )
        if rng.random() < r.coverage_limited_share:
            drop = dataclasses.replace(
                drop, n_cells=1, cell_radius_m=float(rng.uniform(*r.coverage_radius_m))
            )
        if rng.random() < r.outage_share:
            drop = dataclasses.replace(
                drop, tx_power_dbm=float(rng.uniform(*r.outage_tx_power_dbm))
            )
        return drop

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain Python values (nested ``randomization`` as a dict)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScenarioConfig:
        """Build from a plain dict (YAML/JSON); unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown scenario field(s): {', '.join(unknown)}")
        values = dict(data)
        for f in dataclasses.fields(cls):
            if f.name in values and isinstance(values[f.name], list):
                values[f.name] = tuple(values[f.name])
        if isinstance(values.get("randomization"), dict):
            rnd: dict[str, Any] = {
                k: tuple(v) if isinstance(v, list) else v
                for k, v in values["randomization"].items()
            }
            values["randomization"] = Randomization(**rnd)
        return cls(**values)


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ValueError(f"scenario field {name}: {message}")


PRESETS: dict[str, ScenarioConfig] = {
    "mimo": ScenarioConfig(name="mimo"),
    "mmimo": ScenarioConfig(name="mmimo", antenna="64T64R", cell_radius_m=350.0, tx_power_dbm=49.0),
    "scsu": ScenarioConfig(
        name="scsu",
        n_cells=1,
        ues_per_slot=1,
        cell_radius_m=300.0,
        speed_kmh=(3.0, 3.0),
        interference_load=0.0,
    ),
    "high-mobility": ScenarioConfig(
        name="high-mobility", speed_kmh=(120.0, 150.0), cell_radius_m=400.0
    ),
    "bursty": ScenarioConfig(
        name="bursty",
        traffic="mixed",
        environment="UMi",
        cell_radius_m=150.0,
        speed_kmh=(3.0, 60.0),
    ),
    "randomized": ScenarioConfig(
        name="randomized",
        randomization=Randomization(),
        speed_kmh=(0.0, 150.0),
        cqi_period_slots=(4, 40),
        cqi_delay_slots=(1, 10),
        cqi_noise_db=1.5,
        harq_delay_slots=(3, 8),
        bler_offset_db=(-1.0, 4.0),
    ),
}


def load_scenario(name_or_path: str | ScenarioConfig) -> ScenarioConfig:
    """The scenario a name, a file or a config stands for.

    Input
    -----
    name_or_path : str | ScenarioConfig
        A preset name (:data:`PRESETS`: ``mimo``, ``mmimo``, ``scsu``, ``high-mobility``,
        ``bursty``, ``randomized``); or a .json/.yaml/.yml file whose keys override a base
        preset (key ``base``, default ``mimo``); or a config, returned as is.

    Output
    ------
    cfg : ScenarioConfig
        ValueError for an unknown name that is not a file, or an unknown or invalid field.
    """
    if isinstance(name_or_path, ScenarioConfig):
        return name_or_path
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]
    path = Path(name_or_path)
    if not path.exists():
        raise ValueError(
            f"unknown scenario {name_or_path!r}: not a preset ({', '.join(PRESETS)}) nor a file"
        )
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(path.read_text())
    else:
        data = json.loads(path.read_text())
    base = PRESETS.get(data.pop("base", "mimo"), PRESETS["mimo"]).to_dict()
    base.update(data)
    return ScenarioConfig.from_dict(base)
