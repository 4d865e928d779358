"""The simulated gNB's configuration and result (:mod:`ran_distill.gnb` runs it)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ran_distill.gnb_stats import GnbStats


class GnbError(RuntimeError):
    """The run cannot start or continue (bad configuration, xApp unreachable at start)."""


@dataclass(frozen=True)
class GnbConfig:
    """One simulated gNB run (the ``ran-distill gnb`` options)."""

    target: str
    scenario: str = "mimo"
    trace: Path | None = None
    ues: int = 210
    slots: int = 2000
    seed: int = 0
    realtime: float = 0.0
    """Speed against real time: 1 paces slots at their duration, 0 = as fast as answered."""
    deadline_ms: float = 20.0
    """Per slot: answers later than this after the slot's requests went out are not used."""
    model: Path | None = None
    """The model the xApp should serve (``model.onnx``): checks every xApp decision against
    it in-process (skew) when the xApp reports the same ONNX digest."""
    cell_offset: int = 0
    """Added to the simulator's cell ids on the wire (several gNBs on one xApp)."""
    connect_timeout_s: float = 15.0
    max_in_flight: int = 16
    olla_bler_target: float = 0.1
    olla_delta_up_db: float = 1.0
    tls: bool = False
    """Speak TLS to the xApp (implied by any of the files below; else plaintext)."""
    tls_ca_file: Path | None = None
    """CA the xApp's certificate is verified against (``None``: the system roots)."""
    tls_cert_file: Path | None = None
    """Client certificate (mutual TLS: the gNB's identity for per-cell authorization)."""
    tls_key_file: Path | None = None
    """The client certificate's private key."""

    @property
    def uses_tls(self) -> bool:
        return self.tls or any(
            f is not None for f in (self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        )

    def __post_init__(self) -> None:
        host, sep, port = self.target.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise GnbError(f"target {self.target!r}: expected HOST:PORT")
        checks = (
            (self.ues >= 1, "ues", "must be >= 1"),
            (self.slots >= 1, "slots", "must be >= 1"),
            (self.realtime >= 0, "realtime", "must be >= 0 (0 = as fast as answered)"),
            (self.deadline_ms > 0, "deadline_ms", "must be > 0"),
            (self.cell_offset >= 0, "cell_offset", "must be >= 0"),
            (self.max_in_flight >= 1, "max_in_flight", "must be >= 1"),
            (
                (self.tls_cert_file is None) == (self.tls_key_file is None),
                "tls_cert_file",
                "tls_cert_file and tls_key_file go together (a client certificate)",
            ),
        )
        for ok, name, message in checks:
            if not ok:
                raise GnbError(f"{name}: {message}")


@dataclass
class GnbResult:
    """What one run measured; :meth:`as_dict` is the ``--json`` output."""

    config: GnbConfig
    scenario: str
    slots: int
    wall_s: float
    kpis: dict[str, float]
    """The simulator's KPIs of the run (mean / p5 UE throughput, BLERs, ...)."""
    reported: dict[str, float]
    """Totals of the outcome reports sent to the xApp."""
    per_cell: list[dict[str, float]]
    stats: GnbStats
    xapp_model_version: str
    skew_checked: bool
    comparison: dict[str, dict[str, float]] = field(default_factory=dict)
    """Same scenario, seed, UEs and slots in-process: the model, olla, olla-tuned, genie."""

    def as_dict(self) -> dict[str, Any]:
        cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.config).items()}
        return {
            "config": cfg,
            "scenario": self.scenario,
            "slots": self.slots,
            "wall_s": self.wall_s,
            "slots_per_s": self.slots / self.wall_s if self.wall_s > 0 else 0.0,
            "kpis": self.kpis,
            "reported": self.reported,
            "per_cell": self.per_cell,
            "stats": self.stats.as_dict(),
            "xapp_model_version": self.xapp_model_version,
            "skew_checked": self.skew_checked,
            "comparison": self.comparison,
        }


def gnb_scenario(config: GnbConfig) -> Any:
    """The run's :class:`~linkadapt.sim.ScenarioConfig` (preset or file, plus the trace)."""
    from linkadapt.sim import load_scenario
    from linkadapt.sim.trace import with_trace

    try:
        scenario = load_scenario(config.scenario)
        return scenario if config.trace is None else with_trace(scenario, config.trace)
    except (ValueError, OSError) as exc:
        raise GnbError(str(exc)) from exc


def onnx_digest(model: Path) -> str:
    """sha256 of ``model.onnx`` (a directory or the file): the xApp's version suffix."""
    path = model / "model.onnx" if model.is_dir() else model
    return hashlib.sha256(path.read_bytes()).hexdigest()
