"""The gNB's measurements and the demo's metric arithmetic, without any process."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ran_distill.gnb import GnbConfig, GnbError
from ran_distill.gnb_stats import CellTally, LatencyHistogram
from ran_distill.kpi_series import PANELS, MetricsSampler, dashboard_queries, histogram_quantile


def test_latency_percentiles_within_one_percent_of_exact() -> None:
    rng = np.random.default_rng(0)
    samples = rng.lognormal(np.log(2e-3), 1.0, 20_000)
    hist = LatencyHistogram()
    for s in samples:
        hist.add(float(s))
    for q in (50, 99, 99.9):
        exact = np.percentile(samples, q, method="inverted_cdf")
        assert hist.percentile(q) == pytest.approx(exact, rel=0.011)
    assert hist.count == samples.size
    assert hist.summary_ms()["mean_ms"] == pytest.approx(1e3 * samples.mean())
    assert hist.summary_ms()["max_ms"] == pytest.approx(1e3 * samples.max())


def test_latency_histogram_edges() -> None:
    hist = LatencyHistogram()
    assert math.isnan(hist.percentile(50))
    hist.add(0.0)  # below the first bin
    hist.add(1e4)  # beyond the last bin: clamped, max kept
    assert hist.percentile(0) == pytest.approx(1e-6)
    assert hist.percentile(100) <= 1e4
    with pytest.raises(ValueError, match="percentile"):
        hist.percentile(101)


def test_cell_tally_uses_the_xapps_window_formula() -> None:
    tally = CellTally(n_cells=2, n_ues=4)
    tally.add(1, 10, np.array([0, 1]), np.array([1000, 0]), np.array([1, -1]))
    tally.add(1, 11, np.array([0, 1, 3]), np.array([0, 500, 0]), np.array([0, 1, -1]))
    (cell,) = tally.per_cell(slot_seconds=5e-4)  # cell 0 never reported
    assert cell["cell"] == 1 and cell["slots"] == 2 and cell["ues"] == 3
    assert cell["ue_throughput_mbps"] == pytest.approx(1500 / (2 * 5e-4) / 3 / 1e6)
    assert cell["first_tx_bler"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"target": "localhost"}, "HOST:PORT"),
        ({"target": "h:1", "ues": 0}, "ues"),
        ({"target": "h:1", "slots": 0}, "slots"),
        ({"target": "h:1", "realtime": -1.0}, "realtime"),
        ({"target": "h:1", "deadline_ms": 0.0}, "deadline_ms"),
    ],
)
def test_bad_configuration_is_named(kwargs: dict, field: str) -> None:
    with pytest.raises(GnbError, match=field):
        GnbConfig(**kwargs)


def test_histogram_quantile_matches_prometheus() -> None:
    bounds = np.array([0.1, 0.2, 0.5])
    # cumulative counts per bucket, then +Inf: 10 in (0, .1], 30 in (.1, .2], 0, 10 above
    cumulative = np.array([10.0, 40.0, 40.0, 50.0])
    assert histogram_quantile(0.1, bounds, cumulative) == pytest.approx(0.05)
    assert histogram_quantile(0.5, bounds, cumulative) == pytest.approx(0.1 + 0.1 * 15 / 30)
    assert histogram_quantile(0.99, bounds, cumulative) == pytest.approx(0.5)  # +Inf bucket
    assert math.isnan(histogram_quantile(0.5, bounds, np.zeros(4)))


def test_dashboard_queries_are_the_dashboards_with_variables_filled() -> None:
    queries = dashboard_queries()
    assert set(queries) == set(PANELS)
    for expr in queries.values():
        assert "$" not in expr, expr
    assert queries["throughput"].startswith("8 * ran_distill_cell_ue_throughput_bytes_per_second")
    assert 'job=~"ran-distill"' in queries["latency_p99"]


def test_sampler_computes_reference_and_latency_quantiles() -> None:
    sampler = MetricsSampler("http://127.0.0.1:1/metrics")

    def snap(decided: float, buckets: dict[float, float]) -> dict:
        return {
            "gauges": {
                ("throughput", "3"): 1.5e6,  # bytes/s
                ("throughput_dev", "3"): 0.2,
                ("bler", "3"): 0.12,
                ("bler_dev", "3"): 0.02,
            },
            "buckets": {"total": buckets},
            "decisions": {"model": decided},
        }

    sampler.samples.append((100.0, snap(0.0, {1e-3: 0.0, 1e-2: 0.0, math.inf: 0.0})))
    sampler.samples.append((104.0, snap(400.0, {1e-3: 50.0, 1e-2: 100.0, math.inf: 100.0})))
    # 8 s: the 100 s sample is outside the 5 s rate window, the 104 s one is its start
    sampler.samples.append((108.0, snap(1200.0, {1e-3: 50.0, 1e-2: 200.0, math.inf: 200.0})))
    series = sampler.series(t0=100.0)
    (tput,) = series["throughput"]
    assert tput.label == "cell 3" and tput.v[-1] == pytest.approx(12.0)  # Mbit/s
    assert series["throughput_ref"][0].v[-1] == pytest.approx(12.0 / 1.2)
    assert series["bler_ref"][0].v[-1] == pytest.approx(0.10)
    assert series["throughput_dev"][0].v[-1] == pytest.approx(20.0)
    (p50,) = series["latency_p50"]
    assert p50.t.tolist() == [4.0, 8.0]
    assert p50.v == pytest.approx([1.0, 1.0 + 9.0 * 50 / 100])  # ms
    assert series["latency_p99"][0].v[0] == pytest.approx(1e3 * (1e-3 + 9e-3 * 49 / 50))
    assert series["decisions"][0].v == pytest.approx([100.0, 200.0])
