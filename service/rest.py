"""REST adapter (FastAPI): the same data plane as gRPC, same columnar JSON as the proto.

``POST /v1/decisions`` is answered by :class:`FastDecisions`, a thin ASGI front: it hands
the raw body to the data plane, whose worker parses it with orjson (no pydantic model per
UE or per request), validates, decides and encodes the JSON response. Everything else is a
FastAPI route; the pydantic classes below only document the OpenAPI schema (request bodies
are attached with ``openapi_extra``), including the decisions route.

JSON conventions: field names are the proto field names (snake_case), int64 values are
JSON numbers, decision sources are the proto enum names (``DECISION_SOURCE_MODEL`` /
``DECISION_SOURCE_FALLBACK``). Errors use FastAPI's validation-error shape
``{"detail": [{"loc": ["body", field], "msg": ..., "type": reason}], "field": field}``:
422 invalid input (naming the field), 429 tracked-UE cap reached, 401/403 admin auth,
413 body above ``http_max_body_bytes``, 503 + ``Retry-After`` overloaded (shed), 409 a slot
more than ``max_slot_lag`` behind its cell's newest. An ``x-ran-cell-id`` header (the
cell-affine routing key, :mod:`service.cell_affinity`) must name the body's ``cell_id``.

Body limit: every POST is refused with 413 on a Content-Length above
``http_max_body_bytes`` before the app reads anything, and bodies without one (chunked) are
read chunk by chunk and refused as soon as they pass the limit, so a large body is never
buffered. ``/docs``, ``/redoc`` and ``/openapi.json`` exist only with
``http_docs_enabled``.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from service.cell_affinity import (
    CELL_ID_HEADER,
    CellHeaderError,
    asgi_cell_header,
    mismatch_message,
    parse_cell_header,
)
from service.dataplane import (
    DEADLINE_EXCEEDED,
    INVALID_ARGUMENT,
    OVERLOADED,
    PAYLOAD_TOO_LARGE,
    PERMISSION_DENIED,
    RESOURCE_EXHAUSTED,
    RETRY_AFTER_SECONDS,
    SHED_CODES,
    STALE,
    UNAUTHENTICATED,
    UNAVAILABLE,
    DataPlane,
    RequestError,
    json_int_field,
    parse_json_object,
)
from service.metrics import CONTENT_TYPE

HTTP_STATUS = {
    INVALID_ARGUMENT: 422,
    RESOURCE_EXHAUSTED: 429,
    UNAVAILABLE: 503,
    UNAUTHENTICATED: 401,
    PERMISSION_DENIED: 403,
    PAYLOAD_TOO_LARGE: 413,
    OVERLOADED: 503,
    DEADLINE_EXCEEDED: 503,
    STALE: 409,
}
JSON = "application/json"


# ---------------------------------------------------------------- OpenAPI documentation models
class DecideRequestJson(BaseModel):
    """Reports of many UEs of one cell for one slot (parallel arrays, index i = one UE)."""

    cell_id: int = Field(0, ge=0, description="Cell id")
    slot: int = Field(0, ge=0, description="Slot number")
    mcs_table: int = Field(0, ge=0, le=2, description="0 = server default, else 1 or 2")
    ue_id: list[int] = Field(description="UE ids (unique within the request)")
    cqi: list[int] = Field(description="Latest CQI 0..15 (ignored where cqi_age_slots = -1)")
    cqi_age_slots: list[int] = Field(description="CQI age in slots, -1 = no CQI yet")
    harq_ack: list[int] = Field(description="1 ACK, 0 NACK, -1 no feedback this slot")
    harq_mcs: list[int] = Field(description="MCS of the acknowledged transmission")
    rank: list[int] = Field(description="Layers 1..8")
    n_prb: list[int] = Field(description="PRBs 1..275")
    n_symbols: list[int] = Field(description="PDSCH symbols 1..14")
    buffer_bytes: list[int] | None = Field(None, description="DL buffer bytes, -1 = unknown")
    harq_tx_index: list[int] | None = Field(
        None,
        description="HARQ transmission index of the harq_ack feedback (0 = first transmission,"
        " 1.. = retransmission, max 7; -1 = unknown; checked only where harq_ack >= 0)."
        " Absent/null/empty = unknown for every UE; else ue_id's length. OLLA ignores the"
        " feedback of retransmissions.",
    )


class DecideResponseJson(BaseModel):
    cell_id: int
    slot: int
    mcs: list[int] = Field(description="MCS index per UE, request order")
    source: list[str] = Field(description="DECISION_SOURCE_MODEL or DECISION_SOURCE_FALLBACK")
    model_version: str


class ErrorItem(BaseModel):
    loc: list[str]
    msg: str
    type: str


class ErrorJson(BaseModel):
    """Refusal naming the offending field."""

    detail: list[ErrorItem]
    field: str


class OutcomeJson(BaseModel):
    cell_id: int = Field(0, ge=0)
    slot: int = Field(0, ge=0)
    ue_id: list[int]
    delivered_bits: list[int]
    first_tx_ack: list[int] = Field(description="1 ACK, 0 NACK, -1 not a first transmission")
    mcs: list[int] | None = None
    slot_duration_us: int = Field(0, ge=0, le=1000, description="0 = 500 µs")


class OutcomeAckJson(BaseModel):
    accepted: int


class ReleaseJson(BaseModel):
    cell_id: int = Field(0, ge=0)
    ue_id: list[int]


class ReleaseAckJson(BaseModel):
    released: int


class ModelInfoJson(BaseModel):
    loaded: bool
    version: str
    path: str
    obs_schema_version: str
    obs_dim: int
    n_actions: int
    parameters: int
    loaded_at_unix: float
    last_reload_result: str
    last_reload_error: str
    last_reload_at_unix: float


class ReloadJson(BaseModel):
    ok: bool
    error: str
    model: ModelInfoJson


class HealthJson(BaseModel):
    status: str


def _body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {
        "requestBody": {"required": True, "content": {JSON: {"schema": schema}}},
    }


def _err(desc: str) -> dict[str, Any]:
    return {"model": ErrorJson, "description": desc}


# ---------------------------------------------------------------- helpers
def _json(doc: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), status, media_type=JSON)


def _error(exc: RequestError, dp: DataPlane | None = None) -> Response:
    if dp is not None and exc.code not in SHED_CODES:  # shed: in shed_requests_total
        dp.metrics.invalid_requests.labels("rest", exc.reason, exc.field).inc()
    doc = {
        "detail": [{"loc": ["body", exc.field], "msg": exc.message, "type": exc.reason}],
        "field": exc.field,
    }
    resp = _json(doc, HTTP_STATUS.get(exc.code, 500))
    if exc.code == OVERLOADED:
        resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return resp


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """The body, read chunk by chunk and refused (413) as soon as it passes
    ``max_bytes``: a chunked body is never buffered beyond the limit. (A declared
    Content-Length above it never gets here: :class:`FastDecisions` refuses it first.)"""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_object(request: Request, max_bytes: int) -> dict[str, Any]:
    return parse_json_object(await _read_body(request, max_bytes))


def _too_large(max_bytes: int) -> RequestError:
    return RequestError(
        PAYLOAD_TOO_LARGE, "body", f"request body above {max_bytes} bytes", "too_large"
    )


def _declared_too_large(scope: Any, max_bytes: int) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return not value.isdigit() or int(value) > max_bytes
    return False


_int_field = json_int_field


def _header_error(exc: CellHeaderError) -> RequestError:
    return RequestError(INVALID_ARGUMENT, CELL_ID_HEADER, str(exc), "malformed")


def _request_cell_hint(request: Request) -> int | None:
    """The ``x-ran-cell-id`` header of a FastAPI request (None when absent)."""
    try:
        return parse_cell_header(request.headers.get(CELL_ID_HEADER))
    except CellHeaderError as exc:
        raise _header_error(exc) from None


def _check_cell(request: Request, cell_id: int) -> int:
    """``cell_id``, after checking the routing header (when present) names the same cell."""
    hint = _request_cell_hint(request)
    if hint is not None and hint != cell_id:
        raise RequestError(
            INVALID_ARGUMENT, "cell_id", mismatch_message(hint, cell_id), "cell_mismatch"
        )
    return cell_id


class FastDecisions:
    """ASGI front: ``POST /v1/decisions`` is answered here, straight from the raw body
    (the data plane parses it in its worker and returns the encoded JSON), skipping
    Starlette routing and FastAPI's request machinery; everything else, including the
    OpenAPI description of that same route, is the FastAPI app's. Every POST whose
    Content-Length is above the body limit is refused (413) here, unread."""

    def __init__(self, app: FastAPI, dp: DataPlane, max_body: int) -> None:
        self.app = app
        self.dp = dp
        self.max_body = max_body
        self._req = dp.metrics.requests.labels("rest", "decisions")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if scope["path"] != "/v1/decisions":
            if _declared_too_large(scope, self.max_body):
                await self._send(send, _error(_too_large(self.max_body), self.dp))
            else:
                await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        self._req.inc()
        try:
            try:
                hint = asgi_cell_header(scope)
            except CellHeaderError as exc:
                raise _header_error(exc) from None
            raw = await self._body(scope, receive)
            res = await self.dp.submit_raw("json", raw, None, hint)
            assert res.wire is not None
            body = res.wire
            self.dp.observe_total(time.perf_counter() - t0)
        except RequestError as exc:
            await self._send(send, _error(exc, self.dp))
            return
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

    async def _body(self, scope: Any, receive: Any) -> bytes:
        if _declared_too_large(scope, self.max_body):
            raise _too_large(self.max_body)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestError(INVALID_ARGUMENT, "body", "client disconnected", "malformed")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _too_large(self.max_body)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def create_rest_app(dp: DataPlane, admin_token: str | None) -> FastDecisions:
    """The ASGI application bound to ``dp``: :class:`FastDecisions` in front of FastAPI
    (``.app``)."""
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
    req_decide = m.requests.labels("rest", "decisions")
    req_outcome = m.requests.labels("rest", "outcomes")
    req_release = m.requests.labels("rest", "release")

    @app.post(
        "/v1/decisions",
        summary="MCS decisions for the UEs of one cell for one slot",
        openapi_extra=_body(DecideRequestJson),
        response_model=DecideResponseJson,
        responses={
            409: _err("Stale: slot more than max_slot_lag behind the cell's newest (`slot`)"),
            413: _err("Body above http_max_body_bytes (`body`)"),
            422: _err("Invalid input (field named in `field`)"),
            429: _err("Tracked-UE cap (max_tracked_ues) reached"),
            503: _err("Overloaded: admission bound reached, request shed; see Retry-After"),
        },
    )
    async def decisions(request: Request) -> Response:
        # Served by FastDecisions in front of this app; kept for the OpenAPI description
        # and for direct use of the FastAPI app (same semantics).
        t0 = time.perf_counter()
        req_decide.inc()
        try:
            hint = _request_cell_hint(request)
            res = await dp.submit_raw("json", await _read_body(request, max_body), None, hint)
        except RequestError as exc:
            return _error(exc, dp)
        dp.observe_total(time.perf_counter() - t0)
        assert res.wire is not None
        return Response(res.wire, media_type=JSON)

    @app.post(
        "/v1/outcomes",
        summary="Delivered bits / first-transmission ACKs for live KPIs",
        openapi_extra=_body(OutcomeJson),
        response_model=OutcomeAckJson,
        responses={
            413: _err("Body above http_max_body_bytes (`body`)"),
            422: _err("Invalid input (field named in `field`)"),
        },
    )
    async def outcomes(request: Request) -> Response:
        req_outcome.inc()
        try:
            doc = await _read_object(request, max_body)
            cols = {k: doc.get(k) for k in ("ue_id", "delivered_bits", "first_tx_ack", "mcs")}
            n = dp.report_outcome(
                _check_cell(request, _int_field(doc, "cell_id")),
                _int_field(doc, "slot"),
                cols,
                _int_field(doc, "slot_duration_us"),
            )
        except RequestError as exc:
            return _error(exc, dp)
        return _json({"accepted": n})

    @app.post(
        "/v1/ues/release",
        summary="Forget UEs that left the cell",
        openapi_extra=_body(ReleaseJson),
        response_model=ReleaseAckJson,
        responses={
            413: _err("Body above http_max_body_bytes (`body`)"),
            422: _err("Invalid input, unknown cell or UE (field named in `field`)"),
            503: _err("Overloaded: admission bound reached, request shed; see Retry-After"),
        },
    )
    async def release(request: Request) -> Response:
        req_release.inc()
        try:
            doc = await _read_object(request, max_body)
            ues = doc.get("ue_id")
            if ues is None:
                raise RequestError(INVALID_ARGUMENT, "ue_id", "missing field")
            n = await dp.release(_check_cell(request, _int_field(doc, "cell_id")), ues)
        except RequestError as exc:
            return _error(exc, dp)
        return _json({"released": n})

    @app.get(
        "/v1/model",
        summary="The serving model and the last reload outcome",
        response_model=ModelInfoJson,
    )
    async def get_model() -> Response:
        return _json(dp.model_info())

    @app.post(
        "/v1/model/reload",
        summary="Admin: reload the configured model directory now",
        response_model=ReloadJson,
        responses={
            401: _err("Missing or wrong bearer token"),
            403: _err("No admin_token configured: reload over the API is disabled"),
        },
    )
    async def reload(request: Request) -> Response:
        if not admin_token:
            return _error(
                RequestError(
                    PERMISSION_DENIED, "authorization", "admin_token not configured", "unauthorized"
                ),
                dp,
            )
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not token or not hmac.compare_digest(token.encode(), admin_token.encode()):
            resp = _error(
                RequestError(
                    UNAUTHENTICATED,
                    "authorization",
                    "missing or wrong bearer token",
                    "unauthorized",
                ),
                dp,
            )
            resp.headers["WWW-Authenticate"] = "Bearer"
            return resp
        ok, error = await dp.reload_model()
        return _json({"ok": ok, "error": error, "model": dp.model_info()})

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

    metrics_doc = {
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
    return FastDecisions(app, dp, max_body)
