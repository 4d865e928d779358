"""gRPC adapter (grpc.aio): ``linkadapt.v1.LinkAdaptation`` over the data plane, plus the
standard ``grpc.health.v1`` health service and (``grpc_reflection_enabled``) server
reflection.

Handlers receive raw bytes (no generated deserializer) so a malformed protobuf is an
``INVALID_ARGUMENT`` naming ``request`` rather than grpc's generic ``INTERNAL``, and the
hot-path response is written by :mod:`service.wire`.

Status codes: INVALID_ARGUMENT (status message ``"<field>: <reason>"`` and trailing
metadata ``invalid-field: <field>``), RESOURCE_EXHAUSTED (tracked-UE cap; admission bound
reached, i.e. shed; messages above ``grpc_max_message_bytes`` are refused by grpc itself
with the same code), UNAVAILABLE, DEADLINE_EXCEEDED (deadline already passed on arrival or
while queued, or a slot more than ``max_slot_lag`` behind its cell's newest: nothing is
changed), UNAUTHENTICATED / PERMISSION_DENIED (admin ``ReloadModel``).

``DecideStream`` reads at most ``stream_max_in_flight`` messages ahead of its responses.
The ``x-ran-cell-id`` metadata (the cell-affine routing key, :mod:`service.cell_affinity`),
when sent, must name the message's ``cell_id`` (a stream's applies to all its messages).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from service.cell_affinity import (
    CELL_ID_HEADER,
    CellHeaderError,
    grpc_cell_header,
    mismatch_message,
)
from service.dataplane import (
    DEADLINE_EXCEEDED,
    INVALID_ARGUMENT,
    OVERLOADED,
    PERMISSION_DENIED,
    RESOURCE_EXHAUSTED,
    SHED_CODES,
    STALE,
    UNAUTHENTICATED,
    UNAVAILABLE,
    DataPlane,
    RequestError,
)
from service.proto_gen import link_adaptation_pb2 as pb

log = logging.getLogger("service.grpc")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["LinkAdaptation"].full_name
STATUS = {
    INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    OVERLOADED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    STALE: grpc.StatusCode.DEADLINE_EXCEEDED,  # the decision would come too late to use
}
RPC_CODES = {  # google.rpc.Code values for DecideError.code
    INVALID_ARGUMENT: 3,
    DEADLINE_EXCEEDED: 4,
    STALE: 4,
    RESOURCE_EXHAUSTED: 8,
    OVERLOADED: 8,
    UNAVAILABLE: 14,
}
# Server keepalive: ping idle connections so a vanished gNB's streams are torn down, and
# accept the client keepalive pings of service.client (every 30 s) without GOAWAY.
KEEPALIVE_OPTIONS = [
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


def model_info_message(info: dict[str, Any]) -> Any:
    return pb.ModelInfo(**info)


class LinkAdaptationService:
    """The servicer; every method is a thin translation to/from :class:`DataPlane`."""

    def __init__(self, dataplane: DataPlane, admin_token: str | None) -> None:
        self.dp = dataplane
        self.admin_token = admin_token
        m = dataplane.metrics
        self._req = {
            name: m.requests.labels("grpc", name)
            for name in (
                "Decide",
                "DecideStream",
                "ReportOutcome",
                "ReleaseUe",
                "GetModel",
                "ReloadModel",
            )
        }

    # ---------------------------------------------------------------- helpers
    def _invalid(self, exc: RequestError) -> None:
        if exc.code not in SHED_CODES:  # shed requests are counted in shed_requests_total
            self.dp.metrics.invalid_requests.labels("grpc", exc.reason, exc.field).inc()

    async def _abort(self, context: grpc.aio.ServicerContext, exc: RequestError) -> None:
        self._invalid(exc)
        code = STATUS.get(exc.code, grpc.StatusCode.INTERNAL)
        trailer = () if exc.code in SHED_CODES else (("invalid-field", exc.field),)
        await context.abort(code, f"{exc.field}: {exc.message}", trailer)

    @staticmethod
    def _parse(cls: Any, raw: bytes) -> Any:
        try:
            return cls.FromString(raw)
        except (DecodeError, RuntimeError) as exc:
            raise RequestError(
                INVALID_ARGUMENT, "request", f"malformed {cls.__name__} ({exc})", "malformed"
            ) from None

    async def _check_deadline(self, context: grpc.aio.ServicerContext) -> float | None:
        """Abort if the deadline already passed (counted as shed, reason "deadline");
        else the deadline as a perf_counter() time (None: no deadline), so the worker can
        drop the request if it expires while queued."""
        remaining = context.time_remaining()
        if remaining is None:
            return None
        if remaining <= 0:
            self.dp.count_shed("deadline")
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed on arrival")
        return time.perf_counter() + remaining

    async def _cell_hint(self, context: grpc.aio.ServicerContext) -> int | None:
        """The ``x-ran-cell-id`` metadata (None when absent); aborts when malformed."""
        try:
            return grpc_cell_header(context.invocation_metadata())
        except CellHeaderError as exc:
            await self._abort(
                context, RequestError(INVALID_ARGUMENT, CELL_ID_HEADER, str(exc), "malformed")
            )
            raise AssertionError("unreachable") from None

    async def _check_cell(self, context: grpc.aio.ServicerContext, cell_id: int) -> None:
        """Abort when the routing metadata names another cell than the message."""
        hint = await self._cell_hint(context)
        if hint is not None and hint != cell_id:
            await self._abort(
                context,
                RequestError(
                    INVALID_ARGUMENT, "cell_id", mismatch_message(hint, cell_id), "cell_mismatch"
                ),
            )

    # ---------------------------------------------------------------- RPCs
    async def decide(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        t0 = time.perf_counter()
        self._req["Decide"].inc()
        deadline = await self._check_deadline(context)
        hint = await self._cell_hint(context)
        try:
            res = await self.dp.submit_raw("pb", raw, deadline, hint)
        except RequestError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from None
        self.dp.observe_total(time.perf_counter() - t0)
        assert res.wire is not None
        return res.wire

    async def decide_stream(
        self, request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        """One response per request message, in order; a bad message gets an in-stream
        error and the stream stays open.

        A reader task submits messages ahead of the responses (message k+1 is parsed and
        validated while k is being decided), but at most ``stream_max_in_flight`` messages
        are read and not yet answered: at the bound the reader stops reading, so the
        messages of a client that writes without reading wait in gRPC's HTTP/2 flow
        control (its window, then the client's own send buffer), not in our memory.
        """
        counter = self._req["DecideStream"]
        dp = self.dp
        hint = await self._cell_hint(context)  # one cell per stream when given
        slots = asyncio.Semaphore(dp.settings.stream_max_in_flight)
        # bounded by the semaphore: never more than stream_max_in_flight entries
        pending: asyncio.Queue[tuple[float, bytes, asyncio.Future[Any]] | None] = asyncio.Queue()
        n_pending = 0  # read, not yet answered (this stream)

        async def reader() -> None:
            nonlocal n_pending
            it = request_iterator.__aiter__()
            try:
                while True:
                    await slots.acquire()  # wait for a free place *before* reading
                    try:
                        raw = await it.__anext__()
                    except StopAsyncIteration:
                        return
                    counter.inc()
                    n_pending += 1
                    dp.stream_pending += 1
                    dp.stream_pending_peak = max(dp.stream_pending_peak, n_pending)
                    pending.put_nowait(
                        (time.perf_counter(), raw, dp.submit_raw("pb", raw, None, hint))
                    )
            finally:
                pending.put_nowait(None)

        dp.open_streams += 1
        task = asyncio.create_task(reader())
        try:
            while (entry := await pending.get()) is not None:
                t0, raw, fut = entry
                try:
                    yield await self._stream_response(raw, fut)
                finally:  # answered (or the stream is going away): free its place
                    n_pending -= 1
                    dp.stream_pending -= 1
                    slots.release()
                self.dp.observe_total(time.perf_counter() - t0)
            task.result()  # surface reader errors (e.g. cancelled stream)
        finally:
            if not task.done():
                task.cancel()
            while not pending.empty():  # read but never answered: nobody awaits them
                left = pending.get_nowait()
                if left is not None:
                    left[2].add_done_callback(_retrieve)
            dp.stream_pending -= n_pending
            n_pending = 0
            dp.open_streams -= 1

    async def _stream_response(self, raw: bytes, fut: asyncio.Future[Any]) -> bytes:
        """The serialized DecideResponse of one stream message: decisions or an error."""
        try:
            res = await fut
        except RequestError as exc:
            self._invalid(exc)
            cell_id = slot = 0
            try:  # echo the slot back when the message parses at all
                msg = pb.DecideRequest.FromString(raw)
                cell_id, slot = msg.cell_id, msg.slot
            except (DecodeError, RuntimeError):
                pass
            err = pb.DecideError(
                code=RPC_CODES.get(exc.code, 13), field=exc.field, message=exc.message
            )
            return pb.DecideResponse(cell_id=cell_id, slot=slot, error=err).SerializeToString()
        assert res.wire is not None
        return res.wire

    async def report_outcome(self, raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        self._req["ReportOutcome"].inc()
        await self._check_deadline(context)
        try:
            msg = self._parse(pb.OutcomeReport, raw)
            await self._check_cell(context, msg.cell_id)
            cols = {
                "ue_id": msg.ue_id,
                "delivered_bits": msg.delivered_bits,
                "first_tx_ack": msg.first_tx_ack,
                "mcs": msg.mcs,
            }
            n = self.dp.report_outcome(msg.cell_id, msg.slot, cols, msg.slot_duration_us)
        except RequestError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from None
        return pb.OutcomeAck(accepted=n)

    async def release_ue(self, raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        self._req["ReleaseUe"].inc()
        await self._check_deadline(context)
        try:
            msg = self._parse(pb.ReleaseUeRequest, raw)
            await self._check_cell(context, msg.cell_id)
            n = await self.dp.release(msg.cell_id, list(msg.ue_id))
        except RequestError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from None
        return pb.ReleaseUeResponse(released=n)

    async def get_model(self, raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        self._req["GetModel"].inc()
        return model_info_message(self.dp.model_info())

    async def reload_model(self, raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        self._req["ReloadModel"].inc()
        if not self.admin_token:
            await self._abort(
                context,
                RequestError(
                    PERMISSION_DENIED, "authorization", "admin_token not configured", "unauthorized"
                ),
            )
        md = dict(context.invocation_metadata() or ())
        auth = md.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not token or not hmac.compare_digest(token.encode(), str(self.admin_token).encode()):
            await self._abort(
                context,
                RequestError(
                    UNAUTHENTICATED,
                    "authorization",
                    "missing or wrong bearer token",
                    "unauthorized",
                ),
            )
        ok, error = await self.dp.reload_model()
        return pb.ReloadModelResponse(
            ok=ok, error=error, model=model_info_message(self.dp.model_info())
        )

    def generic_handler(self) -> grpc.GenericRpcHandler:
        ser = {
            "ReportOutcome": pb.OutcomeAck.SerializeToString,
            "ReleaseUe": pb.ReleaseUeResponse.SerializeToString,
            "GetModel": pb.ModelInfo.SerializeToString,
            "ReloadModel": pb.ReloadModelResponse.SerializeToString,
        }
        handlers = {
            "Decide": grpc.unary_unary_rpc_method_handler(self.decide),
            "DecideStream": grpc.stream_stream_rpc_method_handler(self.decide_stream),
            "ReportOutcome": grpc.unary_unary_rpc_method_handler(
                self.report_outcome, response_serializer=ser["ReportOutcome"]
            ),
            "ReleaseUe": grpc.unary_unary_rpc_method_handler(
                self.release_ue, response_serializer=ser["ReleaseUe"]
            ),
            "GetModel": grpc.unary_unary_rpc_method_handler(
                self.get_model, response_serializer=ser["GetModel"]
            ),
            "ReloadModel": grpc.unary_unary_rpc_method_handler(
                self.reload_model, response_serializer=ser["ReloadModel"]
            ),
        }
        return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)


def _retrieve(fut: asyncio.Future[Any]) -> None:
    """Done callback of a future nobody awaits: fetch its exception so asyncio does not log
    "exception was never retrieved"."""
    if not fut.cancelled():
        fut.exception()


class GrpcFrontend:
    """The grpc.aio server: service + health (+ reflection), bound to ``host:port``."""

    def __init__(
        self,
        dataplane: DataPlane,
        *,
        host: str,
        port: int,
        max_message_bytes: int,
        admin_token: str | None,
        reflection_enabled: bool = True,
    ) -> None:
        self.dp = dataplane
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),
                *KEEPALIVE_OPTIONS,
            ]
        )
        self.service = LinkAdaptationService(dataplane, admin_token)
        self.server.add_generic_rpc_handlers((self.service.generic_handler(),))
        self.health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if reflection_enabled:  # off in production: no schema discovery for strangers
            reflection.enable_server_reflection(
                (
                    SERVICE_NAME,
                    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                    reflection.SERVICE_NAME,
                ),
                self.server,
            )
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"gRPC could not bind {host}:{port}")
        self._health_tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.server.start()
        await self.set_serving(False)
        # readiness changes after start (a model loaded or lost with require_model, drain)
        # follow into grpc.health.v1
        self.dp.add_ready_listener(self._on_ready_change)

    def _on_ready_change(self, ready: bool) -> None:
        task = asyncio.get_running_loop().create_task(self.set_serving(ready))
        self._health_tasks.add(task)  # keep a reference until done
        task.add_done_callback(self._health_tasks.discard)

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self.health.set("", status)
        await self.health.set(SERVICE_NAME, status)

    async def stop(self, grace: float) -> None:
        await self.set_serving(False)
        await self.server.stop(grace)
