"""`make demo`: the main job on embedded defaults, end to end in about two minutes.

1. Simulator: OLLA and the tuned OLLA vs the fixed CQI mapping vs the genie on the
   benchmark presets (identical channel realizations per preset).
2. The shipped student (`models/default`, ONNX) evaluated in-process against OLLA, the
   tuned OLLA and the genie on paired evaluation seeds, cell edge included.
3. The xApp: `ran-distill serve` on the same model; the simulator drives it over gRPC as
   one more policy, every decision is checked against the in-process ONNX student (no
   training/serving skew), and the xApp's Prometheus metrics are read back.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = Path(os.environ.get("RAN_DISTILL_DEMO_MODEL", REPO / "models" / "default"))
PRESETS = ("mimo", "high-mobility", "mmimo")


def cli(*args: str) -> None:
    print("\n$ ran-distill " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "linkadapt.cli", *args], check=True, cwd=REPO)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(http_port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{http_port}/ric/v1/health/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the xApp did not become ready")


def drive_xapp(grpc_port: int, http_port: int) -> None:
    from linkadapt.sim import Simulator
    from service.client import RemotePolicy
    from training.policies import OnnxQPolicy

    remote = RemotePolicy(f"127.0.0.1:{grpc_port}")
    local = OnnxQPolicy(MODEL / "model.onnx", "student")
    sim = Simulator("mimo", 70, seed=0)
    mismatches = decisions = 0
    for _ in range(300):
        batch = sim.observe()
        mcs = remote.act(batch)
        expected = local.act(batch)
        decided = batch.new_tx
        mismatches += int((mcs[decided] != expected[decided]).sum())
        decisions += int(decided.sum())
        sim.step(mcs)
    remote.close()
    kpis = sim.summary()
    print(f"\nxApp over gRPC: {decisions} decisions, {mismatches} differ from the in-process "
          f"student; simulator throughput {kpis['throughput_mbps']:.2f} Mbit/s, "
          f"1st-tx BLER {kpis['bler']:.3f}")
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    shown = [line for line in text.splitlines()
             if line.startswith(("ran_distill_decisions_total", "ran_distill_tracked_ues",
                                 "ran_distill_model_info"))]
    print("xApp metrics:\n  " + "\n  ".join(shown))
    if mismatches:
        raise SystemExit("training/serving skew: the xApp disagrees with the student")


def main() -> None:
    for preset in PRESETS:
        cli("sim", "--scenario", preset, "--policy", "olla", "--policy", "olla-tuned",
            "--policy", "fixed", "--policy", "genie", "--ues", "280", "--slots", "1000",
            "--seed", "0")
    cli("evaluate", "--policy", str(MODEL), "--policy", "olla", "--policy", "olla-tuned",
        "--policy", "genie", "--scenario", "mimo", "--scenario", "high-mobility", "--seeds", "3",
        "--plot", str(REPO / "artifacts" / "demo" / "evaluation.png"))
    grpc_port, http_port = free_port(), free_port()
    print(f"\n$ ran-distill serve --model {MODEL} --grpc-port {grpc_port} "
          f"--http-port {http_port}", flush=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "linkadapt.cli", "serve", "--model", str(MODEL),
         "--grpc-port", str(grpc_port), "--http-port", str(http_port)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "RAN_DISTILL_RELOAD_POLL_SECONDS": "0"})
    try:
        wait_ready(http_port)
        drive_xapp(grpc_port, http_port)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print("\nxApp stopped cleanly (SIGTERM).")


if __name__ == "__main__":
    main()
