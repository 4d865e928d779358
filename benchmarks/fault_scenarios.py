"""The load and fault scenarios of ``benchmarks/service_faults.py``, one async function per
scenario, against an xApp running as its own process (``ran_distill.xapp_process``).

Load comes from grpc.aio on one event loop with pre-serialized requests (``service_load``
style), each carrying its ``x-ran-cell-id``. Open-loop latency is measured from the
request's *scheduled* send time, so a client that falls behind does not hide queueing
(no coordinated omission). Server memory is the process's resident set (VmRSS).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
from fault_probes import RssSampler, ServerCounters, percentiles, rss_mb

from service.cell_affinity import CELL_ID_HEADER
from service.proto_gen import link_adaptation_pb2 as pb

DECIDE = "/linkadapt.v1.LinkAdaptation/Decide"
STREAM = "/linkadapt.v1.LinkAdaptation/DecideStream"
RELEASE = "/linkadapt.v1.LinkAdaptation/ReleaseUe"
GET_MODEL = "/linkadapt.v1.LinkAdaptation/GetModel"
ENV = {"RAN_DISTILL_LOG_LEVEL": "WARNING", "RAN_DISTILL_DRAIN_SECONDS": "0"}


def request(cell: int, ue_ids: np.ndarray, seed: int, slot: int = 1) -> bytes:
    """A valid serialized DecideRequest for ``ue_ids`` of ``cell``."""
    rng = np.random.default_rng(seed)
    n = ue_ids.shape[0]
    return pb.DecideRequest(
        cell_id=cell,
        slot=slot,
        ue_id=ue_ids.tolist(),
        cqi=rng.integers(0, 16, n).tolist(),
        cqi_age_slots=rng.integers(-1, 20, n).tolist(),
        harq_ack=rng.integers(-1, 2, n).tolist(),
        harq_mcs=rng.integers(0, 28, n).tolist(),
        rank=rng.integers(1, 5, n).tolist(),
        n_prb=rng.integers(1, 276, n).tolist(),
        n_symbols=rng.integers(1, 15, n).tolist(),
    ).SerializeToString()


def md(cell: int) -> tuple[tuple[str, str]]:
    return ((CELL_ID_HEADER, str(cell)),)


@dataclass
class Target:
    """A running xApp: its process id and gRPC address."""

    pid: int
    grpc: str
    http_port: int


# ------------------------------------------------------------------ load primitives
async def closed_loop(
    ch: grpc.aio.Channel, *, cells: int, ues: int, seconds: float, cell_base: int = 1000
) -> dict[str, Any]:
    """``cells`` workers, one request in flight each (each its own cell): capacity."""
    call = ch.unary_unary(DECIDE)
    reqs = [request(cell_base + c, np.arange(ues, dtype=np.int64), c) for c in range(cells)]
    for c, r in enumerate(reqs):  # warm-up: every cell's UEs admitted
        await call(r, metadata=md(cell_base + c), timeout=10)
    lat: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker(c: int) -> None:
        while (t0 := time.perf_counter()) < stop:
            await call(reqs[c], metadata=md(cell_base + c), timeout=10)
            lat.append(time.perf_counter() - t0)

    t_start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in range(cells)))
    elapsed = time.perf_counter() - t_start
    return {
        "requests_per_s": len(lat) / elapsed,
        "requests": len(lat),
        "ues": ues,
        "cells": cells,
        **percentiles(lat),
    }


async def open_loop(
    ch: grpc.aio.Channel,
    *,
    rate: float,
    seconds: float,
    cells: int,
    ues: int,
    timeout: float = 2.0,
    cell_base: int = 1000,
) -> dict[str, Any]:
    """Requests sent on a fixed schedule (``rate`` per second), whatever the answers."""
    call = ch.unary_unary(DECIDE)
    reqs = [request(cell_base + c, np.arange(ues, dtype=np.int64), c) for c in range(cells)]
    codes: dict[str, int] = {}
    lat: list[float] = []
    done_at: list[float] = []  # perf_counter() of each OK answer
    lag: list[float] = []  # how late the client sent (it shares the machine)
    tasks: set[asyncio.Task[None]] = set()

    async def one(k: int, t_sched: float) -> None:
        c = k % cells
        lag.append(time.perf_counter() - t_sched)
        try:
            await call(reqs[c], metadata=md(cell_base + c), timeout=timeout)
            done_at.append(now := time.perf_counter())
            lat.append(now - t_sched)
            codes["OK"] = codes.get("OK", 0) + 1
        except grpc.aio.AioRpcError as exc:
            codes[exc.code().name] = codes.get(exc.code().name, 0) + 1

    total = int(rate * seconds)
    t0 = time.perf_counter()
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - t0) * rate) + 1)
        for k in range(sent, due):
            task = asyncio.create_task(one(k, t0 + k / rate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        sent = due
        await asyncio.sleep(max(0.0, t0 + sent / rate - time.perf_counter()))
    t_end = time.perf_counter()
    if tasks:
        await asyncio.wait(tasks, timeout=timeout + 5)
    elapsed = t_end - t0
    # goodput: answers served while the load was offered, from the first answer on (the
    # OK answers of a queue that drains after the end would inflate it; the pipeline's
    # fill time before the first answer would deflate it)
    first = min(done_at, default=t_end)
    served = sum(1 for x in done_at if x <= t_end)
    return {
        "offered_per_s": total / elapsed,
        "ok_per_s": served / max(t_end - first, 1e-3),
        "codes": codes,
        "t_end": t_end,
        "client_send_lag_p99_ms": percentiles(lag)["p99_ms"],
        **percentiles(lat),
    }


async def probe_until_recovered(
    ch: grpc.aio.Channel, *, ok_ms: float, period: float = 0.02, need: int = 5, limit: float = 15
) -> float | None:
    """``perf_counter()`` time of the first of ``need`` consecutive probes answered OK
    within ``ok_ms`` (None: not within ``limit`` s). The probe is a small request of its
    own cell."""
    call = ch.unary_unary(DECIDE)
    req = request(999, np.arange(8, dtype=np.int64), 999)
    t0 = time.perf_counter()
    streak: list[float] = []
    while (now := time.perf_counter()) - t0 < limit:
        try:
            await call(req, metadata=md(999), timeout=2)
            good = (time.perf_counter() - now) * 1e3 <= ok_ms
        except grpc.aio.AioRpcError:
            good = False
        streak = [*streak, now] if good else []
        if len(streak) >= need:
            return streak[0]
        await asyncio.sleep(period)
    return None


async def call_floor(
    t: Target, ch: grpc.aio.Channel, *, seconds: float, workers: int = 32
) -> dict[str, Any]:
    """Server CPU per call of the cheapest call it answers (``GetModel``: no queue, no
    parsing), ``workers`` in flight: what any answered call costs, a shed one included."""
    call = ch.unary_unary(GET_MODEL)
    n = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal n
        while time.perf_counter() < stop:
            await call(b"", timeout=10)
            n += 1

    with ServerCounters(t.pid, t.http_port) as c:
        await asyncio.gather(*(worker() for _ in range(workers)))
    return {"calls_per_s": n / c.wall, "server_cpu_per_call_us": 1e6 * c.server_cpu / max(n, 1)}


async def idle_probe_ms(ch: grpc.aio.Channel, n: int = 30) -> float:
    """p99 latency (ms) of the small probe on an otherwise idle server."""
    call = ch.unary_unary(DECIDE)
    req = request(999, np.arange(8, dtype=np.int64), 999)
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        await call(req, metadata=md(999), timeout=2)
        lat.append(time.perf_counter() - t)
        await asyncio.sleep(0.005)
    return percentiles(lat)["p99_ms"]


# ------------------------------------------------------------------ scenarios
async def slow_reader(
    t: Target, *, seconds: float, fill_limit: float, ues: int = 64, stream_ues: int = 512
) -> dict[str, Any]:
    """A DecideStream client (``stream_ues`` per message) that writes as fast as it can
    and never reads, beside 4 closed-loop cells (``ues`` per request). Other cells' latency
    is measured while the stream is still served (until HTTP/2 flow control stops it, it
    is a busy client) and once its writes have stalled (or ``fill_limit`` passed)."""
    async with grpc.aio.insecure_channel(t.grpc) as ch:
        base = await closed_loop(ch, cells=4, ues=ues, seconds=seconds, cell_base=2000)
        rss0 = rss_mb(t.pid)
        call = ch.stream_stream(STREAM)(metadata=md(77), timeout=fill_limit + 4 * seconds + 30)
        msg = request(77, np.arange(stream_ues, dtype=np.int64), 77)
        written = 0

        async def writer() -> None:
            nonlocal written
            while True:
                await call.write(msg)
                written += 1

        w = asyncio.create_task(writer())
        with RssSampler(t.pid) as rss:
            served = await closed_loop(ch, cells=4, ues=ues, seconds=seconds, cell_base=2000)
            # until the writes stall: every buffer on the way is full (HTTP/2 flow control
            # windows both ways, the stream's in-flight bound); before that the stream is
            # just one more busy client, whose messages the server decides
            t_fill = time.perf_counter()
            last, still = -1, 0.0
            # stalled: no write went through for 1 s
            while still < 1.0 and time.perf_counter() - t_fill < fill_limit:
                await asyncio.sleep(0.1)
                still = still + 0.1 if written == last else 0.0
                last = written
            stalled = still >= 1.0
            fill_s = time.perf_counter() - t_fill - still + seconds
            parked = None  # server CPU (cores) with the stalled stream and nothing else
            if stalled:
                with ServerCounters(t.pid, t.http_port) as idle:
                    await asyncio.sleep(1.0)
                parked = idle.result()["server_cpu_per_s"]
            loaded = await closed_loop(ch, cells=4, ues=ues, seconds=seconds, cell_base=2000)
        written_during = written - last
        w.cancel()
        call.cancel()
    return {
        "writes_stalled": stalled,
        "seconds_until_writes_stall": fill_s,
        "server_cpu_while_parked": parked,
        "messages_written_during_measurement": written_during,
        "messages_written_unread": written,
        "rss_before_mb": rss0,
        "rss_peak_mb": rss.peak,
        "rss_growth_mb": rss.peak - rss0,
        "stream_ues": stream_ues,
        "baseline": base,
        "while_stream_served": served,
        "with_slow_reader": loaded,
    }


async def overload(
    t: Target, *, seconds: float, ues: int = 1024, cells: int = 32
) -> dict[str, Any]:
    """Capacity (closed loop, enough requests in flight to saturate the micro-batching
    worker), then 3x capacity open loop: goodput, p99 of the accepted, and the time until
    a probe is answered as fast as on an idle server again. Large batches keep the request
    rate within what one Python client can send."""
    async with grpc.aio.insecure_channel(t.grpc) as ch:
        idle = await idle_probe_ms(ch)
        floor = await call_floor(t, ch, seconds=min(seconds, 2.0))
        with ServerCounters(t.pid, t.http_port) as c_cap:
            cap = await closed_loop(ch, cells=cells, ues=ues, seconds=seconds)
        cap.update(c_cap.result())
        served_us = 1e6 * c_cap.server_cpu / max(cap["requests"], 1)
        capacity = cap["requests_per_s"]

        async def measured_overload() -> dict[str, Any]:
            with ServerCounters(t.pid, t.http_port) as c:
                res = await open_loop(ch, rate=3 * capacity, seconds=seconds, cells=cells, ues=ues)
            return {**res, **c.result()}

        async def probe_after_overload() -> float | None:
            await asyncio.sleep(seconds)  # the open loop sends for that long
            return await probe_until_recovered(ch, ok_ms=3 * idle + 1.0)

        over, recovered_at = await asyncio.gather(measured_overload(), probe_after_overload())
    t_end = over.pop("t_end")
    # every call the server answers costs it at least the call floor (gRPC's own work):
    # with 2 of every 3 calls shed at 3x capacity, goodput can reach at most this fraction
    # of capacity, however cheap the shed path of the handler itself is
    ceiling = max(0.0, 1 - 2 * floor["server_cpu_per_call_us"] / served_us)
    return {
        "capacity": cap,
        "overload": over,
        "call_floor": floor,
        "served_cpu_per_call_us": served_us,
        "goodput_ceiling_at_3x": ceiling,
        "goodput_vs_capacity": over["ok_per_s"] / capacity,
        "idle_probe_p99_ms": idle,
        # from the last overload request sent to a probe as fast as on the idle server
        "recovery_s": None if recovered_at is None else max(0.0, recovered_at - t_end),
    }


async def ue_churn(
    t: Target, *, distinct: int, cells: int = 8, active: int = 1024, turnover: int = 128
) -> dict[str, Any]:
    """``distinct`` UE ids pass through: every cell keeps ``active`` UEs, and per step
    releases its ``turnover`` oldest and admits as many new ones."""
    rounds = max(1, (distinct - cells * active) // (cells * turnover))
    async with grpc.aio.insecure_channel(t.grpc) as ch:
        decide, release = ch.unary_unary(DECIDE), ch.unary_unary(RELEASE)
        seen = 0

        async def cell_loop(c: int) -> None:
            nonlocal seen
            cell = 3000 + c
            ues = np.arange(active, dtype=np.int64)
            next_id = active
            seen += active
            for r in range(rounds):
                await decide(request(cell, ues, r, slot=r + 1), metadata=md(cell), timeout=10)
                gone, ues = (
                    ues[:turnover],
                    np.concatenate(
                        [ues[turnover:], np.arange(next_id, next_id + turnover, dtype=np.int64)]
                    ),
                )
                next_id += turnover
                seen += turnover
                msg = pb.ReleaseUeRequest(cell_id=cell, ue_id=gone.tolist())
                await release(msg.SerializeToString(), metadata=md(cell), timeout=10)

        with RssSampler(t.pid, period=0.25) as rss:
            t0 = time.perf_counter()
            await asyncio.gather(*(cell_loop(c) for c in range(cells)))
            elapsed = time.perf_counter() - t0
    series = [v for _, v in rss.samples]
    early = series[max(1, len(series) // 10) - 1]
    return {
        "distinct_ues": seen,
        "seconds": elapsed,
        "ues_per_s": seen / elapsed,
        "rss_at_10pct_mb": early,
        "rss_end_mb": series[-1],
        "rss_peak_mb": rss.peak,
        "rss_growth_after_10pct": series[-1] / early - 1,
    }


async def soak(
    t: Target, *, seconds: float, rate: float, cells: int = 16, ues: int = 256
) -> dict[str, Any]:
    """Open loop at ``rate`` (about 80 % of capacity) for ``seconds``; RSS every second."""
    async with grpc.aio.insecure_channel(t.grpc) as ch:
        with RssSampler(t.pid, period=1.0) as rss, ServerCounters(t.pid, t.http_port) as c:
            res = await open_loop(
                ch, rate=rate, seconds=seconds, cells=cells, ues=ues, cell_base=4000
            )
    res.pop("t_end")
    res.update(c.result())
    series = [v for _, v in rss.samples]
    start = series[max(1, len(series) // 10) - 1]  # after warm-up (the first 10 %)
    res.update(
        seconds=seconds,
        rss_after_warmup_mb=start,
        rss_end_mb=series[-1],
        rss_peak_mb=rss.peak,
        rss_growth=series[-1] / start - 1,
    )
    return res
