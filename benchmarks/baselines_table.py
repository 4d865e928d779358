"""Baselines on every preset: OLLA, tuned OLLA, fixed CQI mapping, genie; paired seeds, 95 % CIs.

    python benchmarks/baselines_table.py [--seeds 5] [--ues 280] [--slots 1000] [--write]

Runs on the first ``--seeds`` evaluation seeds (``linkadapt.seeds``: 10 000 …), never on
the tuning seeds ``olla-tuned`` was tuned on. Reports mean and 5th-percentile UE
throughput, the share of UEs with nothing delivered, both BLERs, and paired gains of the
mean and p5 over OLLA. ``--write`` replaces the "Baselines per preset" section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse

from benchmarks_common import fmt, machine_description, p5_gain, replace_section, seeds_note
from linkadapt.seeds import evaluation_seeds
from linkadapt.sim import PRESETS
from linkadapt.sim.evaluation import baseline_factory, evaluate

POLICIES = ("olla", "olla-tuned", "fixed", "genie")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="first N evaluation seeds")
    parser.add_argument("--ues", type=int, default=280)
    parser.add_argument("--slots", type=int, default=1000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    seeds = evaluation_seeds(args.seeds)
    lines = [
        f"Command: `python benchmarks/baselines_table.py --seeds {args.seeds} --ues {args.ues} "
        f"--slots {args.slots} --write`. Machine: {machine_description()}.",
        f"{seeds_note(seeds).capitalize()}, mean ± 95 % CI over seeds; `scsu` uses 10 UEs. "
        "Gains are paired per seed; p5 = 5th-percentile UE throughput (gain in Mbit/s where "
        "OLLA's p5 is 0 on some seed). `olla-tuned`: `linkadapt/data/olla_tuned.json`.",
        "",
        "| preset | policy | Mbit/s | p5 Mbit/s | zero-UE share | BLER | residual BLER "
        "| vs OLLA | p5 vs OLLA |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for preset in PRESETS:
        n_ues = 10 if preset == "scsu" else args.ues
        result = evaluate(
            {p: baseline_factory(p) for p in POLICIES}, preset, seeds, n_ues, args.slots
        )
        for policy, row in result.summary().items():
            gain = fmt(row.get("throughput_vs_olla_pct"), 1, " %", signed=True)
            p5 = p5_gain(row, "olla") if policy != "olla" else "-"
            lines.append(
                f"| {preset} | {policy} | {fmt(row['throughput_mbps'])} | "
                f"{fmt(row['throughput_p5_mbps'])} | {fmt(row['zero_ue_share'], 3)} | "
                f"{fmt(row['bler'], 3)} | {fmt(row['residual_bler'], 4)} | {gain} | {p5} |"
            )
            print(lines[-1], flush=True)
    if args.write:
        replace_section("Baselines per preset", "\n".join(lines))
        print("BENCHMARKS.md updated")


if __name__ == "__main__":
    main()
