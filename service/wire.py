"""Protobuf wire helpers for the hot path (byte-identical to the generated stubs).

Requests are parsed with the generated (upb) classes and their packed repeated fields
converted with ``np.asarray`` (one C-level copy per column). Responses are written
directly: every MCS index (< 128) and source enum is a one-byte varint, so the packed
arrays are just ``uint8`` buffers. ``tests/service/test_wire.py`` checks the bytes
against ``DecideResponse.SerializeToString``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.proto_gen import link_adaptation_pb2 as pb

# (request field, proto field name) in ReportBatch order, cell_id excluded
_REQUEST_COLUMNS = (
    "ue_id",
    "cqi",
    "cqi_age_slots",
    "harq_ack",
    "harq_mcs",
    "rank",
    "n_prb",
    "n_symbols",
    "buffer_bytes",
    "harq_tx_index",
)


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


def request_columns(msg: Any) -> dict[str, np.ndarray]:
    """Columns of a parsed ``DecideRequest`` as numpy arrays (``int64``)."""
    return {name: np.asarray(getattr(msg, name), dtype=np.int64) for name in _REQUEST_COLUMNS}


def encode_decide_response(
    cell_id: int, slot: int, mcs: np.ndarray, source: np.ndarray, model_version: str
) -> bytes:
    """Serialize a ``DecideResponse`` (no error) exactly as protobuf would."""
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
    """(mcs int32, source uint8) of a parsed ``DecideResponse`` (client side)."""
    return np.asarray(msg.mcs, dtype=np.int32), np.asarray(msg.source, dtype=np.uint8)
