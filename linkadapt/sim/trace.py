"""Drive-test traces: replay a per-second log as each UE's large-scale SINR trajectory.

Expected CSV: one row per second (G-NetTrack-like exports), with a SINR (or SNR)
column in dB and optionally speed (km/h). Column names are configurable through
``ScenarioConfig.trace_columns`` (keys: ``time``, ``sinr``, ``speed``); by default the
first existing of ``Timestamp``/``time``, ``SNR``/``SINR``/``sinr_db``/``snr_db`` and
``Speed``/``speed_kmh`` are used. Without a time column rows are one second apart.
Rows whose SINR is not a finite number (``-``, ``n/a``, empty: gaps in drive tests) are
skipped; a file with fewer than two usable rows is a ValueError saying so.

``ran-distill sim --trace`` and ``ran-distill evaluate --trace`` replay a trace through
:func:`with_trace`: the scenario (and its name, which e.g. picks ``olla-tuned``'s entry)
stays, its large-scale SINR and speed come from the trace.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_COLUMNS = {
    "time": ("time_s", "time", "Timestamp"),
    "sinr": ("SINR", "SNR", "sinr_db", "snr_db", "sinr", "snr"),
    "speed": ("Speed", "speed_kmh", "speed"),
}


@dataclass(frozen=True)
class Trace:
    """A large-scale trajectory: ``time_s`` (increasing), ``sinr_db`` and ``speed_kmh``."""

    time_s: np.ndarray
    sinr_db: np.ndarray
    speed_kmh: np.ndarray

    @property
    def duration_s(self) -> float:
        return float(self.time_s[-1] - self.time_s[0])

    def at(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(SINR dB, speed km/h) at times ``t_s`` (wrapping around the trace end)."""
        span = max(self.duration_s, 1.0)
        t = self.time_s[0] + np.mod(t_s, span)
        return np.interp(t, self.time_s, self.sinr_db), np.interp(t, self.time_s, self.speed_kmh)


def load_trace(path: str | Path, columns: dict[str, str] | None = None) -> Trace:
    """Read a drive-test CSV into a :class:`Trace`; ValueError naming a missing column."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"trace {path}: no rows")
    header = rows[0].keys()
    chosen = {
        k: (columns or {}).get(k) or next((c for c in v if c in header), None)
        for k, v in DEFAULT_COLUMNS.items()
    }
    if chosen["sinr"] is None or chosen["sinr"] not in header:
        raise ValueError(f"trace {path}: no SINR/SNR column (have {', '.join(header)})")
    sinr = _column(rows, chosen["sinr"])
    keep = np.isfinite(sinr)
    time_col, speed_col = chosen["time"], chosen["speed"]
    time = (
        _column(rows, time_col)
        if time_col is not None and time_col in header
        else np.arange(len(rows), dtype=float)
    )
    if not np.all(np.isfinite(time[keep])):
        time = np.arange(len(rows), dtype=float)  # timestamps that are not seconds
    speed = (
        _column(rows, speed_col)
        if speed_col is not None and speed_col in header
        else np.full(len(rows), 3.0)
    )
    speed = np.where(np.isfinite(speed), speed, 3.0)
    if keep.sum() < 2:
        raise ValueError(
            f"trace {path}: {int(keep.sum())} of {len(rows)} rows have a numeric "
            f"{chosen['sinr']!r}; a trace needs at least two"
        )
    return Trace(time_s=time[keep] - time[keep][0], sinr_db=sinr[keep], speed_kmh=speed[keep])


def _column(rows: list[dict[str, str]], name: str) -> np.ndarray:
    out = np.empty(len(rows))
    for i, row in enumerate(rows):
        try:
            out[i] = float(row[name])
        except (TypeError, ValueError):
            out[i] = np.nan
    return out


def with_trace(cfg: Any, path: str | Path) -> Any:
    """Scenario ``cfg`` (a ScenarioConfig) replaying trace ``path``; the file is read here
    once, so a bad trace fails before any simulation with load_trace's ValueError."""
    load_trace(path, cfg.trace_columns)
    return dataclasses.replace(cfg, trace=str(path))
