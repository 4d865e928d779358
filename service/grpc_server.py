"""gRPC adapter (grpc.aio): ``linkadapt.v1.LinkAdaptation`` over the data plane, plus the
standard ``grpc.health.v1`` health service and server reflection.

Handlers receive raw bytes (no generated deserializer) so a malformed protobuf is an
``INVALID_ARGUMENT`` naming ``request`` rather than grpc's generic ``INTERNAL``, and the
hot-path response is written by :mod:`service.wire`.

Status codes: INVALID_ARGUMENT (status message ``"<field>: <reason>"`` and trailing
metadata ``invalid-field: <field>``), RESOURCE_EXHAUSTED (tracked-UE cap; messages above
``grpc_max_message_bytes`` are refused by grpc itself with the same code), UNAVAILABLE,
DEADLINE_EXCEEDED (deadline already passed on arrival: nothing is changed),
UNAUTHENTICATED / PERMISSION_DENIED (admin ``ReloadModel``).
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

from service.dataplane import (
    INVALID_ARGUMENT,
    PERMISSION_DENIED,
    RESOURCE_EXHAUSTED,
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
}
RPC_CODES = {  # google.rpc.Code values for DecideError.code
    INVALID_ARGUMENT: 3,
    RESOURCE_EXHAUSTED: 8,
    UNAVAILABLE: 14,
}


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
            for name in ("Decide", "DecideStream", "ReportOutcome", "ReleaseUe", "GetModel",
                         "ReloadModel")
        }  # fmt: skip

    # ---------------------------------------------------------------- helpers
    def _invalid(self, exc: RequestError) -> None:
        self.dp.metrics.invalid_requests.labels("grpc", exc.reason, exc.field).inc()

    async def _abort(self, context: grpc.aio.ServicerContext, exc: RequestError) -> None:
        self._invalid(exc)
        code = STATUS.get(exc.code, grpc.StatusCode.INTERNAL)
        await context.abort(code, f"{exc.field}: {exc.message}", (("invalid-field", exc.field),))

    @staticmethod
    def _parse(cls: Any, raw: bytes) -> Any:
        try:
            return cls.FromString(raw)
        except (DecodeError, RuntimeError) as exc:
            raise RequestError(
                INVALID_ARGUMENT, "request", f"malformed {cls.__name__} ({exc})", "malformed"
            ) from None

    @staticmethod
    async def _check_deadline(context: grpc.aio.ServicerContext) -> None:
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed on arrival")

    # ---------------------------------------------------------------- RPCs
    async def decide(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        t0 = time.perf_counter()
        self._req["Decide"].inc()
        await self._check_deadline(context)
        try:
            res = await self.dp.submit_raw("pb", raw)
        except RequestError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from None
        self.dp.observe_total(time.perf_counter() - t0)
        assert res.wire is not None
        return res.wire

    async def decide_stream(
        self, request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        """One response per request message, in order. Messages are queued as they
        arrive (a reader task), so message k+1 is parsed and validated while message k is
        still being decided; a bad message gets an in-stream error."""
        counter = self._req["DecideStream"]
        pending: asyncio.Queue[tuple[float, bytes, Any] | None] = asyncio.Queue()

        async def reader() -> None:
            try:
                async for raw in request_iterator:
                    counter.inc()
                    pending.put_nowait((time.perf_counter(), raw, self.dp.submit_raw("pb", raw)))
            finally:
                pending.put_nowait(None)

        task = asyncio.create_task(reader())
        try:
            while (entry := await pending.get()) is not None:
                t0, raw, fut = entry
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
                    yield pb.DecideResponse(
                        cell_id=cell_id, slot=slot, error=err
                    ).SerializeToString()
                    continue
                assert res.wire is not None
                yield res.wire
                self.dp.observe_total(time.perf_counter() - t0)
            task.result()  # surface reader errors (e.g. cancelled stream)
        finally:
            if not task.done():
                task.cancel()

    async def report_outcome(self, raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        self._req["ReportOutcome"].inc()
        await self._check_deadline(context)
        try:
            msg = self._parse(pb.OutcomeReport, raw)
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
                RequestError(PERMISSION_DENIED, "authorization", "admin_token not configured",
                             "unauthorized"),
            )  # fmt: skip
        md = dict(context.invocation_metadata() or ())
        auth = md.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not token or not hmac.compare_digest(token.encode(), str(self.admin_token).encode()):
            await self._abort(
                context,
                RequestError(UNAUTHENTICATED, "authorization", "missing or wrong bearer token",
                             "unauthorized"),
            )  # fmt: skip
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


class GrpcFrontend:
    """The grpc.aio server: service + health + reflection, bound to ``host:port``."""

    def __init__(self, dataplane: DataPlane, *, host: str, port: int, max_message_bytes: int,
                 admin_token: str | None) -> None:  # fmt: skip
        self.dp = dataplane
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),
            ]
        )
        self.service = LinkAdaptationService(dataplane, admin_token)
        self.server.add_generic_rpc_handlers((self.service.generic_handler(),))
        self.health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME),
            self.server,
        )  # fmt: skip
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"gRPC could not bind {host}:{port}")

    async def start(self) -> None:
        await self.server.start()
        await self.set_serving(False)

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
