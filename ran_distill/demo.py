"""``ran-distill demo`` (what ``make demo`` runs): the main job on embedded defaults.

1. Simulator: OLLA and the tuned OLLA vs the fixed CQI mapping vs the genie on the
   benchmark presets (identical channel realizations per preset).
2. The shipped student (``models/default``, ONNX) evaluated in-process against OLLA, the
   tuned OLLA and the genie on paired evaluation seeds, cell edge included.
3. The xApp: ``ran-distill serve`` on the same model; the simulator drives it over gRPC
   as one more policy, every decision is checked against the in-process ONNX student (no
   training/serving skew), and the xApp's Prometheus metrics are read back.

``--quick`` shrinks every budget so the whole job runs in seconds (the smoke test).
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from ran_distill.xapp_process import xapp_process

DEFAULT_MODEL = Path("models/default")
PRESETS = ("mimo", "high-mobility", "mmimo")


@dataclass(frozen=True)
class DemoBudget:
    """How much each stage simulates."""

    ues: int = 280
    """UEs per simulator comparison."""
    slots: int = 1000
    """Slots per simulator comparison."""
    eval_seeds: int = 3
    """Evaluation seeds for the in-process student comparison."""
    xapp_ues: int = 70
    """UEs the simulator drives through the xApp."""
    xapp_slots: int = 300
    """Slots driven through the xApp."""


QUICK = DemoBudget(ues=20, slots=40, eval_seeds=1, xapp_ues=10, xapp_slots=30)


def _cli(*args: str) -> None:
    print("\n$ ran-distill " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "ran_distill", *args], check=True)


def _drive_xapp(model_dir: Path, budget: DemoBudget, grpc_port: int, http_port: int) -> int:
    """Drive the xApp over gRPC from the simulator; return the number of mismatches."""
    from linkadapt.sim import Simulator
    from service.client import RemotePolicy
    from training.policies import OnnxQPolicy

    remote = RemotePolicy(f"127.0.0.1:{grpc_port}")
    local = OnnxQPolicy(model_dir / "model.onnx", "student")
    sim = Simulator("mimo", budget.xapp_ues, seed=0)
    mismatches = decisions = 0
    for _ in range(budget.xapp_slots):
        batch = sim.observe()
        mcs = remote.act(batch)
        expected = local.act(batch)
        decided = batch.new_tx
        mismatches += int((mcs[decided] != expected[decided]).sum())
        decisions += int(decided.sum())
        sim.step(mcs)
    remote.close()
    kpis = sim.summary()
    print(
        f"\nxApp over gRPC: {decisions} decisions, {mismatches} differ from the in-process "
        f"student; simulator throughput {kpis['throughput_mbps']:.2f} Mbit/s, "
        f"1st-tx BLER {kpis['bler']:.3f}"
    )
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    prefixes = ("ran_distill_decisions_total", "ran_distill_tracked_ues", "ran_distill_model_info")
    shown = [line for line in text.splitlines() if line.startswith(prefixes)]
    print("xApp metrics:\n  " + "\n  ".join(shown))
    return mismatches


def run_demo(model_dir: Path, budget: DemoBudget, out_dir: Path) -> None:
    """The three stages; raises ``SystemExit`` on training/serving skew."""
    budget_args = ("--ues", str(budget.ues), "--slots", str(budget.slots), "--seed", "0")
    for preset in PRESETS:
        policies = ("--policy", "olla", "--policy", "olla-tuned", "--policy", "fixed")
        _cli("sim", "--scenario", preset, *policies, "--policy", "genie", *budget_args)
    _cli(
        "evaluate",
        "--policy",
        str(model_dir),
        "--policy",
        "olla",
        "--policy",
        "olla-tuned",
        "--policy",
        "genie",
        "--scenario",
        "mimo",
        "--scenario",
        "high-mobility",
        "--seeds",
        str(budget.eval_seeds),
        "--plot",
        str(out_dir / "evaluation.png"),
    )
    print(f"\n$ ran-distill serve --model {model_dir}", flush=True)
    with xapp_process(model_dir) as (_, grpc_port, http_port):
        mismatches = _drive_xapp(model_dir, budget, grpc_port, http_port)
    print("\nxApp stopped cleanly (SIGTERM).")
    if mismatches:
        raise SystemExit("training/serving skew: the xApp disagrees with the student")


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the root app."""

    @app.command("demo")
    def demo(
        model: Annotated[Path, typer.Option(help="Model directory to evaluate and serve")] = (
            DEFAULT_MODEL
        ),
        out: Annotated[Path, typer.Option(help="Folder for the figures")] = Path("artifacts/demo"),
        quick: Annotated[bool, typer.Option(help="Tiny budgets (a smoke run in seconds)")] = False,
    ) -> None:
        """Simulator baselines, the shipped student vs OLLA, and the xApp over gRPC."""
        run_demo(model, QUICK if quick else DemoBudget(), out)
