"""The live-KPI time series the demo plots, from Prometheus or from the xApp's ``/metrics``.

The queries are the Grafana dashboard's (``dashboards/ran-distill.json``), picked by panel
title and refId, with the dashboard variables filled in as Grafana would for this one
xApp (:data:`SUBSTITUTIONS`). :func:`from_prometheus` runs them through
``/api/v1/query_range``; :class:`MetricsSampler` (``--no-prometheus``) scrapes the xApp
itself and computes the same quantities (gauges as read, histogram quantiles over a
:data:`RATE_WINDOW_S` window the way ``histogram_quantile(rate(...))`` does).

A series is ``(label, t, v)``: seconds since ``t0`` and values in the plot's units.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ran_distill.prometheus import JOB, query_range

DASHBOARD = Path(__file__).resolve().parents[1] / "dashboards" / "ran-distill.json"
RATE_WINDOW_S = 5.0  # Grafana's $__rate_interval for a 1 s scrape: 4 scrapes + 1
SUBSTITUTIONS = {
    "$__rate_interval": f"{RATE_WINDOW_S:g}s",
    "$job": JOB,
    "$namespace": ".*",
    "$cell": ".*",
}
# plot key -> (dashboard panel title, refId, scale to plot units)
PANELS: dict[str, tuple[str, str, float]] = {
    "throughput": ("Mean per-UE throughput per cell vs reference", "A", 1e-6),
    "throughput_ref": ("Mean per-UE throughput per cell vs reference", "B", 1e-6),
    "bler": ("First-transmission BLER per cell vs reference", "A", 1.0),
    "bler_ref": ("First-transmission BLER per cell vs reference", "B", 1.0),
    "throughput_dev": ("Throughput deviation from reference", "A", 100.0),
    "bler_dev": ("First-tx BLER deviation from reference", "A", 100.0),
    "latency_p50": ("Latency percentiles per stage", "A", 1e3),
    "latency_p99": ("Latency percentiles per stage", "B", 1e3),
    "decisions": ("Decisions by source", "A", 1.0),
}


@dataclass(frozen=True)
class Series:
    label: str
    t: np.ndarray
    v: np.ndarray


KpiSeries = dict[str, list[Series]]


def dashboard_queries(path: Path = DASHBOARD) -> dict[str, str]:
    """The PromQL of :data:`PANELS`, variables substituted."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the Grafana dashboard the demo's queries come from")
    exprs = {
        (p["title"], t["refId"]): t["expr"]
        for p in json.loads(path.read_text())["panels"]
        for t in p.get("targets", [])
    }
    out = {}
    for key, (title, ref, _) in PANELS.items():
        expr = exprs[(title, ref)]
        for var, value in SUBSTITUTIONS.items():
            expr = expr.replace(var, value)
        out[key] = expr
    return out


def _label(key: str, metric: dict[str, str]) -> str:
    if "cell" in metric:
        return f"cell {metric['cell']}"
    if key.startswith("latency"):
        return metric.get("stage", "")
    return metric.get("source", "")


def from_prometheus(base: str, t0: float, t1: float, step_s: float = 1.0) -> KpiSeries:
    """Every :data:`PANELS` series between unix times ``t0`` and ``t1`` (``query_range``).

    The steps end exactly at ``t1`` (Prometheus evaluates at start + k·step), so the last
    point is the newest scrape, whatever the phase of ``t0``."""
    start = t1 - math.ceil((t1 - t0) / step_s) * step_s
    out: KpiSeries = {}
    for key, expr in dashboard_queries().items():
        scale = PANELS[key][2]
        series = []
        for r in query_range(base, expr, start, t1, step_s):
            values = np.array(r["values"], dtype=np.float64).reshape(-1, 2)
            series.append(Series(_label(key, r["metric"]), values[:, 0] - t0, scale * values[:, 1]))
        out[key] = sorted(series, key=lambda s: s.label)
    return out


def histogram_quantile(q: float, bounds: np.ndarray, cumulative: np.ndarray) -> float:
    """Prometheus' ``histogram_quantile``: linear interpolation within the bucket holding
    rank ``q * total``; ``bounds`` are the finite ``le`` values (ascending), ``cumulative``
    the counts of those buckets and then ``+Inf``."""
    total = float(cumulative[-1])
    if total <= 0:
        return math.nan
    rank = q * total
    b = int(np.searchsorted(cumulative, rank, side="left"))
    if b >= len(bounds):  # in the +Inf bucket: Prometheus returns the highest finite bound
        return float(bounds[-1])
    lower = float(bounds[b - 1]) if b > 0 else 0.0
    below = float(cumulative[b - 1]) if b > 0 else 0.0
    inside = float(cumulative[b]) - below
    return lower + (float(bounds[b]) - lower) * ((rank - below) / inside if inside else 1.0)


class MetricsSampler:
    """Samples the xApp's ``/metrics`` every ``interval_s`` in a thread (``--no-prometheus``).

    Keeps at most ``max_samples`` scrapes (a ring), each reduced to the numbers the plot
    needs, so memory stays bounded however long it runs.
    """

    def __init__(self, url: str, interval_s: float = 1.0, max_samples: int = 3600) -> None:
        self.url = url
        self.interval_s = interval_s
        self.samples: deque[tuple[float, dict[str, Any]]] = deque(maxlen=max_samples)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="metrics-sampler", daemon=True)

    def __enter__(self) -> MetricsSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.sample()  # the final state, after the run

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        try:
            with urllib.request.urlopen(self.url, timeout=5) as resp:
                text = resp.read().decode()
        except OSError:
            return  # the xApp is away: a gap in the plot
        snap: dict[str, Any] = {"gauges": {}, "buckets": {}, "decisions": {}}
        wanted = {
            "ran_distill_cell_ue_throughput_bytes_per_second": "throughput",
            "ran_distill_cell_first_tx_bler_ratio": "bler",
            "ran_distill_cell_throughput_deviation_ratio": "throughput_dev",
            "ran_distill_cell_first_tx_bler_deviation_ratio": "bler_dev",
        }
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name in wanted:
                    snap["gauges"][(wanted[s.name], s.labels["cell"])] = s.value
                elif s.name == "ran_distill_stage_latency_seconds_bucket":
                    le = math.inf if s.labels["le"] == "+Inf" else float(s.labels["le"])
                    snap["buckets"].setdefault(s.labels["stage"], {})[le] = s.value
                elif s.name == "ran_distill_decisions_total":
                    snap["decisions"][s.labels["source"]] = s.value
        self.samples.append((time.time(), snap))

    def series(self, t0: float) -> KpiSeries:
        """The :data:`PANELS` series from the samples (times relative to ``t0``)."""
        out: dict[str, dict[str, list[tuple[float, float]]]] = {k: {} for k in PANELS}
        samples = list(self.samples)
        for i, (t, snap) in enumerate(samples):
            g = snap["gauges"]
            for (kind, cell), value in g.items():
                scale = PANELS[kind][2] * (8.0 if kind == "throughput" else 1.0)
                out[kind].setdefault(f"cell {cell}", []).append((t - t0, scale * value))
                dev = g.get(("throughput_dev" if kind == "throughput" else "bler_dev", cell))
                if kind in ("throughput", "bler") and dev is not None:
                    ref = 8 * value / (1 + dev) if kind == "throughput" else value - dev
                    ref_key = f"{kind}_ref"
                    ref_scale = PANELS[ref_key][2]
                    out[ref_key].setdefault(f"cell {cell}", []).append((t - t0, ref_scale * ref))
            past = _sample_before(samples, i, t - RATE_WINDOW_S - 1e-9)
            if past is None:
                continue
            dt = t - past[0]
            for source, value in snap["decisions"].items():
                before = past[1]["decisions"].get(source, 0.0)
                out["decisions"].setdefault(source, []).append((t - t0, (value - before) / dt))
            for stage, buckets in snap["buckets"].items():
                old = past[1]["buckets"].get(stage, {})
                les = sorted(buckets)
                inc = np.array([buckets[le] - old.get(le, 0.0) for le in les])
                bounds = np.array(les[:-1])
                for key, q in (("latency_p50", 0.5), ("latency_p99", 0.99)):
                    v = histogram_quantile(q, bounds, inc)
                    if not math.isnan(v):
                        out[key].setdefault(stage, []).append((t - t0, 1e3 * v))
        return {
            key: [
                Series(label, np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
                for label, pts in sorted(by_label.items())
            ]
            for key, by_label in out.items()
        }


def _sample_before(
    samples: list[tuple[float, dict[str, Any]]], i: int, t: float
) -> tuple[float, dict[str, Any]] | None:
    """The earliest sample before index ``i`` taken at or after ``t``: like ``rate()``, the
    window's first sample inside it (None when sample ``i`` is the window's only one)."""
    for j in range(i):
        if samples[j][0] >= t:
            return samples[j]
    return None
