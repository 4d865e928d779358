"""``ran-distill report --budget tiny``: every stage end to end in a fresh interpreter, the
markdown's tables and the PNGs exist, and a rerun resumes from the done-markers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE_HEADERS = (
    "| benchmark | student | trained | throughput vs teacher (%) |",
    "| loss | held-out agreement |",
    "| τ | held-out agreement |",
    "| source | held-out agreement |",
    "| path | held-out agreement |",
    "| student of | held-out agreement |",
    "| student | argmax agreement int8 vs float |",
    "| agent | seeds | episodes to a 100-episode average of 300 |",
    "| student | parameters | ONNX bytes |",
    "| target | measured |  |",
)
FIGURES = ("losses.png", "tau.png", "sources.png", "mcs.png", "cartpole.png", "pareto.png")


def _report(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "ran_distill",
        "report",
        "--budget",
        "tiny",
        "--artifacts",
        str(tmp_path / "artifacts"),
        "--out",
        str(tmp_path / "reports"),
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)


def test_the_tiny_report_runs_every_stage_and_resumes(tmp_path) -> None:
    done = _report(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    text = (tmp_path / "reports" / "distillation.md").read_text()
    for header in TABLE_HEADERS:
        assert header in text, header
    assert "has not finished" not in text
    assert "Budget **tiny**" in text and "wall time" in text
    for name in FIGURES:
        png = tmp_path / "reports" / "figures" / name
        assert png.stat().st_size > 5_000, name
        assert f"figures/{name}" in text
    # the five benchmarks x (3 single + 3 multi + from scratch) rows of the paper's table
    rows = [line for line in text.splitlines() if line.startswith(("| mimo |", "| bursty |"))]
    assert len(rows) == 2 * 7
    # each multi-policy reference is shown with what it learned
    teachers = [line for line in text.splitlines() if line.startswith("| `mimo` | mlp-")]
    assert len(teachers) == 1 and "| training return |" in text
    started = time.perf_counter()
    again = _report(tmp_path)
    assert again.returncode == 0 and again.stdout.count("finished before, reused") == 11
    assert time.perf_counter() - started < 60
    # the six losses, online (DQN + KD) included
    assert "| `online` |" in text and "| `reverse-kl` |" in text
    # a stage run again distills only the students it does not have (same configuration)
    summaries = sorted((tmp_path / "artifacts" / "tiny" / "losses").glob("*/distill.json"))
    assert len(summaries) == 6
    before = {p: p.stat().st_mtime_ns for p in summaries}
    redo = _report(tmp_path, "--stage", "losses", "--redo")
    assert redo.returncode == 0 and "stage losses: running" in redo.stdout
    assert {p: p.stat().st_mtime_ns for p in summaries} == before
    # BENCHMARKS.md's "Distillation targets" rows are the report's (read back, nothing run)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    targets = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "distill_targets.py"), "--budget", "tiny"]
        + ["--artifacts", str(tmp_path / "artifacts")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert targets.returncode == 0, targets.stderr[-2000:]
    report_targets = text.split("## Targets", 1)[1].split("\n\n")[1]
    for row in report_targets.splitlines()[2:]:
        assert row in targets.stdout, row
