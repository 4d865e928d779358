"""Fit the BLER abstraction's parameters to Sionna's PDSCH BLER tables.

The reference (``shared/reference/sionna-bler``, Apache-2.0, NVIDIA) gives Monte-Carlo
AWGN code-block BLER per MCS for code-block sizes K ∈ {24, 100, 500, 1000, 2000} on a
~1.6 dB SNR grid. From it we fit, per MCS table:

1. ``snr10[mcs, K]``: the SNR of 10 % BLER, by interpolating log10(BLER) between the
   two grid points that bracket 10 %.
2. ``gap_db(SE) = a + b·SE``: snr10 at K = 2000 minus the Shannon SNR 10·log10(2^SE − 1),
   fitted by least squares over the MCS of the table. A line, not per-MCS values: the
   coarse grid makes per-MCS gaps noisy (±0.5 dB), which would break the monotonicity
   of the thresholds across MCS; MCS missing from the reference come for free.
3. ``penalty_db_per_decade``: least-squares slope of snr10(K) − snr10(2000) against
   log10(2000 / K) over all MCS: short blocks need more SNR.
4. ``width_db_sqrt_bits``: the waterfall's probit width σ(K) = w / √K (dB), from every
   pair of adjacent grid points with 1 % < BLER < 99 %.

Run ``ran-distill calibrate-bler --reference DIR`` to regenerate
``linkadapt/data/bler_params.json`` and the plot in ``docs/img/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.special import ndtri

from linkadapt import nr

REFERENCE_K = 2000


def shannon_snr_db(se: np.ndarray) -> np.ndarray:
    """SNR (dB) at which AWGN capacity equals ``se`` bit/s/Hz: 10·log10(2^SE − 1)."""
    return 10.0 * np.log10(np.power(2.0, se) - 1.0)


def _load_reference(reference_dir: Path, table: int) -> dict:
    raw = json.loads((reference_dir / f"PDSCH_table{table}.json").read_text())
    return raw["category"]["1"]["index"][str(table)]["MCS"]


def _snr_at_bler(snr: np.ndarray, bler: np.ndarray, target: float = 0.1) -> float | None:
    below = np.flatnonzero(bler < target)
    if below.size == 0 or below[0] == 0:
        return None
    i = below[0]
    lo, hi = np.log10(max(bler[i - 1], 1e-5)), np.log10(max(bler[i], 1e-5))
    return float(snr[i - 1] + (np.log10(target) - lo) * (snr[i] - snr[i - 1]) / (hi - lo))


def fit_table(reference_dir: Path, table: int) -> dict:
    """Fit the parameters of one MCS table; returns a JSON-serializable dict."""
    ref = _load_reference(reference_dir, table)
    se = nr.spectral_efficiency(table)
    gap_se, gap_db, penalty_x, penalty_y, widths = [], [], [], [], []
    for mcs_key, entry in ref.items():
        mcs = int(mcs_key)
        snr = np.asarray(entry["SNR_db"])
        per_k = {int(k): np.asarray(v["BLER"]) for k, v in entry["CBS"].items()}
        snr10 = {k: _snr_at_bler(snr, b) for k, b in per_k.items()}
        at_reference = snr10.get(REFERENCE_K)
        if at_reference is None:
            continue
        gap_se.append(se[mcs])
        gap_db.append(at_reference - float(shannon_snr_db(se[mcs])))
        for k, s in snr10.items():
            if s is not None and k < REFERENCE_K:
                penalty_x.append(np.log10(REFERENCE_K / k))
                penalty_y.append(s - at_reference)
        for k, b in per_k.items():
            z = ndtri(1.0 - np.clip(b, 1e-6, 1 - 1e-6))  # probit of success probability
            ok = (b > 0.01) & (b < 0.99)
            for i in np.flatnonzero(ok[:-1] & ok[1:]):
                sigma = (snr[i + 1] - snr[i]) / (z[i + 1] - z[i])
                widths.append(sigma * np.sqrt(k))
    slope, intercept = np.polyfit(gap_se, gap_db, 1)
    px, py = np.asarray(penalty_x), np.asarray(penalty_y)
    return {
        "gap_db_intercept": round(float(intercept), 3),
        "gap_db_per_se": round(float(slope), 3),
        "gap_fit_rms_db": round(float(np.std(np.polyval([slope, intercept], gap_se) - gap_db)), 3),
        "penalty_db_per_decade": round(float(px @ py / (px @ px)), 3),
        "width_db_sqrt_bits": round(float(np.median(widths)), 3),
    }


def calibrate(reference_dir: Path) -> dict:
    """Fit both MCS tables; the dict written to ``bler_params.json``."""
    return {
        "source": "Sionna PDSCH BLER tables (Apache-2.0, NVIDIA), see NOTICE.md",
        "reference_cb_bits": REFERENCE_K,
        "tables": {str(t): fit_table(reference_dir, t) for t in (1, 2)},
    }


def plot_calibration(reference_dir: Path, out_png: Path, table: int = 2) -> None:
    """Reference BLER points against the fitted curves for a few MCS (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from linkadapt.bler import code_block_bler

    ref = _load_reference(reference_dir, table)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, k in zip(axes, (100, 2000), strict=True):
        for mcs_key in ("2", "9", "15", "21", "26"):
            entry = ref[mcs_key]
            snr = np.asarray(entry["SNR_db"])
            line = ax.semilogy(snr, np.clip(entry["CBS"][str(k)]["BLER"], 1e-4, 1), "o")
            grid = np.linspace(snr[0], snr[-1], 400)
            model = code_block_bler(grid, int(mcs_key), table=table, cb_bits=k)
            ax.semilogy(
                grid,
                np.clip(model, 1e-4, 1),
                "-",
                color=line[0].get_color(),
                label=f"MCS {mcs_key}",
            )
        ax.set(
            title=f"MCS table {table}, K = {k} bits (dots: Sionna, lines: model)",
            xlabel="SNR (dB)",
            ylabel="code-block BLER",
            ylim=(1e-4, 1.5),
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
