"""Wire formats: protobuf and JSON parsing and encoding, byte-identical to the stubs.

Requests are parsed with the generated (upb) classes and their packed repeated fields
converted with ``np.asarray`` (one C-level copy per column), or with orjson for REST.
Decide responses are written directly: every MCS index (< 128) and source enum is a
one-byte varint, so the packed arrays are just ``uint8`` buffers
(``tests/service/test_service_proto.py`` checks the bytes against
``DecideResponse.SerializeToString``). Malformed input raises
:class:`~service.errors.InvalidArgument` naming ``request`` (protobuf) or ``body`` (JSON).
"""

from __future__ import annotations

import json
from collections.abc import Sized
from typing import Any, Literal, NamedTuple

import numpy as np
import orjson
from google.protobuf.message import DecodeError

from linkadapt.reports import REPORT_DTYPES
from service.errors import InvalidArgument
from service.proto_gen import link_adaptation_pb2 as pb

# How a queued request is carried: a serialized DecideRequest ("pb"), a REST body ("json"),
# columns decoded by the caller ("cols": (cell_id, slot, mcs_table, columns)), a release
# ("release": (cell_id, ue_ids)) or the drain's state snapshot ("handover": no payload,
# service.state_handover). "pb" and "json" are answered in their own format.
RequestKind = Literal["pb", "json", "cols", "release", "handover"]

SOURCE_MODEL = pb.DECISION_SOURCE_MODEL  # 1
SOURCE_FALLBACK = pb.DECISION_SOURCE_FALLBACK  # 2
SOURCE_JSON = np.array(pb.DecisionSource.keys())  # enum names, indexed by value

# columns of a decide request in ReportBatch order (cell_id is per request); the proto
# field names are the ReportBatch names
DECIDE_COLUMNS = tuple(k for k in REPORT_DTYPES if k != "cell_id")
OUTCOME_COLUMNS = ("ue_id", "delivered_bits", "first_tx_ack", "mcs")
# wire bytes per UE of a decide request, lower bounds (so UE estimates err high)
_PB_BYTES_PER_UE = 9
_JSON_BYTES_PER_UE = 40
_NO_VALUES = np.zeros(0, dtype=np.int64)  # shared: a 0-length array holds nothing to change


class Outcome(NamedTuple):
    """A parsed outcome report (``ReportOutcome`` / ``POST /v1/outcomes``), unvalidated."""

    cell_id: Any
    slot: Any
    columns: dict[str, Any]
    slot_us: Any


class Release(NamedTuple):
    """A parsed release (``ReleaseUe`` / ``POST /v1/ues/release``), unvalidated."""

    cell_id: Any
    ue_ids: Any


# ---------------------------------------------------------------- protobuf
def parse_message(cls: Any, raw: bytes) -> Any:
    """Parse one serialized protobuf message.

    Input
    -----
    cls : generated message class (e.g. ``pb.DecideRequest``)
    raw : bytes
        The serialized message.

    Output
    ------
    msg : ``cls`` instance

    Raises
    ------
    InvalidArgument
        On ``request``, reason ``malformed``, when the bytes do not parse.
    """
    try:
        return cls.FromString(raw)
    except (DecodeError, RuntimeError) as exc:
        raise InvalidArgument("request", f"malformed {cls.__name__} ({exc})", "malformed") from None


def request_columns(msg: Any) -> dict[str, np.ndarray]:
    """Columns of a parsed ``DecideRequest``.

    Input
    -----
    msg : ``pb.DecideRequest``

    Output
    ------
    columns : dict[str, np.ndarray]
        One ``int64 [len]`` array per name of :data:`DECIDE_COLUMNS`; an optional column
        left out of the message is an empty array.
    """
    out = {}
    for name in DECIDE_COLUMNS:
        field = getattr(msg, name)
        # np.asarray costs ~5 µs even for an empty field (an optional column left out)
        out[name] = np.asarray(field, dtype=np.int64) if len(field) else _NO_VALUES
    return out


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_decide_response(
    cell_id: int, slot: int, mcs: np.ndarray, source: np.ndarray, model_version: str
) -> bytes:
    """Serialize a ``DecideResponse`` (no error) exactly as protobuf would.

    Input
    -----
    cell_id, slot : int
        Echoed from the request.
    mcs : np.ndarray, int [n]
        MCS index per UE, request order.
    source : np.ndarray, uint8 [n]
        :data:`SOURCE_MODEL` or :data:`SOURCE_FALLBACK` per UE.
    model_version : str
        ``""`` when no model served.

    Output
    ------
    wire : bytes
        The serialized message.
    """
    parts: list[bytes] = []
    if cell_id:
        parts += [b"\x08", _varint(cell_id)]
    if slot:
        parts += [b"\x10", _varint(slot)]
    n = int(mcs.shape[0])
    if n:
        if int(mcs.max()) > 127 or int(mcs.min()) < 0:  # never for 38.214 tables
            msg = pb.DecideResponse(cell_id=cell_id, slot=slot, model_version=model_version)
            msg.mcs.extend(mcs.tolist())
            msg.source.extend(source.tolist())
            return msg.SerializeToString()
        ln = _varint(n)
        parts += [b"\x1a", ln, mcs.astype(np.uint8).tobytes(), b"\x22", ln]
        parts.append(source.astype(np.uint8, copy=False).tobytes())
    if model_version:
        v = model_version.encode()
        parts += [b"\x2a", _varint(len(v)), v]
    return b"".join(parts)


def decide_response_arrays(msg: Any) -> tuple[np.ndarray, np.ndarray]:
    """(mcs ``int32 [n]``, source ``uint8 [n]``) of a parsed ``DecideResponse`` (client)."""
    return np.asarray(msg.mcs, dtype=np.int32), np.asarray(msg.source, dtype=np.uint8)


# ---------------------------------------------------------------- JSON
def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Parse a REST request body (orjson).

    On the error path only, the stdlib parser is tried too: it accepts NaN/Infinity
    literals, so such a value is reported against its field (by validation) instead of
    against ``body``.

    Input
    -----
    raw : bytes
        The request body.

    Output
    ------
    doc : dict[str, Any]
        The top-level JSON object.

    Raises
    ------
    InvalidArgument
        On ``body``, reason ``malformed``: not JSON, or not an object.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            raise InvalidArgument("body", f"malformed JSON ({exc})", "malformed") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("body", "must be a JSON object", "malformed")
    return doc


def json_int_field(doc: dict[str, Any], name: str, default: int = 0) -> int:
    """An optional integer field of a JSON request (absent or ``null``: ``default``).

    Raises
    ------
    InvalidArgument
        On ``name`` when the value is not an integer (booleans are not integers).
    """
    v = doc.get(name, default)
    if v is None:
        return default
    if not isinstance(v, int) or isinstance(v, bool):
        raise InvalidArgument(name, f"must be an integer, got {v!r}")
    return v


def encode_decide_json(
    cell_id: int, slot: int, mcs: np.ndarray, source: np.ndarray, model_version: str
) -> bytes:
    """The REST response body of a decision (same inputs as :func:`encode_decide_response`);
    sources are the proto enum names."""
    return orjson.dumps(
        {
            "cell_id": cell_id,
            "slot": slot,
            "mcs": mcs,
            "source": SOURCE_JSON[source].tolist(),
            "model_version": model_version,
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


# ---------------------------------------------------------------- per request kind
def decide_head(kind: RequestKind, payload: Any) -> tuple[int, int, int, dict[str, Any]]:
    """(cell_id, slot, mcs_table, columns) of a queued decide request, whatever its kind.

    Raises
    ------
    InvalidArgument
        Malformed protobuf (``request``) or JSON (``body``), or a non-integer
        ``cell_id`` / ``slot`` / ``mcs_table`` in JSON.
    """
    if kind == "pb":
        msg = parse_message(pb.DecideRequest, payload)
        return msg.cell_id, msg.slot, msg.mcs_table, request_columns(msg)
    if kind == "json":
        doc = parse_json_object(payload)
        cell_id = json_int_field(doc, "cell_id")
        slot = json_int_field(doc, "slot")
        return cell_id, slot, json_int_field(doc, "mcs_table"), doc
    cell_id, slot, mcs_table, columns = payload
    return cell_id, slot, mcs_table, columns


def encode_decision(
    kind: RequestKind,
    cell_id: int,
    slot: int,
    mcs: np.ndarray,
    source: np.ndarray,
    model_version: str,
) -> bytes | None:
    """The response body of a decision in its request's format (``None`` for "cols":
    the in-process caller reads the arrays)."""
    if kind == "pb":
        return encode_decide_response(cell_id, slot, mcs, source, model_version)
    if kind == "json":
        return encode_decide_json(cell_id, slot, mcs, source, model_version)
    return None


def estimate_ues(kind: RequestKind, payload: Any) -> int:
    """UEs of a queued request for the admission and micro-batch bounds, from its size:
    never parsed on the event loop, and the estimate errs high (a UE takes at least ~9
    protobuf bytes, ~40 JSON bytes). A release or a handover counts 0 (decides nothing)."""
    if kind in ("release", "handover"):
        return 0
    if kind == "pb":
        return max(1, len(payload) // _PB_BYTES_PER_UE)
    if kind == "json":
        return max(1, len(payload) // _JSON_BYTES_PER_UE)
    ue = payload[3].get("ue_id") if isinstance(payload[3], dict) else None
    return len(ue) if isinstance(ue, Sized) else 1


def parse_outcome_pb(raw: bytes) -> Outcome:
    """A serialized ``OutcomeReport`` (malformed: :class:`InvalidArgument` on ``request``)."""
    msg = parse_message(pb.OutcomeReport, raw)
    columns = {name: getattr(msg, name) for name in OUTCOME_COLUMNS}
    return Outcome(msg.cell_id, msg.slot, columns, msg.slot_duration_us)


def json_array(doc: dict[str, Any], name: str) -> list[Any] | None:
    """A column of a JSON body: a JSON array, or absent/null (``None``). Anything else
    (``{}``, ``false``, a number) is refused here, naming the field, before validation
    takes the length of it."""
    value = doc.get(name)
    if value is None or isinstance(value, list):
        return value
    raise InvalidArgument(name, f"must be an array of integers, got {type(value).__name__}")


def parse_outcome_json(raw: bytes) -> Outcome:
    """A ``POST /v1/outcomes`` body; integer head fields are checked here, the columns by
    validation."""
    doc = parse_json_object(raw)
    columns = {name: json_array(doc, name) for name in OUTCOME_COLUMNS}
    return Outcome(
        json_int_field(doc, "cell_id"),
        json_int_field(doc, "slot"),
        columns,
        json_int_field(doc, "slot_duration_us"),
    )


def parse_release_pb(raw: bytes) -> Release:
    """A serialized ``ReleaseUeRequest`` (malformed: :class:`InvalidArgument`)."""
    msg = parse_message(pb.ReleaseUeRequest, raw)
    return Release(msg.cell_id, list(msg.ue_id))


def parse_release_json(raw: bytes) -> Release:
    """A ``POST /v1/ues/release`` body (``ue_id`` missing: :class:`InvalidArgument`)."""
    doc = parse_json_object(raw)
    ues = doc.get("ue_id")
    if ues is None:
        raise InvalidArgument("ue_id", "missing field")
    return Release(json_int_field(doc, "cell_id"), ues)


def parse_candidate_json(raw: bytes) -> Any:
    """A ``POST /v1/model/candidate`` body: its ``model_dir``, unvalidated (the shadow
    checks it: :func:`service.shadow.resolve_candidate_dir`)."""
    doc = parse_json_object(raw)
    if "model_dir" not in doc:
        raise InvalidArgument("model_dir", "missing field")
    return doc["model_dir"]
