"""The cell id on every call, outside the body: the key of cell-affine routing.

Per-UE history lives in the replica that decided a cell's last slots, so every call of
one cell must reach the same replica. An L7 proxy cannot read the protobuf or JSON body
cheaply, so clients repeat the body's ``cell_id`` as gRPC metadata / an HTTP header,
:data:`CELL_ID_HEADER`, and the proxy hashes it consistently (``deploy/haproxy``). The
xApp checks that the two agree, so a client bug cannot route a cell's reports to a
replica chosen for another cell without being told.

Refusals are :class:`~service.errors.InvalidArgument`: a malformed header names the header
(:class:`CellHeaderError`, reason ``malformed``), a header naming another cell than the body
names ``cell_id`` (:func:`check_cell_hint`, reason ``cell_mismatch``). The adapters read the
header; decide requests carry it to the worker (``cell_hint``), which checks it against the
parsed body before admission (:mod:`service.decide`).

Dependency-free (no data plane, no grpc): the client and both adapters import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from service.errors import InvalidArgument

CELL_ID_HEADER = "x-ran-cell-id"
CELL_ID_HEADER_BYTES = CELL_ID_HEADER.encode()
_MAX_ID = (1 << 63) - 1
_MAX_DIGITS = len(str(_MAX_ID))


class CellHeaderError(InvalidArgument):
    """The header is present but not a cell id (``field`` is the header's name)."""

    def __init__(self, message: str) -> None:
        super().__init__(CELL_ID_HEADER, message, "malformed")


def cell_metadata(cell_id: int) -> tuple[tuple[str, str]]:
    """gRPC call metadata carrying ``cell_id``."""
    return ((CELL_ID_HEADER, str(int(cell_id))),)


def parse_cell_header(value: str | bytes | None) -> int | None:
    """The header's cell id (``None`` when absent); :class:`CellHeaderError` when it is not
    a decimal integer in [0, 2^63)."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_DIGITS:
        raise CellHeaderError(
            f"{CELL_ID_HEADER} must be a decimal cell id in [0, 2^63), got {text[:32]!r}"
        )
    cell = int(text)
    if cell > _MAX_ID:
        raise CellHeaderError(f"{CELL_ID_HEADER} {cell} is above 2^63 - 1")
    return cell


def mismatch_message(header_cell: int, body_cell: int) -> str:
    """The refusal when the routed cell is not the body's: names both."""
    return (
        f"body cell_id {body_cell} != {CELL_ID_HEADER} {header_cell}: the call was routed "
        f"for another cell than it carries"
    )


def check_cell_hint(hint: int | None, cell_id: int) -> None:
    """A call routed by ``hint`` (the header's cell id; None: no header) must carry that
    cell in its body: :class:`~service.errors.InvalidArgument` on ``cell_id`` otherwise."""
    if hint is not None and hint != cell_id:
        raise InvalidArgument("cell_id", mismatch_message(hint, cell_id), "cell_mismatch")


def grpc_cell_header(metadata: Iterable[tuple[str, Any]] | None) -> int | None:
    """:data:`CELL_ID_HEADER` from gRPC invocation metadata (a sequence of (key, value));
    :class:`CellHeaderError` when malformed."""
    for key, value in metadata or ():
        if key == CELL_ID_HEADER:
            return parse_cell_header(value)
    return None


def asgi_cell_header(scope: Mapping[str, Any]) -> int | None:
    """:data:`CELL_ID_HEADER` from an ASGI scope's raw headers."""
    for name, value in scope.get("headers", ()):
        if name == CELL_ID_HEADER_BYTES:
            return parse_cell_header(value)
    return None
