"""The ``ran-distill sim`` command."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from ran_distill.cli import app

runner = CliRunner()


def test_sim_json_compares_policies():
    result = runner.invoke(
        app,
        [
            "sim",
            "--scenario",
            "scsu",
            "--policy",
            "olla",
            "--policy",
            "genie",
            "--ues",
            "4",
            "--slots",
            "200",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["scenario"] == "scsu" and data["ues"] == 4 and data["slots"] == 200
    assert set(data["policies"]) == {"olla", "genie"}
    for kpis in data["policies"].values():
        for k in (
            "throughput_mbps",
            "cell_throughput_mbps",
            "throughput_p5_mbps",
            "zero_ue_share",
            "bler",
            "residual_bler",
            "spectral_efficiency",
        ):
            assert isinstance(kpis[k], float)
        assert 0.0 <= kpis["throughput_p5_mbps"] <= kpis["throughput_mbps"]
        assert 0.0 <= kpis["zero_ue_share"] <= 1.0
        assert len(kpis["mcs_histogram"]) == 28
        assert kpis["throughput_mbps"] > 0
        assert 0.0 <= kpis["bler"] <= 1.0 and 0.0 <= kpis["residual_bler"] <= 1.0
        assert kpis["spectral_efficiency"] > 0
    # same seed, same channel: the genie delivers at least as much as OLLA here
    assert (
        data["policies"]["genie"]["throughput_mbps"]
        >= 0.9 * data["policies"]["olla"]["throughput_mbps"]
    )


def test_sim_json_reproducible():
    args = [
        "sim",
        "--scenario",
        "scsu",
        "--policy",
        "fixed",
        "--ues",
        "2",
        "--slots",
        "50",
        "--seed",
        "3",
        "--json",
    ]
    a, b = runner.invoke(app, args), runner.invoke(app, args)
    assert a.exit_code == b.exit_code == 0
    assert json.loads(a.stdout) == json.loads(b.stdout)


def test_sim_table_output():
    result = runner.invoke(
        app, ["sim", "--scenario", "scsu", "--policy", "illa", "--ues", "2", "--slots", "20"]
    )
    assert result.exit_code == 0, result.output
    assert "illa" in result.output and "throughput" in result.output


def test_unknown_policy_fails_clearly():
    result = runner.invoke(
        app,
        ["sim", "--scenario", "scsu", "--policy", "nope", "--ues", "2", "--slots", "10", "--json"],
    )
    assert result.exit_code != 0
    assert "nope" in result.output
    assert "olla" in result.output  # lists the valid names
    assert "Traceback" not in result.output


def test_unknown_scenario_fails_clearly():
    result = runner.invoke(
        app, ["sim", "--scenario", "no-such-scenario", "--ues", "2", "--slots", "10"]
    )
    assert result.exit_code != 0
    assert "no-such-scenario" in result.output


def test_sim_with_trace(tmp_path):
    trace = tmp_path / "drive.csv"
    trace.write_text("Timestamp,SNR,Speed\n" + "".join(f"{t},{5 + t},{30}\n" for t in range(10)))
    result = runner.invoke(
        app,
        [
            "sim",
            "--scenario",
            "scsu",
            "--policy",
            "olla",
            "--ues",
            "2",
            "--slots",
            "30",
            "--trace",
            str(trace),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["policies"]["olla"]["throughput_mbps"] > 0


def test_sim_with_unusable_trace_fails_clearly(tmp_path):
    trace = tmp_path / "gaps.csv"
    trace.write_text("Timestamp,SNR,Speed\n0,n/a,3\n1,7.5,3\n2,-,3\n")
    result = runner.invoke(
        app,
        [
            "sim",
            "--scenario",
            "scsu",
            "--ues",
            "2",
            "--slots",
            "10",
            "--trace",
            str(trace),
            "--json",
        ],
    )
    assert result.exit_code == 2
    assert "at least two" in re.sub(r"[│\s]+", " ", result.output)
    assert "Traceback" not in result.output


def test_sim_runs_tuned_olla():
    result = runner.invoke(
        app,
        [
            "sim",
            "--scenario",
            "scsu",
            "--policy",
            "olla",
            "--policy",
            "olla-tuned",
            "--ues",
            "3",
            "--slots",
            "60",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["policies"]) == {"olla", "olla-tuned"}


def test_sim_scenario_file(tmp_path):
    spec = tmp_path / "small.json"
    spec.write_text(json.dumps({"base": "scsu", "name": "small-cell", "n_prb": 51}))
    result = runner.invoke(
        app,
        [
            "sim",
            "--scenario",
            str(spec),
            "--policy",
            "fixed",
            "--ues",
            "2",
            "--slots",
            "20",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scenario"] == "small-cell"


def test_calibrate_bler_command(tmp_path):
    from importlib import resources
    from pathlib import Path

    reference = Path(__file__).resolve().parents[3] / "shared" / "reference" / "sionna-bler"
    assert reference.is_dir(), f"missing {reference}"
    out, plot = tmp_path / "params.json", tmp_path / "img" / "cal.png"
    result = runner.invoke(
        app,
        ["calibrate-bler", "--reference", str(reference), "--out", str(out), "--plot", str(plot)],
    )
    assert result.exit_code == 0, result.output
    shipped = json.loads(resources.files("linkadapt.data").joinpath("bler_params.json").read_text())
    assert json.loads(out.read_text()) == shipped
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_non_positive_ues_rejected_clearly():
    for ues in ("0", "-3"):
        result = runner.invoke(
            app, ["sim", "--scenario", "scsu", "--ues", ues, "--slots", "5", "--json"]
        )
        assert result.exit_code == 2, (ues, repr(result.exception))  # a usage error
        assert "ues" in result.output.lower()
