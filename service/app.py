"""One process, both protocols: the data plane + gRPC server + REST server on one asyncio
event loop, with graceful shutdown.

Start-up: load/validate/warm up the model (or confirm OLLA fallback) → start gRPC and
HTTP → report ready (gRPC health SERVING, ``/ric/v1/health/ready`` 200), unless
``require_model`` is set and no validated model loaded: then both say not ready until one
loads (hot reload or the admin call).
SIGTERM/SIGINT: report not ready (health NOT_SERVING, ready 503) while still serving for
``drain_seconds`` so load balancers stop routing here, then stop accepting and let
in-flight requests finish (grace ``drain_seconds``), then exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Iterator

import uvicorn

from service.authz import NO_CLIENT_CERTIFICATE, denied_counter, load_guard
from service.config import Settings
from service.dataplane import DataPlane
from service.grpc_server import GrpcFrontend
from service.rest import FastDecisions, create_rest_app
from service.tls import AsgiApp, ClientCertGate, load_server_tls

log = logging.getLogger("service.app")


class _UvicornServer(uvicorn.Server):
    """uvicorn without its own signal handling (the xApp owns SIGTERM)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class XApp:
    """The whole service; ``await start()``, then ``await shutdown()`` (or ``run()``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dataplane = DataPlane(settings)
        # ran_distill_denied_requests_total, exported (at zero) with or without TLS
        self.denied = denied_counter(self.dataplane.metrics.registry)
        self.grpc: GrpcFrontend | None = None
        self.http: _UvicornServer | None = None
        self.rest_app: FastDecisions | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None
        self.grpc_port = 0
        self.http_port = 0
        self._stop = asyncio.Event()

    async def start(self) -> None:
        s = self.settings
        # certificate and authorization files first: a bad one stops the start (ConfigError)
        tls = load_server_tls(
            s.tls_cert_file, s.tls_key_file, s.tls_client_ca_file, s.tls_require_client_cert
        )
        guard = load_guard(s.authz_cells_file, self.denied)
        await self.dataplane.start()
        self.grpc = GrpcFrontend(
            self.dataplane,
            host=s.host,
            port=s.grpc_port,
            max_message_bytes=s.grpc_max_message_bytes,
            admin_token=s.admin_token,
            reflection_enabled=s.grpc_reflection_enabled,
            credentials=tls.grpc_credentials() if tls else None,
            guard=guard,
        )
        self.grpc_port = self.grpc.port
        await self.grpc.start()
        family = socket.AF_INET6 if ":" in s.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((s.host, s.http_port))
        sock.listen(1024)
        sock.setblocking(False)
        self._sock = sock
        self.http_port = sock.getsockname()[1]
        self.rest_app = create_rest_app(self.dataplane, s.admin_token, guard)
        asgi: AsgiApp = self.rest_app
        if tls is not None and tls.require_client_cert:
            asgi = ClientCertGate(asgi, self.denied.labels("rest", NO_CLIENT_CERTIFICATE).inc)
        config = uvicorn.Config(
            asgi,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=max(1, int(s.drain_seconds + 0.999)),
            server_header=False,
            # connections + in-flight requests beyond this are answered 503 by uvicorn
            # itself, before any of our code runs
            limit_concurrency=s.http_limit_concurrency,
            timeout_keep_alive=s.http_keep_alive_seconds,
            # HTTPS (and the client certificate's identities in the ASGI scope) with TLS
            **(tls.uvicorn_options() if tls is not None else {}),
        )
        self.http = _UvicornServer(config)
        self._http_task = asyncio.create_task(self.http.serve(sockets=[sock]), name="http")
        for _ in range(500):  # bounded wait (≤ 5 s) for uvicorn's startup
            if self.http.started or self._http_task.done():
                break
            await asyncio.sleep(0.01)
        if not self.http.started:
            if self._http_task.done():
                self._http_task.result()
            raise RuntimeError("HTTP server did not start")
        await self.grpc.set_serving(self.dataplane.ready)
        log.info(
            "xApp serving",
            extra={
                "grpc_port": self.grpc_port,
                "http_port": self.http_port,
                "host": s.host,
                "ready": self.dataplane.readiness(),
            },
        )

    def request_stop(self) -> None:
        """Signal handler target: begin graceful shutdown."""
        self._stop.set()

    async def wait_stopped(self) -> None:
        await self._stop.wait()

    async def shutdown(self) -> None:
        """Not ready → drain period → stop accepting, finish in-flight → stop."""
        drain = self.settings.drain_seconds
        log.info("draining", extra={"drain_seconds": drain})
        self.dataplane.begin_drain()
        if self.grpc is not None:
            await self.grpc.set_serving(False)
        if drain > 0:
            await asyncio.sleep(drain)
        if self.grpc is not None:
            await self.grpc.stop(grace=drain)
        if self.http is not None:
            self.http.should_exit = True
        await self.dataplane.wait_idle(timeout=drain + 1.0)
        if self._http_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._http_task, timeout=drain + 5.0)
        await self.dataplane.stop()
        log.info("stopped")

    async def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, shut down gracefully."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        await self.wait_stopped()
        await self.shutdown()


def run(settings: Settings) -> None:
    """Blocking entry point (CLI): uvloop when installed, else asyncio."""
    from service.logs import configure_logging

    configure_logging(settings.log_level)
    # The inference worker and the event loop share the GIL: switch often so neither
    # waits the default 5 ms for the other.
    sys.setswitchinterval(1e-4)
    try:
        import uvloop
    except ImportError:
        asyncio.run(XApp(settings).run())
    else:
        uvloop.run(XApp(settings).run())
