"""Paired-seed evaluation: confidence intervals, paired gains, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from linkadapt.baselines import OllaPolicy, make_baseline, tuned_olla_table
from linkadapt.sim import Simulator, load_scenario
from linkadapt.sim.evaluation import (
    KPIS,
    REFERENCES,
    EvaluationResult,
    baseline_factory,
    evaluate,
    mean_ci95,
)


def test_mean_ci95_matches_scipy_t_interval():
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    mean, half = mean_ci95(x)
    lo, hi = stats.t.interval(0.95, df=x.size - 1, loc=x.mean(), scale=stats.sem(x))
    assert mean == pytest.approx(6.2)
    assert half == pytest.approx((hi - lo) / 2)
    assert mean - half == pytest.approx(lo) and mean + half == pytest.approx(hi)
    # two samples: t(0.975, 1) = 12.706
    m2, h2 = mean_ci95([0.0, 2.0])
    assert m2 == 1.0 and h2 == pytest.approx(12.7062047 * np.sqrt(2) / np.sqrt(2))


def test_mean_ci95_degenerate():
    assert mean_ci95([3.5]) == (3.5, 0.0)
    m, h = mean_ci95([])
    assert np.isnan(m) and h == 0.0
    assert mean_ci95(iter([2.0, 2.0, 2.0])) == (2.0, 0.0)


def _result(p5=None) -> EvaluationResult:
    r = EvaluationResult("x", [0, 1, 2], 4, 10)
    tput = {"olla": [10.0, 20.0, 40.0], "genie": [12.0, 21.0, 50.0], "new": [11.0, 22.0, 44.0]}
    p5 = p5 or {"olla": [1.0, 2.0, 4.0], "genie": [2.0, 2.0, 6.0], "new": [0.5, 2.0, 4.0]}
    for p, values in tput.items():
        r.per_seed[p] = {
            s: {
                "throughput_mbps": v,
                "cell_throughput_mbps": 7 * v,
                "throughput_p5_mbps": q,
                "zero_ue_share": 0.0,
                "bler": 0.1,
                "residual_bler": 0.0,
                "spectral_efficiency": v / 10,
            }
            for s, v, q in zip(r.seeds, values, p5[p], strict=True)
        }
    return r


def test_paired_gain():
    r = _result()
    mean, half = r.paired_gain_pct("new", "olla")
    assert mean == pytest.approx(10.0) and half == pytest.approx(0.0, abs=1e-9)
    g = r.paired_gain_pct("genie", "olla")
    assert g == pytest.approx(mean_ci95([20.0, 5.0, 25.0]))
    s = r.summary()
    assert s["new"]["throughput_vs_olla_pct"] == pytest.approx((10.0, 0.0), abs=1e-9)
    assert "throughput_vs_olla_pct" not in s["olla"]
    assert "throughput_vs_genie_pct" in s["olla"] and "throughput_vs_genie_pct" not in s["genie"]
    assert s["olla"]["throughput_mbps"] == pytest.approx(mean_ci95([10.0, 20.0, 40.0]))
    j = r.to_json()
    assert j["summary"]["new"]["throughput_mbps"]["mean"] == pytest.approx(77 / 3)
    assert j["per_seed"]["olla"]["2"]["throughput_mbps"] == 40.0


def test_paired_cell_edge_gains():
    s = _result().summary()
    # p5: new vs olla = [-50 %, 0 %, 0 %]; difference [-0.5, 0, 0] Mbit/s
    assert s["new"]["throughput_p5_vs_olla_pct"] == pytest.approx(mean_ci95([-50.0, 0, 0]))
    assert s["new"]["throughput_p5_vs_olla_mbps"] == pytest.approx(mean_ci95([-0.5, 0, 0]))
    assert s["olla"]["throughput_p5_vs_genie_mbps"] == pytest.approx(mean_ci95([-1.0, 0, -2.0]))
    assert set(KPIS) <= set(s["new"])
    assert s["new"]["cell_throughput_mbps"][0] == pytest.approx(7 * 77 / 3)


def test_p5_ratio_guarded_against_a_starved_reference():
    r = _result({"olla": [0.0, 2.0, 4.0], "genie": [2.0, 2.0, 6.0], "new": [0.5, 2.0, 4.0]})
    s = r.summary()
    assert "throughput_p5_vs_olla_pct" not in s["new"]  # olla's p5 is 0 on seed 0
    assert s["new"]["throughput_p5_vs_olla_mbps"] == pytest.approx(mean_ci95([0.5, 0, 0]))
    assert "throughput_p5_vs_genie_pct" in s["new"]
    import json

    json.dumps(r.to_json(), allow_nan=False)  # strict JSON: no NaN anywhere


def test_references_include_tuned_olla():
    assert REFERENCES == ("olla", "olla-tuned", "genie")
    r = _result()
    r.per_seed["olla-tuned"] = r.per_seed.pop("genie")
    s = r.summary()
    assert "throughput_vs_olla-tuned_pct" in s["new"]
    assert "throughput_p5_vs_olla-tuned_mbps" in s["olla"]


def test_evaluate_binds_tuned_olla_to_the_scenario():
    """olla-tuned on scsu behaves as OLLA with scsu's tuned settings, not mimo's."""
    entry = tuned_olla_table()["presets"]["scsu"]
    plain = {
        "tuned": baseline_factory("olla-tuned"),
        "same": lambda n: OllaPolicy(
            n, bler_target=entry["bler_target"], delta_up_db=entry["delta_up_db"]
        ),
    }
    r = evaluate(plain, "scsu", [10_000], n_ues=3, n_slots=80)
    assert r.per_seed["tuned"] == r.per_seed["same"]
    assert baseline_factory("olla-tuned").for_scenario(load_scenario("scsu")).scenario == "scsu"
    assert (
        baseline_factory("olla", scenario="mimo").for_scenario(load_scenario("scsu")).scenario
        == "mimo"
    )  # an explicit scenario wins


def _evaluate(seeds, policies=("olla", "fixed")):
    return evaluate({p: baseline_factory(p) for p in policies}, "scsu", seeds, n_ues=3, n_slots=60)


def test_evaluate_reproducible_and_seed_dependent():
    a, b = _evaluate([0, 1]), _evaluate([0, 1])
    assert a.per_seed == b.per_seed
    for p in ("olla", "fixed"):
        for s in (0, 1):
            assert set(KPIS) <= set(a.per_seed[p][s])
    assert a.per_seed["olla"][0] != a.per_seed["olla"][1]
    assert a.per_seed["olla"][0]["throughput_mbps"] > 0
    assert a.n_ues == 3 and a.n_slots == 60 and a.scenario == "scsu"


def test_evaluate_progress_callback():
    seen = []
    evaluate(
        {"olla": baseline_factory("olla")},
        "scsu",
        [3, 4],
        n_ues=2,
        n_slots=5,
        progress=lambda name, seed: seen.append((name, seed)),
    )
    assert seen == [("olla", 3), ("olla", 4)]


def test_paired_runs_see_the_same_channel():
    """Different policies on the same seed see identical channels (paired samples)."""

    def channel(policy_name):
        sim = Simulator("mimo", 14, seed=5)
        policy = make_baseline(policy_name, 14)
        seen = []
        for _ in range(60):
            b = sim.observe()
            seen.append(b.true_sinr_db.copy())
            sim.step(policy.act(b))
        return np.stack(seen)

    assert np.array_equal(channel("olla"), channel("fixed"))


def test_evaluation_json_serializable():
    import json

    r = evaluate(
        {"olla": baseline_factory("olla"), "genie": baseline_factory("genie")},
        "scsu",
        [0, 1],
        n_ues=2,
        n_slots=20,
    )
    data = json.loads(json.dumps(r.to_json()))
    assert set(data["summary"]) == {"olla", "genie"}
    assert "throughput_vs_genie_pct" in data["summary"]["olla"]
    assert set(data["per_seed"]["olla"]) == {"0", "1"}
    assert len(data["mcs_histograms"]["olla"]["0"]) == 28
    for kpi in ("throughput_p5_mbps", "zero_ue_share", "cell_throughput_mbps"):
        assert kpi in data["summary"]["olla"]
    assert "throughput_p5_vs_genie_mbps" in data["summary"]["olla"]
