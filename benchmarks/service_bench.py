"""xApp service benchmarks: the load generator runs in a separate process.

    .venv/bin/python benchmarks/service_bench.py [--model DIR] [--seconds 5] [--repeat N] [--write]

Starts the xApp (``python -m service serve``, default settings) and a bare grpc.aio echo
server (``benchmarks/service_echo.py``) as subprocesses on loopback, then runs
``benchmarks/service_load.py`` (one process per scenario):

1. gRPC unary ``Decide``, 1024-UE batches (target >= 1 M UE decisions/s), and the echo
   server answering the same 1024-UE requests in the same run (the ratio is reported);
2. gRPC unary, 64-UE batches, xApp vs the echo server in the same run, alternating 3
   times (median pair reported; target >= 50 %);
3. gRPC ``DecideStream``, 64-UE batches paced at 1000 batches/s (target p99 <= 1 ms; p99.9
   reported);
4. REST ``POST /v1/decisions``, 64-UE batches (target >= 300 k UE decisions/s).

Without ``--model`` a tiny MLP student (``tests/service/service_testing.py``) is written to
a temp dir (``models/default`` is used when it exists). ``--write`` replaces the "xApp
service" section of BENCHMARKS.md (only that section; the file is re-read right before).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks_common import cpu_model, cpu_seconds
from ran_distill.xapp_process import free_port, wait_ready

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
SECTION_START = "<!-- section:xapp-service:start -->"
SECTION_END = "<!-- section:xapp-service:end -->"


def machine_info() -> dict[str, Any]:
    import grpc
    import onnxruntime

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "onnxruntime": onnxruntime.__version__,
        "loadavg_1m_before": os.getloadavg()[0],
    }


def load(
    mode: str, target: str, *extra: str, seconds: float, server_pid: int | None = None
) -> dict[str, Any]:
    """Run the load generator; with ``server_pid`` also the server's CPU µs per request
    (robust to background load, unlike throughput)."""
    warmup = ["--warmup", "0"] if server_pid else []  # CPU accounting counts every request
    cmd = [
        PY,
        str(REPO / "benchmarks" / "service_load.py"),
        mode,
        "--target",
        target,
        "--seconds",
        str(seconds),
        *warmup,
        *extra,
    ]
    c0 = cpu_seconds(server_pid) if server_pid else 0.0
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, cwd=REPO)
    c1 = cpu_seconds(server_pid) if server_pid else 0.0
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr[-2000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if server_pid and res.get("requests"):
        # with --warmup 0 every request (plus one sanity request per worker) is counted
        n = res["requests"] + int(res.get("concurrency") or 1)
        res["server_cpu_us_per_request"] = (c1 - c0) / n * 1e6
    return res


def run(model: Path, seconds: float) -> dict[str, Any]:
    gport, hport, eport = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAN_DISTILL_")}
    env.pop("CONFIG_FILE", None)
    env.update(
        RAN_DISTILL_LOG_LEVEL="WARNING",
        RAN_DISTILL_RELOAD_POLL_SECONDS="0",
        RAN_DISTILL_DRAIN_SECONDS="0",
    )
    xapp = subprocess.Popen(
        [
            PY,
            "-m",
            "service",
            "serve",
            "--model",
            str(model),
            "--grpc-port",
            str(gport),
            "--http-port",
            str(hport),
            "--host",
            "127.0.0.1",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    eport_1024 = free_port()
    echo, echo_1024 = (
        subprocess.Popen(
            [PY, str(REPO / "benchmarks" / "service_echo.py"), "--port", str(port), "--ues", ues],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for port, ues in ((eport, "64"), (eport_1024, "1024"))
    )
    try:
        wait_ready(hport, proc=xapp)  # type: ignore[arg-type]  # text-mode pipes
        model_info = httpx.get(f"http://127.0.0.1:{hport}/v1/model").json()
        if not model_info["loaded"]:
            raise RuntimeError(f"model not loaded: {model_info['last_reload_error']}")
        grpc_t, rest_t, echo_t = f"127.0.0.1:{gport}", f"127.0.0.1:{hport}", f"127.0.0.1:{eport}"
        res: dict[str, Any] = {"machine": machine_info(), "model": model_info["version"]}
        res["grpc_1024"] = load(
            "unary",
            grpc_t,
            "--ues",
            "1024",
            "--concurrency",
            "8",
            seconds=seconds,
            server_pid=xapp.pid,
        )
        res["echo_1024"] = load(
            "unary",
            f"127.0.0.1:{eport_1024}",
            "--ues",
            "1024",
            "--concurrency",
            "8",
            seconds=seconds,
            server_pid=echo_1024.pid,
        )
        # xApp and echo alternate (3 pairs) so both see the same background load
        pairs = []
        for _ in range(3):
            x = load(
                "unary",
                grpc_t,
                "--ues",
                "64",
                "--concurrency",
                "16",
                seconds=seconds,
                server_pid=xapp.pid,
            )
            e = load(
                "unary",
                echo_t,
                "--ues",
                "64",
                "--concurrency",
                "16",
                seconds=seconds,
                server_pid=echo.pid,
            )
            pairs.append((x, e, x["requests_per_s"] / e["requests_per_s"]))
        pairs.sort(key=lambda p: p[2])
        res["grpc_64"], res["echo_64"], _ = pairs[1]  # the median pair
        res["ratios_64_vs_echo"] = [p[2] for p in pairs]
        # the stream keeps its 1 s warm-up (not counted in the latencies); the server's CPU
        # is taken over every message sent, warm-up included
        c0 = cpu_seconds(xapp.pid)
        res["stream_64"] = load("stream", grpc_t, "--ues", "64", "--rate", "1000", seconds=seconds)
        sent = (seconds + 1.0) * 1000
        res["stream_64"]["server_cpu_us_per_request"] = (cpu_seconds(xapp.pid) - c0) / sent * 1e6
        res["rest_64"] = load("rest", rest_t, "--ues", "64", "--concurrency", "16", seconds=seconds)
        res["ratio_64_vs_echo"] = pairs[1][2]
        xc = sorted(p[0]["server_cpu_us_per_request"] for p in pairs)[1]
        ec = sorted(p[1]["server_cpu_us_per_request"] for p in pairs)[1]
        res["cpu_us_64"] = {"xapp": xc, "echo": ec, "ratio": ec / xc}
        metrics = httpx.get(f"http://127.0.0.1:{hport}/metrics").text
        res["mean_requests_per_inference"] = _ratio(
            metrics,
            "ran_distill_inference_batch_requests_sum",
            "ran_distill_inference_batch_requests_count",
        )
        res["machine"]["loadavg_1m_after"] = os.getloadavg()[0]
        return res
    finally:
        for p in (xapp, echo, echo_1024):
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


def dataplane_only(model: Path, ues: int, concurrency: int, seconds: float) -> dict[str, Any]:
    """The data plane alone, in this process (no transport): parse a pre-serialized
    request, validate, admit, micro-batch, encode, infer, serialize the response, with
    ``concurrency`` requests submitted together. Attributes cost between transport and
    data plane; not a substitute for the end-to-end rows."""
    import asyncio

    from service.config import load_settings
    from service.dataplane import DataPlane
    from service.proto_gen import link_adaptation_pb2 as pb
    from service.wire import encode_decide_response, request_columns

    sys.path.insert(0, str(REPO / "benchmarks"))
    from service_load import columns  # noqa: PLC0415

    async def main() -> dict[str, Any]:
        dp = DataPlane(load_settings(model_dir=model, reload_poll_seconds=0))
        await dp.start()
        raws = [
            pb.DecideRequest(cell_id=c + 1, slot=1, **columns(ues, c + 1)).SerializeToString()
            for c in range(concurrency)
        ]

        async def one(raw: bytes) -> bytes:
            msg = pb.DecideRequest.FromString(raw)
            res = await dp.decide(msg.cell_id, msg.slot, msg.mcs_table, request_columns(msg))
            return encode_decide_response(
                res.cell_id, res.slot, res.mcs, res.source, res.model_version
            )

        for _ in range(20):
            await asyncio.gather(*(one(r) for r in raws))
        n = 0
        t0, c0 = time.perf_counter(), time.process_time()
        while time.perf_counter() - t0 < seconds:
            await asyncio.gather(*(one(r) for r in raws))
            n += concurrency
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        await dp.stop()
        return {
            "ues_per_batch": ues,
            "concurrency": concurrency,
            "requests": n,
            "ue_decisions_per_s": n * ues / wall,
            "cpu_us_per_request": cpu / n * 1e6,
            "ue_decisions_per_cpu_s": n * ues / cpu,
        }

    return asyncio.run(main())


def _ratio(text: str, num: str, den: str) -> float:
    vals = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in (num, den):
            vals[parts[0]] = float(parts[1])
    return vals.get(num, 0.0) / max(vals.get(den, 0.0), 1.0)


def run_table(res: dict[str, Any], k: int) -> list[str]:
    m = res["machine"]
    g1, g64, e64, e1 = res["grpc_1024"], res["grpc_64"], res["echo_64"], res["echo_1024"]
    st, rest = res["stream_64"], res["rest_64"]

    def ok(cond: bool) -> str:
        return "met" if cond else "**not met**"

    rows = [
        (
            "gRPC unary, 1024-UE batches (8 in flight)",
            f"{g1['ue_decisions_per_s'] / 1e6:.3f} M UE decisions/s "
            f"({g1['requests_per_s']:.0f} req/s, p99 {g1['latency_p99_ms']:.1f} ms; server CPU "
            f"{g1['server_cpu_us_per_request']:.0f} µs/request = "
            f"{1024 / g1['server_cpu_us_per_request']:.2f} M UE decisions per CPU-second); "
            f"bare echo on the same 1024-UE requests {e1['ue_decisions_per_s'] / 1e6:.3f} M "
            f"UE/s ({e1['server_cpu_us_per_request']:.0f} µs CPU/request) → xApp "
            f"**{100 * g1['ue_decisions_per_s'] / e1['ue_decisions_per_s']:.0f} %** of echo",
            ">= 1 M/s",
            ok(g1["ue_decisions_per_s"] >= 1e6)
            + (
                ""
                if g1["ue_decisions_per_s"] >= 1e6
                else f" (by {1 - g1['ue_decisions_per_s'] / 1e6:.0%})"
            ),
        ),
        (
            "gRPC unary, 64-UE batches (16 in flight)",
            f"{g64['requests_per_s']:.0f} req/s = {g64['ue_decisions_per_s'] / 1e3:.0f} k UE/s; "
            f"bare echo {e64['requests_per_s']:.0f} req/s → "
            f"**{100 * res['ratio_64_vs_echo']:.0f} %** "
            f"(median of 3 alternating pairs: "
            f"{', '.join(f'{100 * r:.0f} %' for r in res['ratios_64_vs_echo'])}); server CPU "
            f"per request (median): xApp {res['cpu_us_64']['xapp']:.0f} µs, echo "
            f"{res['cpu_us_64']['echo']:.0f} µs → {100 * res['cpu_us_64']['ratio']:.0f} %",
            ">= 50 % of echo",
            ok(res["ratio_64_vs_echo"] >= 0.5),
        ),
        (
            "gRPC DecideStream, 64-UE batches at 1000/s",
            f"p50 {st['latency_p50_ms']:.2f} ms, **p99 {st['latency_p99_ms']:.2f} ms**, "
            f"p99.9 {st['latency_p999_ms']:.2f} ms, achieved "
            f"{st['achieved_batches_per_s']:.0f} batches/s; server CPU "
            f"{st['server_cpu_us_per_request']:.0f} µs per message",
            "p99 <= 1 ms",
            ok(st["latency_p99_ms"] <= 1.0 and st["achieved_batches_per_s"] >= 950),
        ),
        (
            "data plane alone (in-process, no transport), 1024-UE batches x 8",
            f"{res['dataplane_1024']['ue_decisions_per_s'] / 1e6:.2f} M UE/s wall, "
            f"{res['dataplane_1024']['cpu_us_per_request']:.0f} µs CPU per request",
            "-",
            "info",
        ),
        (
            "data plane alone (in-process, no transport), 64-UE batches x 16",
            f"{res['dataplane_64']['ue_decisions_per_s'] / 1e3:.0f} k UE/s wall, "
            f"{res['dataplane_64']['cpu_us_per_request']:.0f} µs CPU per request",
            "-",
            "info",
        ),
        (
            "REST POST /v1/decisions, 64-UE batches (16 connections)",
            f"{rest['ue_decisions_per_s'] / 1e3:.0f} k UE decisions/s "
            f"({rest['requests_per_s']:.0f} "
            f"req/s, p99 {rest['latency_p99_ms']:.1f} ms)",
            ">= 300 k/s",
            ok(rest["ue_decisions_per_s"] >= 3e5),
        ),
    ]
    return [
        f"**Run {k}** — 1-min load average {m['loadavg_1m_before']:.1f} before, "
        f"{m['loadavg_1m_after']:.1f} after; mean requests per inference call "
        f"{res['mean_requests_per_inference']:.2f}.",
        "",
        "| scenario | measured | target | |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
        "",
    ]


def render(runs: list[dict[str, Any]], command: str) -> str:
    m = runs[0]["machine"]
    lines = [
        SECTION_START,
        "## xApp service",
        "",
        f"Command: `{command}` (load generator `benchmarks/service_load.py` in a separate "
        "process per scenario; xApp started with default settings: 1 onnxruntime thread, "
        "micro-batch 8192 UEs / 200 µs, inference worker thread).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, shared by the xApp, the load generator "
        f"and whatever else ran on the box (see the load averages: other sessions' jobs were "
        f"running, so numbers vary run to run); Python {m['python']}, grpcio {m['grpcio']}, "
        f"onnxruntime {m['onnxruntime']}. Model: `{runs[0]['model']}` "
        f"({runs[0].get('model_source', '')}).",
        "",
    ]
    for k, res in enumerate(runs, 1):
        lines += run_table(res, k)
    lines.append(SECTION_END)
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace (or append) only the xApp section; the file is re-read right before."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(SECTION_START) + r".*?" + re.escape(SECTION_END) + r"\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    p.add_argument("--repeat", type=int, default=1, help="independent runs (one table each)")
    p.add_argument("--json", type=Path, default=None, help="also write raw results here")
    args = p.parse_args()
    model = args.model
    tmp = None
    if model is None:
        default = REPO / "models" / "default"
        if (default / "manifest.json").exists():
            model = default
        else:
            sys.path.insert(0, str(REPO / "tests" / "service"))
            from service_testing import write_model_dir

            tmp = tempfile.TemporaryDirectory()
            model = write_model_dir(Path(tmp.name) / "student", hidden=(32, 32, 32))
    runs = []
    for _ in range(args.repeat):
        res = run(model, args.seconds)
        res["model_source"] = (
            "the shipped models/default student"
            if tmp is None and args.model is None
            else "a random 3x32-MLP test model, models/default absent"
            if tmp is not None
            else str(model)
        )
        res["dataplane_1024"] = dataplane_only(model, 1024, 8, min(args.seconds, 3.0))
        res["dataplane_64"] = dataplane_only(model, 64, 16, min(args.seconds, 3.0))
        runs.append(res)
    command = "python benchmarks/service_bench.py " + " ".join(sys.argv[1:])
    section = render(runs, command.strip())
    print(section)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))
    if args.write:
        write_section(REPO / "BENCHMARKS.md", section)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
