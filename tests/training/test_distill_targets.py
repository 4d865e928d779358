"""The distillation targets: the paper's criteria on hand-made student rows."""

from __future__ import annotations

from typing import Any

from training.distill.report.targets import check, smallest_meeting, target_rows


def _row(params: int, *per_scenario: tuple[float, float | None, float | None]) -> dict[str, Any]:
    """A student row: per scenario (throughput %, p5 %, relative BLER %), CI 0."""
    scenarios = {}
    for i, (tput, p5, bler) in enumerate(per_scenario):
        vs: dict[str, Any] = {"throughput_pct": [tput, 0.0], "bler_pp": [0.05, 0.0]}
        if p5 is not None:
            vs["throughput_p5_pct"] = [p5, 0.0]
        if bler is not None:
            vs["bler_pct"] = [bler, 0.0]
        scenarios[f"s{i}"] = {"vs_teacher": vs}
    return {"parameters": params, "scenarios": scenarios}


def test_the_worst_benchmark_decides_and_gains_are_not_misses() -> None:
    c = check(_row(10, (+4.0, +2.0, -3.0), (-0.9, -0.5, 6.9)), 1.0)
    assert c is not None and c.met
    assert (c.throughput_pct, c.p5_pct, c.bler_dev, c.bler_unit) == (-0.9, -0.5, 6.9, "%")
    assert not check(_row(10, (+4.0, +2.0, -3.0), (-1.1, 0.0, 0.0)), 1.0).met
    assert check(_row(10, (-1.1, 0.0, 0.0)), 3.0).met


def test_the_cell_edge_and_bler_count() -> None:
    assert not check(_row(10, (0.0, -1.5, 0.0)), 1.0).met
    assert not check(_row(10, (0.0, 0.0, -7.5)), 1.0).met
    # no relative BLER (the teacher's BLER was 0 on a seed): 0.05 pp is inside 0.1 pp
    no_rel = check(_row(10, (0.0, None, None)), 1.0)
    assert no_rel is not None and no_rel.met and no_rel.bler_unit == "pp"
    assert check({"parameters": 1, "scenarios": {}}, 1.0) is None


def test_each_miss_is_named_with_its_benchmark() -> None:
    c = check(_row(10, (+0.5, -1.5, 2.0), (-2.0, 0.0, -9.0), (0.0, 0.0, 0.0)), 1.0)
    assert c is not None and not c.met
    assert c.misses == ("s0 p5 -1.5 %", "s1 throughput -2.0 %", "s1 BLER -9.0 %")
    assert check(_row(10, (0.0, 0.0, 0.0)), 1.0).misses == ()


def test_the_smallest_meeting_student_and_the_weight_bound() -> None:
    rows = {
        "mlp-1x16": _row(500, (-5.0, 0.0, 0.0)),
        "mlp-2x32": _row(2000, (-0.5, 0.0, 1.0)),
        "mlp-3x32": _row(4000, (0.1, 0.0, 1.0)),
    }
    assert smallest_meeting(rows) == "mlp-2x32"
    assert smallest_meeting({"a": rows["mlp-1x16"]}) is None
    table = {"single": {"mlp-3x32": rows["mlp-3x32"]}, "multi": {"mlp-4x64": _row(40_000)}}
    verdicts = {r[0]: r[2] for r in target_rows({"table": table, "size-sweep": {"rows": rows}})}
    assert verdicts["every student ≤ 1 Mbit of weights"] == "**not met**"  # 40k × 32 bits
    assert verdicts[next(k for k in verdicts if k.startswith("single-policy"))] == "met"
