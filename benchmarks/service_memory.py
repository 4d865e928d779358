"""Resident memory per tracked UE: the xApp as its own process, filled with distinct UEs.

    .venv/bin/python benchmarks/service_memory.py [--ues 100000 1000000] [--per-cell 512] [--write]

Starts the xApp (``ran_distill.xapp_process``, the ``models/default`` student) with
``max_tracked_ues`` raised above the largest count and a TTL far beyond the run, then
sends unary ``Decide`` requests of ``--per-cell`` distinct UEs, one
request per cell (so the UEs spread over many cells, each with its own index, as in a
RIC), until each count of ``--ues`` is tracked. After each count it reads the server's
``VmRSS`` (``/proc/<pid>/status``) and reports ``(RSS − RSS before the first UE) / UEs``:
everything that grows with tracked UEs (the per-UE history and OLLA arrays, the (cell, UE)
index, the free-row stack, the per-cell bookkeeping), plus allocator slack. ``--write``
replaces the "xApp memory per tracked UE" section of BENCHMARKS.md.

Not a timed benchmark: it may run beside other work (RSS does not depend on load).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service_load import request_bytes  # noqa: E402

from benchmarks_common import machine_description, replace_section  # noqa: E402
from ran_distill.xapp_process import xapp_process  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
METHOD = "/linkadapt.v1.LinkAdaptation/Decide"
MODEL = REPO / "models" / "default"
TITLE = "xApp memory per tracked UE"


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def tracked(http: str) -> int:
    for line in httpx.get(f"{http}/metrics", timeout=120).text.splitlines():
        if line.startswith("ran_distill_tracked_ues "):
            return int(float(line.split()[1]))
    raise RuntimeError("no ran_distill_tracked_ues in /metrics")


def run(counts: list[int], per_cell: int) -> dict[str, Any]:
    config = {
        "RAN_DISTILL_MAX_TRACKED_UES": str(max(counts) + per_cell),
        "RAN_DISTILL_UE_TTL_SECONDS": "86400",
        "RAN_DISTILL_LOG_LEVEL": "WARNING",
        "RAN_DISTILL_DRAIN_SECONDS": "0",
    }
    with xapp_process(MODEL, env=config, inherit_settings=False) as (proc, gport, hport):
        http = f"http://127.0.0.1:{hport}"
        with grpc.insecure_channel(f"127.0.0.1:{gport}") as ch:
            call = ch.unary_unary(METHOD)
            call(request_bytes(10**6, 16), timeout=30)  # first-call costs before the baseline
            time.sleep(0.5)
            base = rss_bytes(proc.pid)
            rows: list[dict[str, Any]] = []
            cell, n = 0, 0
            for target in sorted(counts):
                while n < target:
                    k = min(per_cell, target - n)
                    call(request_bytes(cell, k), timeout=30)
                    cell, n = cell + 1, n + k
                time.sleep(0.5)
                rss = rss_bytes(proc.pid)
                rows.append(
                    {
                        "ues": target,
                        "tracked": tracked(http),
                        "cells": cell,
                        "rss_mb": rss / 2**20,
                        "bytes_per_ue": (rss - base) / target,
                    }
                )
    return {"base_rss_mb": base / 2**20, "rows": rows, "config": config}


def render(res: dict[str, Any], per_cell: int, command: str) -> str:
    cfg = ", ".join(f"`{k}={v}`" for k, v in res["config"].items())
    lines = [
        f"Command: `{command}`. Machine: {machine_description()}. The xApp runs as its own "
        f"process (config {cfg}, otherwise defaults); requests of {per_cell} distinct UEs, "
        "one cell each. Bytes per UE = (VmRSS now − VmRSS before the first UE) / UEs, so "
        "the model, the interpreter and the libraries are not counted; the arrays grow by "
        "doubling, so the figure includes their unused headroom at that count.",
        "",
        f"RSS before the first UE: {res['base_rss_mb']:.1f} MiB.",
        "",
        "| tracked UEs | cells | RSS (MiB) | bytes per tracked UE |",
        "|---|---|---|---|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['tracked']:,} | {r['cells']:,} | {r['rss_mb']:.1f} | {r['bytes_per_ue']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ues", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--per-cell", type=int, default=512)
    p.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = p.parse_args()
    res = run(args.ues, args.per_cell)
    command = "python benchmarks/service_memory.py " + " ".join(sys.argv[1:])
    body = render(res, args.per_cell, command.strip())
    print(body)
    if args.write:
        replace_section(TITLE, body)


if __name__ == "__main__":
    main()
