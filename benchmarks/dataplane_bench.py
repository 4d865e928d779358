"""The xApp's data plane in-process, piece by piece (no transport): where its CPU goes.

    .venv/bin/python benchmarks/dataplane_bench.py [--seconds 3] [--repeat 3]

1. ``FeatureHistory.update`` / ``encode`` on 64 and 8192 rows of an 8192-row history
   (CPU µs per call);
2. serialized ``DecideRequest`` s through ``DataPlane.submit_raw`` (the gRPC adapter's path:
   parse, validate, admit, micro-batch, update, encode, OLLA, onnxruntime, response
   bytes), 1024-UE x 8 and 64-UE x 16 submitted together (CPU µs per request);
3. a lone 64-UE request every 0.5 ms, inference worker thread vs inline on the event loop
   (latency p50 / p99 / p99.9: the data plane's part of a ``DecideStream`` message).

To compare two commits, run this file from a checkout of each (``PYTHONPATH`` = that
checkout) in one session, alternating (``--repeat``). Run timed benchmarks on a quiet
machine; the figures of a shared box move with its load.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service_load import columns, request_bytes  # noqa: E402

from benchmarks_common import machine_description  # noqa: E402
from linkadapt.features import FeatureHistory  # noqa: E402
from linkadapt.reports import ReportBatch  # noqa: E402
from service.config import load_settings  # noqa: E402
from service.dataplane import DataPlane  # noqa: E402

MODEL = REPO / "models" / "default"


def cpu_us(fn: Callable[[], object], calls: int) -> float:
    fn()
    t0 = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - t0) / calls * 1e6


def history_costs(n: int, capacity: int = 8192) -> tuple[float, float]:
    batches = [ReportBatch.from_arrays(**columns(n, seed)) for seed in range(8)]
    rng = np.random.default_rng(0)
    history = FeatureHistory(capacity)
    rows = rng.permutation(capacity)[:n]
    calls = max(50, 400_000 // n)
    it = iter(range(10**9))
    update = cpu_us(lambda: history.update(rows, batches[next(it) % 8]), calls)
    encode = cpu_us(lambda: history.encode(rows), calls)
    return update, encode


async def submitted(ues: int, together: int, seconds: float) -> float:
    """CPU µs per request, ``together`` requests of ``ues`` UEs (one cell each) at a time."""
    dp = DataPlane(load_settings(model_dir=MODEL, reload_poll_seconds=0))
    await dp.start()
    raws = [request_bytes(1 + c, ues) for c in range(together)]
    for _ in range(20):
        await asyncio.gather(*(dp.submit_raw("pb", r) for r in raws))
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        await asyncio.gather(*(dp.submit_raw("pb", r) for r in raws))
        n += together
    cpu = time.process_time() - c0
    await dp.stop()
    return cpu / n * 1e6


async def lone_latency(thread: bool, count: int = 3000) -> tuple[float, float, float, float]:
    """p50 / p99 / p99.9 latency (µs) of a lone 64-UE request, one every 0.5 ms, and the
    process CPU (µs) per request (the pauses between requests cost none)."""
    dp = DataPlane(load_settings(model_dir=MODEL, reload_poll_seconds=0, inference_thread=thread))
    await dp.start()
    raw = request_bytes(1, 64)
    lat = []
    cpu0 = time.process_time()
    for _ in range(count):
        t0 = time.perf_counter()
        await dp.submit_raw("pb", raw)
        lat.append(time.perf_counter() - t0)
        await asyncio.sleep(0.0005)
    cpu_us = (time.process_time() - cpu0) / count * 1e6
    await dp.stop()
    p50, p99, p999 = np.percentile(np.array(lat[count // 10 :]) * 1e6, [50, 99, 99.9])
    return float(p50), float(p99), float(p999), cpu_us


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    print(f"{machine_description()}; code: {REPO}")
    for _ in range(args.repeat):
        for n in (64, 8192):
            up, enc = history_costs(n)
            print(f"FeatureHistory {n:5d} rows: update {up:7.1f} µs, encode {enc:7.1f} µs CPU")
        for ues, together in ((1024, 8), (64, 16)):
            cpu = asyncio.run(submitted(ues, together, args.seconds))
            print(f"data plane {ues}-UE x {together}: {cpu:6.0f} µs CPU per request")
        for thread in (True, False):
            p50, p99, p999, cpu = asyncio.run(lone_latency(thread))
            mode = "worker thread" if thread else "inline"
            print(
                f"lone 64-UE request, {mode}: p50 {p50:.0f} µs, p99 {p99:.0f}, "
                f"p99.9 {p999:.0f}; {cpu:.0f} µs CPU per request"
            )


if __name__ == "__main__":
    main()
