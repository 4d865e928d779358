"""Scale-out benchmark: how often several xApp replicas decide differently from one replica
fed the same reports, without affinity, behind the cell-affine HAProxy, and after a
replica leaves (drained with and without the Redis state handover, or killed).

    .venv/bin/python benchmarks/service_scaleout.py [--slots 150] [--write]

Everything runs on loopback (``ran_distill.scaleout_run``): Debian's haproxy 2.6 and
redis-server 7, xApp processes serving ``models/default``, 24 cells x 8 UEs of
history-dependent traffic (``ran_distill.scaleout.CellTraffic``). Decisions are
deterministic given the reports, so the shares hardly depend on the machine's speed (only
the slot at which HAProxy routes around a draining replica does).
``--write`` replaces the "Scale-out" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks_common import machine_description, replace_section  # noqa: E402
from ran_distill.scaleout import Divergence  # noqa: E402
from ran_distill.scaleout_run import REPLICA_ENV, alternating, cluster, failover  # noqa: E402
from ran_distill.xapp_process import xapp_process  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SECTION = "Scale-out: cell affinity and state handover"
CELLS = list(range(101, 125))
UES = 8


def run(model: Path, *, slots: int, window: int) -> dict[str, Any]:
    res: dict[str, Any] = {"cells": len(CELLS), "ues": UES, "slots": slots, "window": window}
    with contextlib.ExitStack() as stack:
        targets = [
            f"127.0.0.1:{stack.enter_context(xapp_process(model, env=REPLICA_ENV))[1]}"
            for _ in range(3)
        ]
        res["alternating"] = alternating(
            targets[:2], targets[2], cells=CELLS, ues=UES, slots=slots
        ).summary()
    for handover in (False, True):
        with cluster(model, replicas=3, handover=handover) as c:
            r = failover(c, cells=CELLS, ues=UES, warm_slots=30, after_slots=slots, window=window)
        key = "with_handover" if handover else "without_handover"
        res[key] = {
            "warm": r.warm.summary(),
            "handed_cells": len(r.handed),
            "slots_until_routed_around": r.slots_until_routed_around,
            "drain": r.drain.summary(),
            "moved_cells": len(r.moved),
            "kill": r.kill.summary(),
        }
    return res


def _pct(d: dict[str, Any]) -> str:
    return f"{100 * d['share']:.1f} % (max abs dMCS {d['max_abs_delta_mcs']})"


def _windows(summary: dict[str, Any], prefix: str, window: int) -> str:
    keys = sorted((k for k in summary if k.startswith(prefix)), key=lambda k: int(k.split(":")[1]))
    total = Divergence()
    parts = []
    for k in keys:
        w = int(k.split(":")[1])
        parts.append(
            f"slots {w * window}-{(w + 1) * window - 1}: {100 * summary[k]['share']:.1f} %"
        )
        total.decisions["x"] = total.decisions.get("x", 0) + summary[k]["decisions"]
        total.differing["x"] = total.differing.get("x", 0) + summary[k]["differing"]
        total.max_abs_delta["x"] = max(
            total.max_abs_delta.get("x", 0), summary[k]["max_abs_delta_mcs"]
        )
    return f"{_pct(total.summary()['x'])}; " + ", ".join(parts)


def render(r: dict[str, Any], command: str) -> str:
    w = r["window"]
    wo, wi = r["without_handover"], r["with_handover"]
    rows = [
        "| setup | decisions differing from one replica fed the same reports |",
        "|---|---|",
        f"| 2 replicas, calls alternating (no affinity: a Service with sessionAffinity "
        f"None), {r['slots']} slots | {_pct(r['alternating']['all'])} |",
        f"| 3 replicas behind HAProxy (consistent hash of x-ran-cell-id), 30 slots, gRPC "
        f"and REST mixed | {_pct(wo['warm']['all'])} |",
        f"| one replica drained (SIGTERM) under traffic, **without** handover: its "
        f"{wo['handed_cells']} cells, next {r['slots']} slots | "
        f"{_windows(wo['drain'], 'handed:', w)} |",
        f"| the same **with** the Redis state handover: its {wi['handed_cells']} cells | "
        f"{_windows(wi['drain'], 'handed:', w)} |",
        f"| ... the cells that stayed, meanwhile | {_pct(wo['drain']['stayed'])} without, "
        f"{_pct(wi['drain']['stayed'])} with |",
        f"| then a replica killed (-9: no drain, no snapshot): its {wo['moved_cells']} cells "
        f"| {_windows(wo['kill'], 'moved:', w)} |",
    ]
    return (
        f"Command: `{command}`. Machine: {machine_description()} (the figures are "
        "decision counts, not timings: only the slot at which HAProxy routes around a "
        "draining replica depends on the machine). 24 cells x 8 UEs "
        "of history-dependent traffic (`ran_distill.scaleout.CellTraffic`), models/default, "
        "Debian haproxy 2.6 and redis-server 7 on loopback; a draining replica is served "
        f"until HAProxy routes around it ({wo['slots_until_routed_around']} / "
        f"{wi['slots_until_routed_around']} slots here).\n\n" + "\n".join(rows) + "\n"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slots", type=int, default=150, help="slots after each event")
    p.add_argument("--window", type=int, default=50, help="slots per reported window")
    p.add_argument("--model", type=Path, default=REPO / "models" / "default")
    p.add_argument("--write", action="store_true", help="replace the BENCHMARKS.md section")
    args = p.parse_args()
    res = run(args.model, slots=args.slots, window=args.window)
    print(json.dumps(res))
    if args.write:
        command = "python benchmarks/service_scaleout.py " + " ".join(sys.argv[1:])
        replace_section(SECTION, render(res, command.strip()))


if __name__ == "__main__":
    main()
