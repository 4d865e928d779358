"""Bare grpc.aio echo server: the same ``Decide`` method path and message sizes as the xApp,
no work (returns a pre-encoded ``DecideResponse`` for the request's UE count).

    python benchmarks/service_echo.py --port 50061 --ues 64
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.wire import encode_decide_response  # noqa: E402


async def serve(port: int, ues: int) -> None:
    response = encode_decide_response(
        1, 1, np.arange(ues, dtype=np.int32) % 28, np.ones(ues, np.uint8), "echo+000000000000"
    )

    async def decide(raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return response

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "linkadapt.v1.LinkAdaptation",
                {"Decide": grpc.unary_unary_rpc_method_handler(decide)},
            ),
        )
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("echo ready", flush=True)
    await server.wait_for_termination()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ues", type=int, default=64)
    args = p.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.port, args.ues))
    else:
        uvloop.run(serve(args.port, args.ues))


if __name__ == "__main__":
    main()
