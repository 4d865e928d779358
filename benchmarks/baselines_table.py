"""Baselines on every preset: OLLA, fixed CQI mapping, genie; paired seeds, 95 % CIs.

    python benchmarks/baselines_table.py [--seeds 5] [--ues 280] [--slots 1000] [--write]

``--write`` replaces the "Baselines per preset" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse

from benchmarks_common import machine_description, replace_section
from linkadapt.evaluation import baseline_factory, evaluate
from linkadapt.sim import PRESETS

POLICIES = ("olla", "fixed", "genie")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ues", type=int, default=280)
    parser.add_argument("--slots", type=int, default=1000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    lines = [
        f"Command: `python benchmarks/baselines_table.py --seeds {args.seeds} --ues {args.ues} "
        f"--slots {args.slots} --write`. Machine: {machine_description()}.",
        f"Seeds 0..{args.seeds - 1}, mean ± 95 % CI over seeds; `scsu` uses 10 UEs. "
        "Gains are paired per seed.",
        "",
        "| preset | OLLA Mbit/s | OLLA BLER | fixed Mbit/s | fixed BLER | genie Mbit/s "
        "| genie BLER | OLLA vs fixed | genie vs OLLA |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for preset in PRESETS:
        n_ues = 10 if preset == "scsu" else args.ues
        result = evaluate({p: baseline_factory(p) for p in POLICIES}, preset,
                          range(args.seeds), n_ues, args.slots)
        s = result.summary()
        cells = []
        for p in POLICIES:
            (tm, tc), (bm, bc) = s[p]["throughput_mbps"], s[p]["bler"]
            cells += [f"{tm:.2f} ± {tc:.2f}", f"{bm:.3f} ± {bc:.3f}"]
        olla_fixed = result.paired_gain_pct("olla", "fixed")
        genie_olla = result.paired_gain_pct("genie", "olla")
        cells += [f"{olla_fixed[0]:+.1f} ± {olla_fixed[1]:.1f} %",
                  f"{genie_olla[0]:+.1f} ± {genie_olla[1]:.1f} %"]
        lines.append(f"| {preset} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    if args.write:
        replace_section("Baselines per preset", "\n".join(lines))
        print("BENCHMARKS.md updated")


if __name__ == "__main__":
    main()
