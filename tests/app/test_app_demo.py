"""``ran-distill demo --quick``: the main job end to end on tiny budgets, in a subprocess:
with a real Prometheus when the binary is installed, and from the xApp's own /metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ran_distill.prometheus import prometheus_binary

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(600)


def _demo(out: Path, *extra: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ran_distill", "demo", "--quick", "--out", str(out), *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _check_common(stdout: str, out: Path) -> None:
    assert " 0 differ from the in-process student" in stdout
    assert "xApp stopped cleanly" in stdout
    for row in ("mean UE (Mbit/s)", "1st-tx BLER", "decision latency p50 / p99 / p99.9"):
        assert row in stdout
    for column in ("via xApp", "olla-tuned", "genie"):
        assert column in stdout
    assert (out / "kpis.png").stat().st_size > 10_000
    # the teacher runs in shadow beside the student: the comparison is printed
    assert "shadow: candidate mlp-7x128" in stdout
    assert "decisions compared" in stdout and "within ±1 MCS" in stdout


@pytest.mark.skipif(prometheus_binary() is None, reason="prometheus not installed")
def test_demo_with_prometheus(tmp_path: Path) -> None:
    stdout = _demo(tmp_path)
    _check_common(stdout, tmp_path)
    assert "Prometheus ready" in stdout
    assert "(Prometheus /api/v1/query_range)" in stdout
    assert "Prometheus stopped" in stdout


def test_demo_without_prometheus(tmp_path: Path) -> None:
    stdout = _demo(tmp_path, "--no-prometheus")
    _check_common(stdout, tmp_path)
    assert "Prometheus" not in stdout
    assert "(the xApp's /metrics, sampled by the demo)" in stdout
