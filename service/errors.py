"""Request errors: the one table the adapters map from.

Every refusal of a request is a :class:`RequestError` subclass that names the offending
field and carries, as class attributes, what each transport answers: the gRPC status (by
name, so this module does not import grpc), the ``google.rpc.Code`` of an in-stream
``DecideError`` and the HTTP status (plus headers). The gRPC adapter maps them in one
decorator, the REST adapter in one FastAPI exception handler; neither keeps a table.

:class:`ShedError` subclasses say nothing about the request's content (the server was
overloaded, the request came too late): they are counted in
``ran_distill_shed_requests_total{reason}`` where they are raised, never as invalid.
"""

from __future__ import annotations

from typing import ClassVar

RETRY_AFTER_SECONDS = 1  # REST Retry-After of a request shed at the admission bound
# shed_requests_total{reason} labels (created up front so every series exists at 0)
SHED_REASONS = ("queue_full", "deadline", "stale", "cancelled")


class RequestError(Exception):
    """A request was refused; nothing it asked for was changed.

    Parameters
    ----------
    field : str
        The offending request field (``"request"`` / ``"body"`` for the whole message).
    message : str
        Why, for a human.
    reason : str | None
        The ``reason`` label of the invalid/shed request counters; defaults to :attr:`code`.
    """

    code: ClassVar[str] = "internal"  # transport-neutral name, the default metric reason
    grpc_status: ClassVar[str] = "INTERNAL"  # a grpc.StatusCode member name
    rpc_code: ClassVar[int] = 13  # google.rpc.Code, for in-stream DecideError.code
    http_status: ClassVar[int] = 500
    http_headers: ClassVar[dict[str, str]] = {}

    def __init__(self, field: str, message: str, reason: str | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.reason = reason or self.code


class InternalError(RequestError):
    """A bug while handling one request (never bad input): only that request fails."""


class InvalidArgument(RequestError):
    """Bad input: a field's value, type, length or presence."""

    code = "invalid_argument"
    grpc_status = "INVALID_ARGUMENT"
    rpc_code = 3
    http_status = 422


class ResourceExhausted(RequestError):
    """The tracked-UE cap (``max_tracked_ues``) would be exceeded."""

    code = "resource_exhausted"
    grpc_status = "RESOURCE_EXHAUSTED"
    rpc_code = 8
    http_status = 429


class PayloadTooLarge(RequestError):
    """A REST body above ``http_max_body_bytes`` (gRPC refuses large messages itself)."""

    code = "payload_too_large"
    grpc_status = "RESOURCE_EXHAUSTED"
    rpc_code = 8
    http_status = 413


class RequestTimeout(RequestError):
    """A REST body not received within ``http_body_timeout_seconds`` of its headers."""

    code = "request_timeout"
    grpc_status = "DEADLINE_EXCEEDED"
    rpc_code = 4
    http_status = 408
    http_headers = {"Connection": "close"}


class Unauthenticated(RequestError):
    """Admin call without, or with a wrong, bearer token."""

    code = "unauthenticated"
    grpc_status = "UNAUTHENTICATED"
    rpc_code = 16
    http_status = 401
    http_headers = {"WWW-Authenticate": "Bearer"}


class PermissionDenied(RequestError):
    """Admin call while no ``admin_token`` is configured."""

    code = "permission_denied"
    grpc_status = "PERMISSION_DENIED"
    rpc_code = 7
    http_status = 403


class FailedPrecondition(RequestError):
    """An admin call the current state does not allow (promote with no candidate loaded,
    rollback with no previous model)."""

    code = "failed_precondition"
    grpc_status = "FAILED_PRECONDITION"
    rpc_code = 9
    http_status = 409


class ShedError(RequestError):
    """Dropped unprocessed for load or lateness; counted as shed, never as invalid."""


class Overloaded(ShedError):
    """The admission bound (``max_queued_requests`` / ``max_queued_ues``) is reached."""

    code = "overloaded"
    grpc_status = "RESOURCE_EXHAUSTED"
    rpc_code = 8
    http_status = 503
    http_headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}


class DeadlineExceeded(ShedError):
    """The gRPC deadline passed (on arrival or while queued) or the caller cancelled."""

    code = "deadline_exceeded"
    grpc_status = "DEADLINE_EXCEEDED"
    rpc_code = 4
    http_status = 503


class Stale(ShedError):
    """A slot more than ``max_slot_lag`` behind its cell's newest: the decision would come
    too late to use."""

    code = "stale"
    grpc_status = "DEADLINE_EXCEEDED"
    rpc_code = 4
    http_status = 409
