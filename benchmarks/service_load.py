"""Load generator for the xApp benchmarks (runs in its own process).

    python benchmarks/service_load.py unary  --target 127.0.0.1:50051 --ues 1024 --concurrency 16
    python benchmarks/service_load.py stream --target 127.0.0.1:50051 --ues 64 --rate 1000
    python benchmarks/service_load.py rest   --target 127.0.0.1:8080  --ues 64 --concurrency 16

Requests are pre-serialized (one per worker; each worker is its own cell so workers never
share UEs) and sent with grpc.aio / raw asyncio HTTP/1.1 keep-alive sockets, so the
client spends as little CPU as possible. Prints one JSON object with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.proto_gen import link_adaptation_pb2 as pb  # noqa: E402

METHOD = "/linkadapt.v1.LinkAdaptation/Decide"
STREAM_METHOD = "/linkadapt.v1.LinkAdaptation/DecideStream"


def columns(n: int, seed: int) -> dict[str, list[int]]:
    rng = np.random.default_rng(seed)
    return {
        "ue_id": (np.arange(n) + 1000).tolist(),
        "cqi": rng.integers(0, 16, n).tolist(),
        "cqi_age_slots": rng.integers(-1, 20, n).tolist(),
        "harq_ack": rng.integers(-1, 2, n).tolist(),
        "harq_mcs": rng.integers(0, 28, n).tolist(),
        "rank": rng.integers(1, 5, n).tolist(),
        "n_prb": rng.integers(1, 276, n).tolist(),
        "n_symbols": rng.integers(1, 15, n).tolist(),
    }


def request_bytes(cell: int, n: int) -> bytes:
    return pb.DecideRequest(cell_id=cell, slot=1, **columns(n, cell)).SerializeToString()


async def run_unary(args: argparse.Namespace) -> dict:
    import grpc

    async with grpc.aio.insecure_channel(
        args.target, options=[("grpc.max_receive_message_length", 64 << 20)]
    ) as ch:
        call = ch.unary_unary(METHOD)  # raw bytes in / out
        reqs = [request_bytes(1 + w, args.ues) for w in range(args.concurrency)]
        for r in reqs:  # warm-up + sanity
            resp = pb.DecideResponse.FromString(await call(r, timeout=10))
            assert len(resp.mcs) == args.ues, "server returned the wrong number of decisions"
        done = 0
        stop = time.perf_counter() + args.warmup + args.seconds
        t_measure = time.perf_counter() + args.warmup
        counted = 0
        lat: list[float] = []

        async def worker(req: bytes) -> None:
            nonlocal done, counted
            while True:
                t0 = time.perf_counter()
                if t0 >= stop:
                    return
                await call(req, timeout=10)
                t1 = time.perf_counter()
                if t0 >= t_measure:
                    counted += 1
                    lat.append(t1 - t0)
                done += 1

        await asyncio.gather(*(worker(r) for r in reqs))
    return _summary("unary", args, counted, lat)


async def run_stream(args: argparse.Namespace) -> dict:
    import grpc

    async with grpc.aio.insecure_channel(args.target) as ch:
        call = ch.stream_stream(STREAM_METHOD)(timeout=args.warmup + args.seconds + 30)
        req = request_bytes(1, args.ues)
        period = 1.0 / args.rate
        total = int((args.warmup + args.seconds) * args.rate)
        n_warm = int(args.warmup * args.rate)
        sent: list[float] = []
        lat: list[float] = []

        async def reader() -> None:
            i = 0
            async for raw in call:
                t = time.perf_counter()
                if i >= n_warm:
                    lat.append(t - sent[i])
                resp = pb.DecideResponse.FromString(raw) if i == 0 else None
                if resp is not None:
                    assert len(resp.mcs) == args.ues
                i += 1
                if i == total:
                    return

        task = asyncio.create_task(reader())
        t_start = time.perf_counter()
        for k in range(total):
            target_t = t_start + k * period
            delay = target_t - time.perf_counter()
            if delay > 0:  # no busy-wait: the client must not steal the server's core
                await asyncio.sleep(delay)
            sent.append(time.perf_counter())
            await call.write(req)
        await call.done_writing()
        await task
        elapsed = time.perf_counter() - t_start
    out = _summary("stream", args, len(lat), lat)
    out["achieved_batches_per_s"] = total / elapsed
    return out


async def run_rest(args: argparse.Namespace) -> dict:
    host, port = args.target.rsplit(":", 1)
    bodies = []
    for w in range(args.concurrency):
        body = json.dumps({"cell_id": 1 + w, "slot": 1, **columns(args.ues, 1 + w)}).encode()
        head = (
            f"POST /v1/decisions HTTP/1.1\r\nHost: {args.target}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        bodies.append(head + body)
    stop = time.perf_counter() + args.warmup + args.seconds
    t_measure = time.perf_counter() + args.warmup
    counted = 0
    lat: list[float] = []

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> bytes:
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        status = head[9:12]
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await reader.readexactly(length)
        if status != b"200":
            raise RuntimeError(f"HTTP {status!r}: {body[:200]!r}")
        return body

    async def worker(req: bytes) -> None:
        nonlocal counted
        reader, writer = await asyncio.open_connection(host, int(port))
        body = await one(reader, writer, req)
        assert len(json.loads(body)["mcs"]) == args.ues
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                break
            await one(reader, writer, req)
            if t0 >= t_measure:
                counted += 1
                lat.append(time.perf_counter() - t0)
        writer.close()

    await asyncio.gather(*(worker(b) for b in bodies))
    return _summary("rest", args, counted, lat)


def _summary(mode: str, args: argparse.Namespace, n_req: int, lat: list[float]) -> dict:
    arr = np.asarray(lat) if lat else np.zeros(1)
    return {
        "mode": mode,
        "target": args.target,
        "ues_per_batch": args.ues,
        "concurrency": getattr(args, "concurrency", 1),
        "seconds": args.seconds,
        "requests": n_req,
        "requests_per_s": n_req / args.seconds if mode != "stream" else None,
        "ue_decisions_per_s": n_req * args.ues / args.seconds if mode != "stream" else None,
        "latency_p50_ms": float(np.percentile(arr, 50) * 1e3),
        "latency_p99_ms": float(np.percentile(arr, 99) * 1e3),
        "latency_p999_ms": float(np.percentile(arr, 99.9) * 1e3),
        "latency_max_ms": float(arr.max() * 1e3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["unary", "stream", "rest"])
    p.add_argument("--target", required=True)
    p.add_argument("--ues", type=int, default=64)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--rate", type=float, default=1000.0, help="stream: batches per second")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    args = p.parse_args()
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    fn = {"unary": run_unary, "stream": run_stream, "rest": run_rest}[args.mode]
    print(json.dumps(runner(fn(args))))


if __name__ == "__main__":
    main()
