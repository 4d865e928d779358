"""A real Prometheus scraping the xApp while the simulated gNB runs: the throughput, BLER,
deviation and latency series exist in Prometheus and agree with what the gNB measured.

The xApp's KPI window is set to the run's length, so each cell publishes exactly one
window covering the whole run, and the gNB can compute the same numbers from what it
reported. Tolerances:

- counters (delivered bytes, first transmissions, NACKs, decisions, latency count) and
  the per-cell gauges (UE throughput, BLER, both deviations): equal up to float rounding
  (relative 1e-6), since both sides sum the same outcome reports;
- the simulator's own first-tx BLER (counted when a block is sent, not when its feedback
  lands): within 0.01 absolute, the blocks still in flight at the end;
- latency: the xApp's server-side time is part of the gNB's round trip, so its mean is
  below the gNB's; its quantiles come from buckets up to 2.5x wide, so Prometheus' p50 /
  p99 stay below 2.5x the gNB's.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ran_distill.gnb import GnbConfig, GnbResult, run_gnb
from ran_distill.kpi_series import from_prometheus
from ran_distill.prometheus import prometheus_binary, prometheus_server, query, scalar, wait_for
from ran_distill.xapp_process import xapp_process

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "default"
SLOTS, UES, SCENARIO = 400, 42, "mimo"
BUCKET_FACTOR = 2.5  # widest ratio between neighbouring latency buckets (service/metrics.py)

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        prometheus_binary() is None, reason="prometheus not installed (make system-deps)"
    ),
]


@pytest.fixture(scope="module")
def run() -> Iterator[tuple[str, GnbResult, float]]:
    env = {"RAN_DISTILL_KPI_WINDOW_SLOTS": str(SLOTS), "RAN_DISTILL_REFERENCE_SCENARIO": SCENARIO}
    with (
        xapp_process(MODEL, env=env) as (_, grpc_port, http_port),
        prometheus_server([f"127.0.0.1:{http_port}"]) as base,
    ):
        wait_for(base, 'up{job="ran-distill"}', lambda v: v == 1.0, timeout=30)
        t0 = time.time()
        config = GnbConfig(
            target=f"127.0.0.1:{grpc_port}",
            scenario=SCENARIO,
            ues=UES,
            slots=SLOTS,
            seed=10000,
            model=MODEL,
            deadline_ms=60_000,  # every answer used: the counters below are exact
        )
        result = run_gnb(config)
        first_tx = result.reported["first_tx"]
        wait_for(
            base,
            "sum(ran_distill_cell_first_transmissions_total)",
            lambda v: v >= first_tx,
            timeout=30,
        )
        yield base, result, t0


def test_counters_equal_what_the_gnb_reported(run: tuple[str, GnbResult, float]) -> None:
    base, result, _ = run
    rep, s = result.reported, result.stats
    assert s.outcomes_failed == s.outcomes_dropped == 0 and s.fallback_slots == 0
    delivered = scalar(base, "8 * sum(ran_distill_cell_delivered_bytes_total)")
    assert delivered == pytest.approx(rep["delivered_bits"], rel=1e-6)
    first = scalar(base, "sum(ran_distill_cell_first_transmissions_total)")
    nacks = scalar(base, "sum(ran_distill_cell_first_transmission_nacks_total)")
    assert (first, nacks) == (rep["first_tx"], rep["first_tx_nacks"])
    assert nacks / first == pytest.approx(result.kpis["bler"], abs=0.01)
    decided = scalar(base, "sum(ran_distill_decisions_total)")
    assert decided == UES * SLOTS  # every UE's report, every slot
    # the simulator's delivered bits over the run, as the mean UE throughput says
    sim_bits = result.kpis["throughput_mbps"] * 1e6 * UES * SLOTS * 5e-4
    assert rep["delivered_bits"] == pytest.approx(sim_bits, rel=1e-6)


def by_cell(base: str, expr: str) -> dict[str, float]:
    return {r["metric"]["cell"]: float(r["value"][1]) for r in query(base, expr)}


def test_throughput_and_bler_series_per_cell(run: tuple[str, GnbResult, float]) -> None:
    base, result, _ = run
    manifest = json.loads((MODEL / "manifest.json").read_text())
    ref = manifest["reference_kpis"][SCENARIO]
    live = by_cell(base, "8 * ran_distill_cell_ue_throughput_bytes_per_second")
    bler = by_cell(base, "ran_distill_cell_first_tx_bler_ratio")
    selector = f'{{scenario="{SCENARIO}"}}'
    tput_dev = by_cell(base, "ran_distill_cell_throughput_deviation_ratio" + selector)
    bler_dev = by_cell(base, "ran_distill_cell_first_tx_bler_deviation_ratio" + selector)
    full_run = [c for c in result.per_cell if c["slots"] == SLOTS]  # one whole window
    assert len(full_run) >= 5
    for c in full_run:
        cell = str(int(c["cell"]))
        gnb_bps = c["ue_throughput_mbps"] * 1e6
        assert live[cell] == pytest.approx(gnb_bps, rel=1e-6)
        assert tput_dev[cell] == pytest.approx(gnb_bps / 1e6 / ref["throughput_mbps"] - 1, rel=1e-6)
        assert bler[cell] == pytest.approx(c["first_tx_bler"], rel=1e-6)
        assert bler_dev[cell] == pytest.approx(c["first_tx_bler"] - ref["bler"], abs=1e-9)


def test_latency_series_agree_with_the_gnbs_round_trip(run: tuple[str, GnbResult, float]) -> None:
    base, result, _ = run
    lat = result.stats.latency
    count = scalar(base, 'ran_distill_stage_latency_seconds_count{stage="total"}')
    assert count == lat.count == result.stats.cell_slots  # one per DecideStream message
    server_mean = scalar(
        base,
        'ran_distill_stage_latency_seconds_sum{stage="total"}'
        ' / ran_distill_stage_latency_seconds_count{stage="total"}',
    )
    assert server_mean is not None and 0 < server_mean < lat.total_s / lat.count
    for q, ours in ((0.5, lat.percentile(50)), (0.99, lat.percentile(99))):
        expr = (
            f"histogram_quantile({q}, sum by (le) (increase("
            'ran_distill_stage_latency_seconds_bucket{stage="total"}[10m])))'
        )
        theirs = scalar(base, expr)
        assert theirs is not None and 0 < theirs <= BUCKET_FACTOR * ours * 1.01, (q, theirs, ours)


def test_the_demos_dashboard_queries_return_series(run: tuple[str, GnbResult, float]) -> None:
    base, result, t0 = run
    series = from_prometheus(base, t0 - 1, time.time())
    n_cells = len([c for c in result.per_cell if c["slots"] == SLOTS])
    for key in ("throughput", "throughput_ref", "bler", "bler_ref", "throughput_dev", "bler_dev"):
        cells = {s.label for s in series[key] if any(not math.isnan(v) for v in s.v)}
        assert len(cells) >= n_cells, key
    for key in ("latency_p50", "latency_p99"):
        assert "total" in {s.label for s in series[key]}, key
    assert "model" in {s.label for s in series["decisions"]}
