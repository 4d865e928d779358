"""gRPC adapter (grpc.aio): ``linkadapt.v1.LinkAdaptation`` over the data plane, plus the
standard ``grpc.health.v1`` health service and (``grpc_reflection_enabled``) server
reflection.

Handlers receive raw bytes (no generated deserializer) so a malformed protobuf is an
``INVALID_ARGUMENT`` naming ``request`` rather than grpc's generic ``INTERNAL``, and the
hot-path response is written by :mod:`service.wire`.

Status codes come from :mod:`service.errors`, mapped in one place
(:func:`maps_request_errors`): INVALID_ARGUMENT (status message ``"<field>: <reason>"`` and
trailing metadata ``invalid-field: <field>``), RESOURCE_EXHAUSTED (tracked-UE cap;
admission bound reached, i.e. shed; messages above ``grpc_max_message_bytes`` are refused
by grpc itself with the same code), DEADLINE_EXCEEDED (deadline already passed on arrival
or while queued, or a slot more than ``max_slot_lag`` behind its cell's newest: nothing is
changed), UNAUTHENTICATED / PERMISSION_DENIED (the admin calls: ``ReloadModel``,
``LoadCandidate``, ``UnloadCandidate``, ``PromoteCandidate``, ``RollbackModel``),
FAILED_PRECONDITION (promotion without a candidate, rollback without a previous model),
PERMISSION_DENIED naming ``cell_id`` (with ``authz_cells_file``: the client certificate's
identities may not speak for that cell; checked before anything is queued, see
:mod:`service.authz`), INTERNAL (a bug, that request only). In a ``DecideStream`` the same
errors are in-stream ``DecideError``s.

With ``tls_cert_file`` the port is TLS only (``service.tls``); with
``tls_require_client_cert`` the handshake needs a client certificate from
``tls_client_ca_file``.

``DecideStream`` reads at most ``stream_max_in_flight`` messages ahead of its responses.
``x-ran-cell-id`` metadata (:mod:`service.cell_affinity`) must name the body's ``cell_id``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from service.admin import check_admin
from service.authz import CellGuard
from service.cell_affinity import CellHeaderError, check_cell_hint, grpc_cell_header
from service.dataplane import DataPlane
from service.errors import DeadlineExceeded, InvalidArgument, RequestError, ShedError
from service.proto_gen import link_adaptation_pb2 as pb
from service.tls import grpc_peer_identities
from service.wire import parse_message, parse_outcome_pb, parse_release_pb

log = logging.getLogger("service.grpc")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["LinkAdaptation"].full_name
# Server keepalive: ping idle connections so a vanished gNB's streams are torn down, and
# accept the client keepalive pings of service.client (every 30 s) without GOAWAY.
KEEPALIVE_OPTIONS = [
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


_T = TypeVar("_T")
Handler = Callable[["LinkAdaptationService", bytes, grpc.aio.ServicerContext], Awaitable[_T]]


def maps_request_errors(handler: Handler[_T]) -> Handler[_T]:
    """The gRPC side of :mod:`service.errors`, for a unary handler: a
    :class:`~service.errors.RequestError` aborts the call with its ``grpc_status`` and
    ``"<field>: <message>"`` (trailer ``invalid-field`` unless shed), counted in
    ``invalid_requests_total`` unless shed (shed requests are counted where dropped)."""

    @functools.wraps(handler)
    async def mapped(
        service: LinkAdaptationService, raw: bytes, context: grpc.aio.ServicerContext
    ) -> _T:
        try:
            return await handler(service, raw, context)
        except RequestError as exc:
            service.count_invalid(exc)
            shed = isinstance(exc, ShedError)
            trailer = () if shed else (("invalid-field", exc.field),)
            code = grpc.StatusCode[exc.grpc_status]
            await context.abort(code, f"{exc.field}: {exc.message}", trailer)
            raise AssertionError("unreachable: abort raises") from None

    return mapped


def model_info_message(info: dict[str, Any]) -> Any:
    return pb.ModelInfo(**info)


class LinkAdaptationService:
    """The servicer; every method is a thin translation to/from :class:`DataPlane`."""

    def __init__(
        self, dataplane: DataPlane, admin_token: str | None, guard: CellGuard | None = None
    ) -> None:
        self.dp = dataplane
        self.admin_token = admin_token
        self.guard = guard  # per-cell authorization (None: every client speaks for all)
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
                "LoadCandidate",
                "UnloadCandidate",
                "PromoteCandidate",
                "RollbackModel",
            )
        }

    # ---------------------------------------------------------------- helpers
    def count_invalid(self, exc: RequestError) -> None:
        if not isinstance(exc, ShedError):  # shed: counted in shed_requests_total
            self.dp.metrics.invalid_requests.labels("grpc", exc.reason, exc.field).inc()

    def _authorize(self, context: grpc.aio.ServicerContext, cell_id: int) -> int:
        """The routing metadata, when sent, names ``cell_id``; per-cell authorization (no-op
        without ``authz_cells_file``); returns ``cell_id``."""
        check_cell_hint(grpc_cell_header(context.invocation_metadata()), cell_id)
        if self.guard is not None:
            self.guard.check("grpc", grpc_peer_identities(context), cell_id)
        return cell_id

    def _submit_authorized(
        self, identities: tuple[str, ...], raw: bytes, hint: int | None
    ) -> asyncio.Future[Any]:
        """``submit_raw`` behind the per-cell check, if any: a refused message gets a failed
        future (answered in its turn like any other error) and is never queued."""
        try:
            if self.guard is not None:
                self.guard.check_decide_pb(identities, raw)
        except RequestError as exc:
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            fut.set_exception(exc)
            return fut
        return self.dp.submit_raw("pb", raw, None, hint)

    def _check_deadline(self, context: grpc.aio.ServicerContext) -> float | None:
        """The deadline as a perf_counter() time (None: no deadline), so the worker can
        drop the request if it expires while queued; :class:`DeadlineExceeded` (counted
        as shed, reason "deadline") if it already passed."""
        remaining = context.time_remaining()
        if remaining is None:
            return None
        if remaining <= 0:
            self.dp.count_shed("deadline")
            raise DeadlineExceeded("request", "deadline passed on arrival", "deadline")
        return time.perf_counter() + remaining

    # ---------------------------------------------------------------- RPCs
    @maps_request_errors
    async def decide(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        t0 = time.perf_counter()
        self._req["Decide"].inc()
        # shed first, before the deadline, metadata or authorization are looked at: under
        # overload most calls end here, and each costs the event loop (which the worker
        # shares through the GIL) gRPC's own per-call price and nothing more
        self.dp.check_admission("pb", raw)
        deadline = self._check_deadline(context)
        hint = grpc_cell_header(context.invocation_metadata())  # vs the body: in the worker
        if self.guard is not None:
            self.guard.check_decide_pb(grpc_peer_identities(context), raw)
        res = await self.dp.submit_raw("pb", raw, deadline, hint)
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
        slots = asyncio.Semaphore(dp.settings.stream_max_in_flight)
        # bounded by the semaphore: never more than stream_max_in_flight entries
        pending: asyncio.Queue[tuple[float, bytes, asyncio.Future[Any]] | None] = asyncio.Queue()
        n_pending = 0  # read, not yet answered (this stream)
        identities = grpc_peer_identities(context) if self.guard is not None else ()
        try:
            hint = grpc_cell_header(context.invocation_metadata())  # one cell per stream
        except CellHeaderError as exc:
            self.count_invalid(exc)
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, str(exc), (("invalid-field", exc.field),)
            )

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
                    fut = self._submit_authorized(identities, raw, hint)
                    pending.put_nowait((time.perf_counter(), raw, fut))
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
        except RequestError as exc:  # in-stream error: the stream stays open
            self.count_invalid(exc)
            cell_id = slot = 0
            try:  # echo the slot back when the message parses at all
                msg = parse_message(pb.DecideRequest, raw)
                cell_id, slot = msg.cell_id, msg.slot
            except InvalidArgument:
                pass
            err = pb.DecideError(code=exc.rpc_code, field=exc.field, message=exc.message)
            return pb.DecideResponse(cell_id=cell_id, slot=slot, error=err).SerializeToString()
        assert res.wire is not None
        return res.wire

    @maps_request_errors
    async def report_outcome(self, raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        self._req["ReportOutcome"].inc()
        self._check_deadline(context)
        cell_id, slot, cols, slot_duration_us = parse_outcome_pb(raw)
        self._authorize(context, cell_id)
        n = await self.dp.report_outcome_async(cell_id, slot, cols, slot_duration_us)
        return pb.OutcomeAck(accepted=n)

    @maps_request_errors
    async def release_ue(self, raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        self._req["ReleaseUe"].inc()
        self._check_deadline(context)
        cell_id, ue_ids = parse_release_pb(raw)
        n = await self.dp.release(self._authorize(context, cell_id), ue_ids)
        return pb.ReleaseUeResponse(released=n)

    async def get_model(self, raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        self._req["GetModel"].inc()
        return model_info_message(self.dp.model_info())

    def _admin_call(self, name: str, context: grpc.aio.ServicerContext) -> None:
        """Count an admin RPC and check its bearer token (:func:`service.admin.check_admin`)."""
        self._req[name].inc()
        md = dict(context.invocation_metadata() or ())
        check_admin(self.admin_token, md.get("authorization", ""))

    @maps_request_errors
    async def reload_model(self, raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        self._admin_call("ReloadModel", context)
        ok, error = await self.dp.reload_model()
        return pb.ReloadModelResponse(
            ok=ok, error=error, model=model_info_message(self.dp.model_info())
        )

    @maps_request_errors
    async def load_candidate(self, raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        self._admin_call("LoadCandidate", context)
        msg = parse_message(pb.LoadCandidateRequest, raw)
        await self.dp.admin(self.dp.shadow.load_candidate, msg.model_dir)
        return model_info_message(self.dp.model_info())

    async def _change_model(
        self, name: str, operation: Callable[[], Any], context: grpc.aio.ServicerContext
    ) -> Any:
        """An admin RPC without arguments: the ModelInfo after ``operation``."""
        self._admin_call(name, context)
        await self.dp.admin(operation)
        return model_info_message(self.dp.model_info())

    @maps_request_errors
    async def unload_candidate(self, raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        return await self._change_model("UnloadCandidate", self.dp.shadow.unload_candidate, context)

    @maps_request_errors
    async def promote_candidate(self, raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        return await self._change_model("PromoteCandidate", self.dp.shadow.promote, context)

    @maps_request_errors
    async def rollback_model(self, raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        return await self._change_model("RollbackModel", self.dp.shadow.rollback, context)

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
        admin_calls = {
            "LoadCandidate": self.load_candidate,
            "UnloadCandidate": self.unload_candidate,
            "PromoteCandidate": self.promote_candidate,
            "RollbackModel": self.rollback_model,
        }
        for name, call in admin_calls.items():  # each answers the ModelInfo after the change
            handlers[name] = grpc.unary_unary_rpc_method_handler(
                call, response_serializer=ser["GetModel"]
            )
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
        credentials: grpc.ServerCredentials | None = None,
        guard: CellGuard | None = None,
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
        self.service = LinkAdaptationService(dataplane, admin_token, guard)
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
        address = f"{host}:{port}"
        self.port = (
            self.server.add_insecure_port(address)
            if credentials is None
            else self.server.add_secure_port(address, credentials)
        )
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
