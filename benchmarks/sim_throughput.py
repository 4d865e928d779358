"""Simulator speed: UE-slots per second at 1k, 10k and 100k UEs, everything on.

"Everything on": the ``bursty`` preset (mixed full-buffer and bursty traffic, PF
scheduling, 7 cells with interference, per-subband fading, CQI with delay and noise,
16 HARQ processes with chase combining), the feature encoder producing observations
every slot, and OLLA choosing MCS. Single process, numpy pinned to one thread, so the
figure is per core, measured as UE-slots per CPU-second of the process
(``time.process_time``), which other load on a shared machine does not inflate the way it
does wall time. Also reported: the simulator alone (fixed MCS, no policy), to show
what the policy costs.

    python benchmarks/sim_throughput.py [--write]

``--write`` replaces the "Simulator" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import time  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks_common import machine_description, replace_section  # noqa: E402
from linkadapt.baselines import OllaPolicy  # noqa: E402
from linkadapt.sim import Simulator  # noqa: E402

SIZES = (1_000, 10_000, 100_000)
TARGET_PER_CORE = 5e6


def ue_slots_per_second(n_ues: int, with_policy: bool, min_seconds: float = 3.0) -> float:
    sim = Simulator("bursty", n_ues, seed=0)
    policy = OllaPolicy(n_ues)
    fixed = np.full(n_ues, 10)

    def one_slot() -> None:
        batch = sim.observe()
        sim.step(policy.act(batch) if with_policy else fixed)

    for _ in range(5):
        one_slot()
    slots, start = 0, time.process_time()
    while time.process_time() - start < min_seconds:
        one_slot()
        slots += 1
    return n_ues * slots / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()
    rows = []
    for n in SIZES:
        full = ue_slots_per_second(n, True, args.seconds)
        bare = ue_slots_per_second(n, False, args.seconds)
        rows.append((n, full, bare))
        print(
            f"{n:>7} UEs: {full / 1e6:6.2f} M UE-slots/s with OLLA + features, "
            f"{bare / 1e6:6.2f} M without a policy",
            flush=True,
        )
    lines = [
        "Command: `python benchmarks/sim_throughput.py --write` (`make bench-sim`).",
        f"Machine: {machine_description()}. One process, numpy single-threaded; "
        "UE-slots per CPU-second of the process (per core).",
        "Scenario `bursty` (everything on: 7 cells, interference, fading, CQI delay/noise, "
        "HARQ, mixed traffic, PF), feature encoder every slot.",
        "",
        "| UEs | UE-slots/s (OLLA + features) | UE-slots/s (simulator, fixed MCS) | target |",
        "|---:|---:|---:|---:|",
    ]
    for n, full, bare in rows:
        lines.append(
            f"| {n:,} | {full / 1e6:.2f} M | {bare / 1e6:.2f} M | "
            f"{TARGET_PER_CORE / 1e6:.0f} M at 10k |"
        )
    lines += [
        "",
        "Target not met (5 M at 10k UEs per core; the speed issue is open). The honest-gains "
        "simulator costs more per slot than the previous one (1.8-1.9 M at 10k): HARQ "
        "combining keeps and EESM-decodes per-subband SINRs, the EVM cap and layer gains are "
        "applied per subband, the scheduler ranks per serving cell, and every 20 slots UEs "
        "move, shadowing evolves and A3 handovers are checked (a UE x cell x 7-image distance "
        "pass). Measured with another benchmark on the other core; runs vary by ±10 % or more "
        "with load.",
    ]
    if args.write:
        replace_section("Simulator", "\n".join(lines))
        print("BENCHMARKS.md updated")


if __name__ == "__main__":
    main()
