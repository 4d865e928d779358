"""`make demo`: the main job on embedded defaults.

1. Simulator: OLLA vs the fixed CQI mapping vs the genie on every benchmark preset
   (identical channel realizations per preset).
"""

from __future__ import annotations

import subprocess
import sys

PRESETS = ("mimo", "mmimo", "high-mobility", "bursty", "scsu", "randomized")


def run(*args: str) -> None:
    print("$ ran-distill " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "linkadapt.cli", *args], check=True)


def main() -> None:
    for preset in PRESETS:
        ues = 10 if preset == "scsu" else 280
        run("sim", "--scenario", preset, "--policy", "olla", "--policy", "fixed",
            "--policy", "genie", "--ues", str(ues), "--slots", "1000", "--seed", "0")


if __name__ == "__main__":
    main()
