"""Shared helpers of the benchmark scripts: machine description, BENCHMARKS.md sections."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> str:
    return f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def replace_section(title: str, body: str) -> None:
    """Replace (or append) the ``## {title}`` section of BENCHMARKS.md with ``body``."""
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(section + "\n", text)
    else:
        text = text.rstrip() + "\n\n" + section
    BENCHMARKS_MD.write_text(text)


def fmt(
    cell: tuple[float, float] | None, digits: int = 2, unit: str = "", signed: bool = False
) -> str:
    """``mean ± ci`` (``-`` when missing), e.g. ``+1.2 ± 0.3 %``."""
    if cell is None:
        return "-"
    mean, ci = cell
    sign = "+" if signed and mean >= 0 else ""
    return f"{sign}{mean:.{digits}f} ± {ci:.{digits}f}{unit}"


def p5_gain(row: dict, ref: str) -> str:
    """Paired p5 gain over ``ref``: in % where the reference's p5 is > 0 on every seed,
    else the difference in Mbit/s (see linkadapt.sim.evaluation)."""
    pct = row.get(f"throughput_p5_vs_{ref}_pct")
    if pct is not None:
        return fmt(pct, 1, " %", signed=True)
    return fmt(row.get(f"throughput_p5_vs_{ref}_mbps"), 2, " Mbit/s", signed=True)


def seeds_note(seeds: list[int]) -> str:
    """``evaluation seeds 10000..10004`` (linkadapt.seeds)."""
    return (
        f"evaluation seeds {seeds[0]}..{seeds[-1]}"
        if len(seeds) > 1
        else f"evaluation seed {seeds[0]}"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
