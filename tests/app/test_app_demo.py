"""``ran-distill demo --quick``: the main job end to end on tiny budgets, in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_demo_runs_end_to_end_with_a_tiny_budget(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ran_distill", "demo", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "0 differ from the in-process student" in result.stdout
    assert "xApp stopped cleanly" in result.stdout
    assert (tmp_path / "evaluation.png").stat().st_size > 1000
