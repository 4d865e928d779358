"""End-to-end CLI: train-teacher (CartPole and the simulator), evaluate, export-onnx."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from linkadapt.seeds import EVALUATION
from training import cli as training_cli
from training.cli import parse_seeds
from training.dqn import cli as dqn_cli
from training.export import verify_export


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    dqn_cli.register(app)
    training_cli.register(app)
    return app


def _ok(result):
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_cli_module_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import typer, training.cli as c, training.dqn.cli as d, training.distill as t\n"
        "app = typer.Typer(); c.register(app); d.register(app); t.register(app); print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_parse_seeds():
    assert parse_seeds("3") == [10_000, 10_001, 10_002]  # the first evaluation seeds
    assert parse_seeds("4,9, 11") == [4, 9, 11]
    with pytest.raises(typer.BadParameter):
        parse_seeds("zero")


def test_train_teacher_on_cartpole_writes_artifacts(app, tmp_path):
    out = tmp_path / "cp"
    _ok(
        CliRunner().invoke(
            app,
            [
                "train-teacher",
                "--scenario",
                "CartPole-v1",
                "--steps",
                "2000",
                "--seed",
                "3",
                "--out",
                str(out),
                "--no-progress",
                "--set",
                "learning_starts=500",
            ],
        )
    )
    man = json.loads((out / "manifest.json").read_text())
    assert man["seed"] == 3 and man["env"] == "CartPole-v1" and man["obs_dim"] == 4
    assert man["obs_schema_version"] is None  # not simulator observations
    assert man["parameter_count"] > 0 and man["wall_time_s"] > 0
    assert "train-teacher" in man["command"]
    assert "greedy_eval" in man["kpis"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["learning_starts"] == 500 and cfg["total_transitions"] == 2000


def test_unknown_config_override_is_rejected(app, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "train-teacher",
            "--scenario",
            "CartPole-v1",
            "--out",
            str(tmp_path),
            "--set",
            "gamma_typo=0.1",
        ],
    )
    assert result.exit_code != 0


@pytest.fixture(scope="module")
def sim_teacher(app, tmp_path_factory):
    """A tiny teacher trained on the simulator through the CLI (seconds, not minutes)."""
    out = tmp_path_factory.mktemp("teacher")
    _ok(
        CliRunner().invoke(
            app,
            [
                "train-teacher",
                "--scenario",
                "mimo",
                "--arch",
                "mlp-2x32",
                "--steps",
                "4000",
                "--out",
                str(out),
                "--no-progress",
                "--num-envs",
                "32",
                "--kpi-seeds",
                "1",
                "--set",
                "learning_starts=1000",
                "--set",
                "eval_num_envs=16",
                "--set",
                "eval_steps=50",
                "--set",
                "episode_slots=100",
            ],
        )
    )
    return out


def test_simulator_teacher_manifest(sim_teacher):
    from linkadapt.features import OBS_DIM, OBS_SCHEMA_VERSION

    man = json.loads((sim_teacher / "manifest.json").read_text())
    assert man["obs_dim"] == OBS_DIM and man["n_actions"] == 28
    assert man["obs_schema_version"] == OBS_SCHEMA_VERSION
    sim_kpis = man["kpis"]["simulator"]["scenarios"]["mimo"]["summary"]
    assert set(sim_kpis) == {"teacher", "olla", "olla-tuned", "genie"}
    assert sim_kpis["teacher"]["throughput_mbps"]["mean"] > 0
    assert "throughput_p5_vs_olla-tuned_mbps" in sim_kpis["teacher"]
    assert man["kpis"]["simulator"]["seeds"] == [10_000]  # reported numbers: evaluation seeds
    assert (sim_teacher / "curve.png").exists()
    import csv
    import math

    with (sim_teacher / "curve.csv").open() as fh:
        gains = [float(r["eval_gain_vs_olla_pct"]) for r in csv.DictReader(fh)]
    assert any(not math.isnan(g) for g in gains)  # the curve tracks the gain over OLLA


def test_evaluate_json_and_onnx_export_agree_with_torch(app, sim_teacher, tmp_path):
    onnx_dir = tmp_path / "onnx"
    _ok(CliRunner().invoke(app, ["export-onnx", str(sim_teacher), "--out", str(onnx_dir)]))
    verify_export(onnx_dir)
    man = json.loads((onnx_dir / "manifest.json").read_text())
    assert man["source"]["env"] == "mimo"
    png = tmp_path / "bars.png"
    result = _ok(
        CliRunner().invoke(
            app,
            [
                "evaluate",
                "--policy",
                str(sim_teacher),
                "--policy",
                str(onnx_dir / "model.onnx"),
                "--policy",
                "olla",
                "--scenario",
                "scsu",
                "--scenario",
                "mimo",
                "--seeds",
                "0,1",
                "--ues",
                "20",
                "--slots",
                "200",
                "--json",
                "--plot",
                str(png),
            ],
        )
    )
    data = json.loads(result.output)
    assert png.exists() and data["plot"] == str(png)
    for sc in ("scsu", "mimo"):
        per_seed = data["scenarios"][sc]["per_seed"]
        torch_kpis, onnx_kpis = per_seed[sim_teacher.name], per_seed["model"]
        # Same seeds, same greedy decisions: the ONNX model reproduces the torch teacher.
        for seed in ("0", "1"):
            assert torch_kpis[seed]["throughput_mbps"] == pytest.approx(
                onnx_kpis[seed]["throughput_mbps"]
            )
        assert "throughput_vs_olla_pct" in data["scenarios"][sc]["summary"]["model"]


def test_evaluate_table_output(app, tmp_path):
    png = tmp_path / "e.png"
    out = _ok(
        CliRunner().invoke(
            app,
            [
                "evaluate",
                "--policy",
                "olla",
                "--policy",
                "genie",
                "--scenario",
                "scsu",
                "--seeds",
                "2",
                "--ues",
                "8",
                "--slots",
                "100",
                "--plot",
                str(png),
            ],
        )
    )
    assert "genie" in out.output and "vs OLLA" in out.output and png.exists()
    assert "p5 UE Mbit/s" in out.output and "zero-UE share" in out.output
    assert "p5 vs genie" in out.output


def test_evaluate_default_seeds_are_evaluation_seeds(app, tmp_path):
    out = _ok(
        CliRunner().invoke(
            app,
            [
                "evaluate",
                "--policy",
                "olla",
                "--policy",
                "olla-tuned",
                "--scenario",
                "scsu",
                "--ues",
                "2",
                "--slots",
                "20",
                "--json",
                "--plot",
                str(tmp_path / "e.png"),
            ],
        )
    )
    data = json.loads(out.stdout)
    assert data["seeds"] == list(range(10_000, 10_005))
    assert all(s in EVALUATION for s in data["seeds"])
    summary = data["scenarios"]["scsu"]["summary"]
    for kpi in (
        "throughput_p5_mbps",
        "zero_ue_share",
        "cell_throughput_mbps",
        "throughput_vs_olla_pct",
        "throughput_p5_vs_olla_mbps",
    ):
        assert kpi in summary["olla-tuned"], kpi


def _trace(path, rows):
    path.write_text("Timestamp,SNR,Speed\n" + "".join(f"{t},{snr},30\n" for t, snr in rows))
    return path


def test_evaluate_on_a_drive_test_trace(app, tmp_path):
    trace = _trace(tmp_path / "drive.csv", [(0, 12), (1, "n/a"), (2, 20), (3, 6), (4, 16)])
    out = _ok(
        CliRunner().invoke(
            app,
            [
                "evaluate",
                "--policy",
                "fixed",
                "--policy",
                "olla",
                "--policy",
                "genie",
                "--trace",
                str(trace),
                "--scenario",
                "scsu",
                "--seeds",
                "2",
                "--ues",
                "4",
                "--slots",
                "150",
                "--json",
                "--plot",
                str(tmp_path / "t.png"),
            ],
        )
    )
    data = json.loads(out.stdout)
    assert data["trace"] == str(trace)
    per_seed = data["scenarios"]["scsu"]["per_seed"]
    tput = {p: sum(v["throughput_mbps"] for v in per_seed[p].values()) for p in per_seed}
    assert tput["genie"] > tput["olla"] > tput["fixed"] > 0  # the usual ranking
    # without the trace the channel differs: the trace really drives the simulation
    plain = json.loads(
        _ok(
            CliRunner().invoke(
                app,
                [
                    "evaluate",
                    "--policy",
                    "olla",
                    "--scenario",
                    "scsu",
                    "--seeds",
                    "2",
                    "--ues",
                    "4",
                    "--slots",
                    "150",
                    "--json",
                    "--plot",
                    str(tmp_path / "p.png"),
                ],
            )
        ).stdout
    )
    assert plain["scenarios"]["scsu"]["per_seed"]["olla"] != per_seed["olla"]


def test_evaluate_rejects_a_trace_with_one_usable_row(app, tmp_path):
    trace = _trace(tmp_path / "short.csv", [(0, 12), (1, "n/a"), (2, "-")])
    out = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--policy",
            "olla",
            "--trace",
            str(trace),
            "--seeds",
            "1",
            "--ues",
            "2",
            "--slots",
            "10",
        ],
    )
    assert out.exit_code == 2, out.output
    text = re.sub(r"[│\s]+", " ", out.output)  # undo rich's boxed line wrapping
    assert "1 of 3 rows have a numeric 'SNR'; a trace needs at least two" in text
    assert "Traceback" not in out.output


def test_evaluate_rejects_unknown_policy(app):
    out = CliRunner().invoke(
        app, ["evaluate", "--policy", "no-such-policy", "--scenario", "scsu", "--seeds", "1"]
    )
    assert out.exit_code != 0
