"""A small REST client for the xApp (stdlib ``http.client``, one keep-alive connection),
the HTTP counterpart of :class:`service.client.XappClient`.

Every per-cell call carries the ``x-ran-cell-id`` header (:mod:`service.cell_affinity`),
so an L7 proxy can keep each cell on one replica.

    with XappRestClient("http://127.0.0.1:8080") as rest:
        mcs, source, version = rest.decide(reports, cell_id=7, slot=1200)
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any

import numpy as np

from linkadapt.reports import ReportBatch
from service.cell_affinity import CELL_ID_HEADER

SOURCE_CODES = {"DECISION_SOURCE_MODEL": 1, "DECISION_SOURCE_FALLBACK": 2}
_COLUMNS = (
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


class RestError(RuntimeError):
    """A non-200 answer: ``status``, the refused ``field`` (when the xApp named one) and
    the ``Retry-After`` seconds of a shed request (else None)."""

    def __init__(self, status: int, field: str, message: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}: {field}: {message}")
        self.status = status
        self.field = field
        self.message = message
        self.retry_after = retry_after


def decide_body(reports: ReportBatch, *, cell_id: int, slot: int, mcs_table: int = 0) -> bytes:
    """The JSON body of ``POST /v1/decisions`` for ``reports`` (all of one cell)."""
    doc: dict[str, Any] = {"cell_id": cell_id, "slot": slot, "mcs_table": mcs_table}
    for name in _COLUMNS:
        doc[name] = getattr(reports, name).tolist()
    return json.dumps(doc).encode()


class XappRestClient:
    """Synchronous REST client on one keep-alive connection; usable as a context manager.

    A request that fails because the server had closed the idle connection (uvicorn closes
    them after ``http_keep_alive_seconds``) is sent once more on a new connection; as with
    the gRPC client's retries, a request that did reach the xApp before its connection
    broke may then fold its reports twice, which moves only that slot's OLLA step."""

    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"base_url must be http://host:port, got {base_url!r}")
        self.host = url.hostname
        self.port = url.port or 80
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def __enter__(self) -> XappRestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def post(self, path: str, body: bytes, *, cell_id: int) -> dict[str, Any]:
        """POST ``body`` with the cell header; the decoded JSON answer, or :class:`RestError`."""
        headers = {"content-type": "application/json", CELL_ID_HEADER: str(int(cell_id))}
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request("POST", path, body, headers)
                resp = self._conn.getresponse()
                raw = resp.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                # a keep-alive connection the server closed: one fresh connection
                self.close()
                if attempt:
                    raise
                continue
            if resp.status != 200:
                try:
                    doc = json.loads(raw)
                    field = str(doc.get("field", "")) if isinstance(doc, dict) else ""
                    message = doc["detail"][0]["msg"] if field else raw.decode(errors="replace")
                except (ValueError, KeyError, IndexError, TypeError):
                    field, message = "", raw.decode(errors="replace")[:200]
                retry = resp.getheader("retry-after")
                raise RestError(resp.status, field, message, float(retry) if retry else None)
            result: dict[str, Any] = json.loads(raw)
            return result
        raise AssertionError("unreachable")

    def decide(
        self, reports: ReportBatch, *, cell_id: int, slot: int = 0, mcs_table: int = 0
    ) -> tuple[np.ndarray, np.ndarray, str]:
        """(mcs int32 [n], source uint8 [n] (1 MODEL, 2 FALLBACK), model version)."""
        doc = self.post(
            "/v1/decisions",
            decide_body(reports, cell_id=cell_id, slot=slot, mcs_table=mcs_table),
            cell_id=cell_id,
        )
        mcs = np.asarray(doc["mcs"], dtype=np.int32)
        source = np.asarray([SOURCE_CODES.get(s, 0) for s in doc["source"]], dtype=np.uint8)
        return mcs, source, str(doc["model_version"])

    def report_outcome(
        self,
        *,
        cell_id: int,
        slot: int,
        ue_id: Any,
        delivered_bits: Any,
        first_tx_ack: Any,
        slot_duration_us: int = 0,
    ) -> int:
        body = {
            "cell_id": cell_id,
            "slot": slot,
            "ue_id": [int(u) for u in ue_id],
            "delivered_bits": [int(b) for b in delivered_bits],
            "first_tx_ack": [int(a) for a in first_tx_ack],
            "slot_duration_us": slot_duration_us,
        }
        doc = self.post("/v1/outcomes", json.dumps(body).encode(), cell_id=cell_id)
        return int(doc["accepted"])

    def release(self, *, cell_id: int, ue_ids: Any) -> int:
        body = {"cell_id": cell_id, "ue_id": [int(u) for u in ue_ids]}
        doc = self.post("/v1/ues/release", json.dumps(body).encode(), cell_id=cell_id)
        return int(doc["released"])
