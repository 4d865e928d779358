"""REST adapter (FastAPI): the same data plane as gRPC, same columnar JSON as the proto.

``POST /v1/decisions`` is answered by :class:`FastDecisions`, a thin ASGI front: it hands
the raw body to the data plane, whose worker parses it with orjson (no pydantic model per
UE or per request), validates, decides and encodes the JSON response. Everything else is a
FastAPI route; the pydantic classes of :mod:`service.rest_schema` only document the OpenAPI
schema (request bodies are attached with ``openapi_extra``), including the decisions route.

JSON conventions: field names are the proto field names (snake_case), int64 values are
JSON numbers, decision sources are the proto enum names (``DECISION_SOURCE_MODEL`` /
``DECISION_SOURCE_FALLBACK``). Errors (:mod:`service.errors`, answered by one exception
handler, :func:`error_response`) use FastAPI's validation-error shape
``{"detail": [{"loc": ["body", field], "msg": ..., "type": reason}], "field": field}``:
422 invalid input (naming the field), 429 more UEs in one request than a cell may hold,
401/403 admin auth, 413 body above ``http_max_body_bytes``, 408 a body not received within
``http_body_timeout_seconds`` (connection closed), 503 + ``Retry-After`` overloaded (shed),
409 a slot more than ``max_slot_lag`` behind its cell's newest, 409 a promotion or
rollback with nothing to promote or roll back to, 403 on ``cell_id`` a cell the client
certificate may not speak for (``authz_cells_file``, :mod:`service.authz`; checked before
anything is queued), 401
``/v1/...`` without a client certificate under ``tls_require_client_cert``
(:class:`service.tls.ClientCertGate`, in front of this app). The admin routes
(``/v1/model/reload``, ``/v1/model/candidate``, ``/v1/model/promote``, ``/v1/model/rollback``)
need ``Authorization: Bearer <admin_token>`` (:func:`service.admin.check_admin`).
An ``x-ran-cell-id`` header (the cell-affine routing key, :mod:`service.cell_affinity`)
must name the body's ``cell_id`` (422 on ``cell_id``; malformed: 422 on the header).

Body limit: every POST is refused with 413 on a Content-Length above
``http_max_body_bytes`` before the app reads anything, and bodies without one (chunked) are
read chunk by chunk and refused as soon as they pass the limit, so a large body is never
buffered. ``/docs``, ``/redoc`` and ``/openapi.json`` exist only with
``http_docs_enabled``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.routing import Match

from service.admin import check_admin
from service.authz import CellGuard
from service.cell_affinity import asgi_cell_header, check_cell_hint
from service.dataplane import DataPlane
from service.errors import (
    InvalidArgument,
    PayloadTooLarge,
    RequestError,
    RequestTimeout,
    ShedError,
)
from service.metrics import CONTENT_TYPE
from service.rest_schema import (
    AUTH_ERRORS,
    JSON,
    CandidateRequestJson,
    DecideRequestJson,
    DecideResponseJson,
    HealthJson,
    ModelInfoJson,
    OutcomeAckJson,
    OutcomeJson,
    ReleaseAckJson,
    ReleaseJson,
    ReloadJson,
    body_schema,
    error_doc,
)
from service.tls import scope_identities
from service.wire import parse_candidate_json, parse_outcome_json, parse_release_json


# ---------------------------------------------------------------- helpers
def _json(doc: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), status, media_type=JSON)


def error_response(dp: DataPlane, exc: RequestError) -> Response:
    """The REST side of :mod:`service.errors` (the FastAPI exception handler and
    :class:`FastDecisions` both answer with it): the error's ``http_status`` and headers
    (``Retry-After`` when shed at the admission bound, ``WWW-Authenticate`` on 401), a
    body naming the field; counted in ``invalid_requests_total`` unless shed."""
    if not isinstance(exc, ShedError):  # shed: counted in shed_requests_total
        dp.metrics.invalid_requests.labels("rest", exc.reason, exc.field).inc()
    doc = {
        "detail": [{"loc": ["body", exc.field], "msg": exc.message, "type": exc.reason}],
        "field": exc.field,
    }
    resp = _json(doc, exc.http_status)
    resp.headers.update(exc.http_headers)
    return resp


async def read_limited(
    chunks: AsyncIterator[bytes], max_bytes: int, timeout: float | None = None
) -> bytes:
    """A body, read chunk by chunk and refused (413) as soon as it passes ``max_bytes``:
    a chunked body is never buffered beyond the limit. (A declared Content-Length above
    it never gets here: :class:`FastDecisions` refuses it first.) Not all there within
    ``timeout`` seconds: refused (408, connection closed), so a client that sends headers
    and stops holds no connection, task or buffer for long."""
    parts: list[bytes] = []
    size = 0
    deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
    it = chunks.__aiter__()
    while True:
        try:
            if deadline is None:
                chunk = await it.__anext__()
            else:
                left = deadline - asyncio.get_running_loop().time()
                chunk = await asyncio.wait_for(it.__anext__(), max(left, 0.0))
        except StopAsyncIteration:
            return b"".join(parts)
        except TimeoutError:
            raise RequestTimeout(
                "body", f"request body not received within {timeout:g} s", "body_timeout"
            ) from None
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        parts.append(chunk)


async def _asgi_chunks(receive: Any) -> AsyncIterator[bytes]:
    """The body chunks of a raw ASGI request."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidArgument("body", "client disconnected", "malformed")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _too_large(max_bytes: int) -> RequestError:
    return PayloadTooLarge("body", f"request body above {max_bytes} bytes", "too_large")


def _declared_too_large(scope: Any, max_bytes: int) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return not value.isdigit() or int(value) > max_bytes
    return False


class FastDecisions:
    """ASGI front: ``POST /v1/decisions`` is answered here, straight from the raw body
    (the data plane parses it in its worker and returns the encoded JSON), skipping
    Starlette routing and FastAPI's request machinery; everything else, including the
    OpenAPI description of that same route, is the FastAPI app's. Every POST whose
    Content-Length is above the body limit is refused (413) here, unread."""

    def __init__(
        self, app: FastAPI, dp: DataPlane, max_body: int, guard: CellGuard | None = None
    ) -> None:
        self.app = app
        self.guard = guard
        self.dp = dp
        self.max_body = max_body
        self._req = dp.metrics.requests.labels("rest", "decisions")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if scope["path"] != "/v1/decisions":
            if _declared_too_large(scope, self.max_body):
                await self._send(send, error_response(self.dp, _too_large(self.max_body)))
            else:
                await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        self._req.inc()
        try:  # this front is not FastAPI: the app's exception handler does not reach here
            # shed before the body is read: a full queue refuses whatever the body holds
            self.dp.check_admission("json", b"")
            hint = asgi_cell_header(scope)  # checked against the body in the worker
            if _declared_too_large(scope, self.max_body):
                raise _too_large(self.max_body)
            raw = await read_limited(
                _asgi_chunks(receive), self.max_body, self.dp.settings.http_body_timeout_seconds
            )
            if self.guard is not None:
                self.guard.check_decide_json(scope_identities(scope), raw)
            res = await self.dp.submit_raw("json", raw, None, hint)
        except RequestError as exc:
            await self._send(send, error_response(self.dp, exc))
            return
        body = res.wire
        assert body is not None
        self.dp.observe_total(time.perf_counter() - t0)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _send(send: Any, resp: Response) -> None:
        await send(
            {"type": "http.response.start", "status": resp.status_code, "headers": resp.raw_headers}
        )
        await send({"type": "http.response.body", "body": bytes(resp.body)})


def create_rest_app(
    dp: DataPlane, admin_token: str | None, guard: CellGuard | None = None
) -> FastDecisions:
    """The ASGI application bound to ``dp``: :class:`FastDecisions` in front of FastAPI
    (``.app``); ``guard``: per-cell authorization of decisions, outcomes and releases."""
    docs = dp.settings.http_docs_enabled
    app = FastAPI(
        title="ran-distill link-adaptation xApp",
        version="1.0.0",
        description="REST face of linkadapt.v1.LinkAdaptation (see proto/). "
        "Errors name the offending field.",
        # off in production (the Helm chart): no API browser or schema for strangers
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    m = dp.metrics
    max_body = dp.settings.http_max_body_bytes
    body_timeout = dp.settings.http_body_timeout_seconds

    async def read_body(request: Request) -> bytes:
        return await read_limited(request.stream(), max_body, body_timeout)

    req_decide = m.requests.labels("rest", "decisions")
    req_outcome = m.requests.labels("rest", "outcomes")
    req_release = m.requests.labels("rest", "release")

    async def request_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestError)
        return error_response(dp, exc)

    # every route's refusals are mapped here: no route catches RequestError itself
    app.add_exception_handler(RequestError, request_error)

    async def http_error(request: Request, exc: Exception) -> Response:
        """Starlette's own refusals; a 405's ``Allow`` lists the methods of every route on
        the path (Starlette names only the first route's, and ``/v1/model/candidate`` has
        two: POST and DELETE)."""
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            allowed = sorted(
                {
                    method
                    for route in app.router.routes
                    if route.matches(request.scope)[0] is not Match.NONE
                    for method in getattr(route, "methods", None) or ()
                }
            )
            exc = HTTPException(
                405, exc.detail, {**(exc.headers or {}), "Allow": ", ".join(allowed)}
            )
        return await http_exception_handler(request, exc)

    app.add_exception_handler(HTTPException, http_error)

    def authorize(request: Request, cell_id: int) -> int:
        """The routing header, when sent, names ``cell_id``; the client may speak for it."""
        check_cell_hint(asgi_cell_header(request.scope), cell_id)
        if guard is not None:
            guard.check("rest", scope_identities(request.scope), cell_id)
        return cell_id

    @app.post(
        "/v1/decisions",
        summary="MCS decisions for the UEs of one cell for one slot",
        openapi_extra=body_schema(DecideRequestJson),
        response_model=DecideResponseJson,
        responses={
            409: error_doc("Stale: slot more than max_slot_lag behind the cell's newest (`slot`)"),
            413: error_doc("Body above http_max_body_bytes (`body`)"),
            422: error_doc("Invalid input (field named in `field`)"),
            429: error_doc("Tracked-UE cap (max_tracked_ues) reached"),
            503: error_doc("Overloaded: admission bound reached, request shed; see Retry-After"),
            **AUTH_ERRORS,
        },
    )
    async def decisions(request: Request) -> Response:
        # Served by FastDecisions in front of this app; kept for the OpenAPI description
        # and for direct use of the FastAPI app (same semantics).
        t0 = time.perf_counter()
        req_decide.inc()
        hint = asgi_cell_header(request.scope)
        raw = await read_body(request)
        if guard is not None:
            guard.check_decide_json(scope_identities(request.scope), raw)
        res = await dp.submit_raw("json", raw, None, hint)
        dp.observe_total(time.perf_counter() - t0)
        assert res.wire is not None
        return Response(res.wire, media_type=JSON)

    @app.post(
        "/v1/outcomes",
        summary="Delivered bits / first-transmission ACKs for live KPIs",
        openapi_extra=body_schema(OutcomeJson),
        response_model=OutcomeAckJson,
        responses={
            413: error_doc("Body above http_max_body_bytes (`body`)"),
            422: error_doc("Invalid input (field named in `field`)"),
            503: error_doc("Overloaded: too many outcome reports pending, shed; see Retry-After"),
            **AUTH_ERRORS,
        },
    )
    async def outcomes(request: Request) -> Response:
        req_outcome.inc()
        cell_id, slot, cols, slot_duration_us = parse_outcome_json(await read_body(request))
        authorize(request, cell_id)
        accepted = await dp.report_outcome_async(cell_id, slot, cols, slot_duration_us)
        return _json({"accepted": accepted})

    @app.post(
        "/v1/ues/release",
        summary="Forget UEs that left the cell",
        openapi_extra=body_schema(ReleaseJson),
        response_model=ReleaseAckJson,
        responses={
            413: error_doc("Body above http_max_body_bytes (`body`)"),
            422: error_doc("Invalid input, unknown cell or UE (field named in `field`)"),
            503: error_doc("Overloaded: admission bound reached, request shed; see Retry-After"),
            **AUTH_ERRORS,
        },
    )
    async def release(request: Request) -> Response:
        req_release.inc()
        cell_id, ue_ids = parse_release_json(await read_body(request))
        return _json({"released": await dp.release(authorize(request, cell_id), ue_ids)})

    @app.get(
        "/v1/model",
        summary="The serving model and the last reload outcome",
        response_model=ModelInfoJson,
    )
    async def get_model() -> Response:
        return _json(dp.model_info())

    admin_errors: dict[int | str, dict[str, Any]] = {
        401: error_doc("Missing or wrong bearer token"),
        403: error_doc("No admin_token configured: the admin calls are disabled"),
    }

    @app.post(
        "/v1/model/reload",
        summary="Admin: reload the active model's directory now",
        response_model=ReloadJson,
        responses=admin_errors,
    )
    async def reload(request: Request) -> Response:
        check_admin(admin_token, request.headers.get("authorization", ""))
        ok, error = await dp.reload_model()
        return _json({"ok": ok, "error": error, "model": dp.model_info()})

    @app.post(
        "/v1/model/candidate",
        summary="Admin: load a candidate model and run it in shadow beside the active one",
        openapi_extra=body_schema(CandidateRequestJson),
        response_model=ModelInfoJson,
        responses={
            **admin_errors,
            413: error_doc("Body above http_max_body_bytes (`body`)"),
            422: error_doc("Path not under candidate_root, or the model was refused (`model_dir`)"),
        },
    )
    async def load_candidate(request: Request) -> Response:
        check_admin(admin_token, request.headers.get("authorization", ""))
        model_dir = parse_candidate_json(await read_body(request))
        await dp.admin(dp.shadow.load_candidate, model_dir)
        return _json(dp.model_info())

    def model_change(operation: Callable[[], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def change(request: Request) -> Response:
            check_admin(admin_token, request.headers.get("authorization", ""))
            await dp.admin(operation)
            return _json(dp.model_info())

        return change

    # (method, path, what it does, summary, its refusals besides the admin ones)
    model_changes: list[tuple[str, str, Callable[[], Any], str, dict[int | str, Any]]] = [
        (
            "DELETE",
            "/v1/model/candidate",
            dp.shadow.unload_candidate,
            "Admin: stop shadowing and drop the candidate",
            {},
        ),
        (
            "POST",
            "/v1/model/promote",
            dp.shadow.promote,
            "Admin: make the candidate the active model (atomic; rollback keeps the old)",
            {409: error_doc("No candidate loaded (`candidate`)")},
        ),
        (
            "POST",
            "/v1/model/rollback",
            dp.shadow.rollback,
            "Admin: make the model replaced by the last swap active again",
            {409: error_doc("No previous model (`previous`)")},
        ),
    ]
    for method, path, operation, summary, refusals in model_changes:
        app.add_api_route(
            path,
            model_change(operation),
            methods=[method],
            name=operation.__name__,
            summary=summary,
            response_model=ModelInfoJson,
            responses={**admin_errors, **refusals},
        )

    @app.get("/ric/v1/health/alive", summary="O-RAN liveness", response_model=HealthJson)
    async def alive() -> Response:
        return _json({"status": "alive"})

    @app.get(
        "/ric/v1/health/ready",
        summary="O-RAN readiness (503 while starting or draining, or with require_model "
        "while no validated model is loaded)",
        response_model=HealthJson,
        responses={
            503: {"model": HealthJson, "description": "Not ready: starting, draining or no_model"}
        },
    )
    async def ready() -> Response:
        status = dp.readiness()
        return _json({"status": status}, 200 if status == "ready" else 503)

    metrics_doc: dict[int | str, dict[str, Any]] = {
        200: {
            "content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition",
        }
    }

    async def metrics() -> Response:
        return Response(dp.metrics.exposition(), media_type=CONTENT_TYPE)

    for path in ("/ric/v1/metrics", "/metrics"):
        app.add_api_route(
            path,
            metrics,
            methods=["GET"],
            summary="Prometheus metrics",
            response_class=Response,
            responses=metrics_doc,
        )
    return FastDecisions(app, dp, max_body, guard)
