"""A small Python client for the xApp's gRPC API, and a :class:`linkadapt.policy.Policy`
adapter (:class:`RemotePolicy`) so the evaluation loop can treat a running xApp as one
more policy.

    with XappClient("127.0.0.1:50051") as client:
        mcs, source, version = client.decide(reports, cell_id=0, slot=17)
"""

from __future__ import annotations

import secrets
from typing import Any

import grpc
import numpy as np

from linkadapt.policy import DecisionBatch
from linkadapt.reports import ReportBatch
from service.proto_gen import link_adaptation_pb2 as pb
from service.proto_gen import link_adaptation_pb2_grpc as pb_grpc
from service.wire import decide_response_arrays

CELL_BITS = 24  # RemotePolicy: simulator cell ids below 2**24, namespace above
_COLUMNS = ("ue_id", "cqi", "cqi_age_slots", "harq_ack", "harq_mcs", "rank", "n_prb",
            "n_symbols", "buffer_bytes")  # fmt: skip


def decide_request(reports: ReportBatch, *, cell_id: int, slot: int, mcs_table: int = 0) -> Any:
    """A ``DecideRequest`` carrying ``reports`` (all of one cell).

    ``harq_tx_index`` is sent only when some UE's index is known (empty = all -1)."""
    msg = pb.DecideRequest(cell_id=cell_id, slot=slot, mcs_table=mcs_table)
    for name in _COLUMNS:
        getattr(msg, name).extend(getattr(reports, name).tolist())
    if (reports.harq_tx_index >= 0).any():
        msg.harq_tx_index.extend(reports.harq_tx_index.tolist())
    return msg


class XappClient:
    """Synchronous gRPC client (one channel); usable as a context manager."""

    def __init__(self, target: str, *, timeout: float = 5.0, admin_token: str | None = None):
        self.channel = grpc.insecure_channel(
            target, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        )
        self.stub = pb_grpc.LinkAdaptationStub(self.channel)
        self.timeout = timeout
        self.admin_token = admin_token

    def __enter__(self) -> XappClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def decide(
        self, reports: ReportBatch, *, cell_id: int, slot: int = 0, mcs_table: int = 0
    ) -> tuple[np.ndarray, np.ndarray, str]:
        """(mcs int32 [n], source uint8 [n] (1 MODEL, 2 FALLBACK), model version)."""
        resp = self.stub.Decide(
            decide_request(reports, cell_id=cell_id, slot=slot, mcs_table=mcs_table),
            timeout=self.timeout,
        )
        mcs, source = decide_response_arrays(resp)
        return mcs, source, resp.model_version

    def report_outcome(
        self, *, cell_id: int, slot: int, ue_id: Any, delivered_bits: Any, first_tx_ack: Any,
        mcs: Any = (), slot_duration_us: int = 0,
    ) -> int:  # fmt: skip
        resp = self.stub.ReportOutcome(
            pb.OutcomeReport(
                cell_id=cell_id, slot=slot, ue_id=list(ue_id), delivered_bits=list(delivered_bits),
                first_tx_ack=list(first_tx_ack), mcs=list(mcs), slot_duration_us=slot_duration_us,
            ),
            timeout=self.timeout,
        )  # fmt: skip
        return resp.accepted

    def release(self, *, cell_id: int, ue_ids: Any) -> int:
        resp = self.stub.ReleaseUe(
            pb.ReleaseUeRequest(cell_id=cell_id, ue_id=[int(u) for u in ue_ids]),
            timeout=self.timeout,
        )
        return resp.released

    def get_model(self) -> Any:
        return self.stub.GetModel(pb.GetModelRequest(), timeout=self.timeout)

    def reload_model(self) -> Any:
        md = (("authorization", f"Bearer {self.admin_token}"),) if self.admin_token else None
        return self.stub.ReloadModel(pb.ReloadModelRequest(), metadata=md, timeout=60.0)


class RemotePolicy:
    """A running xApp as a :class:`linkadapt.policy.Policy`.

    ``act`` sends the batch's raw reports (one ``Decide`` per cell in the batch; the
    xApp keeps its own history, so ``batch.obs`` is not sent) and returns the MCS.
    ``reset(rows)`` releases the UEs last seen on those rows. ``last_source`` holds the
    per-UE decision source of the last call.
    """

    name = "xapp"

    def __init__(
        self, target: str | XappClient, *, timeout: float = 5.0, fresh_state: bool = True
    ) -> None:
        self.client = (
            target if isinstance(target, XappClient) else XappClient(target, timeout=timeout)
        )
        # fresh_state: this instance's cells live in their own id range on the xApp, so a
        # new policy (e.g. one per evaluation seed) never inherits per-UE history that an
        # earlier instance left behind for the same (cell, UE) ids (it expires by TTL).
        self.cell_base = (secrets.randbits(31) + 1) << CELL_BITS if fresh_state else 0
        self.slot = 0
        self.last_source = np.zeros(0, np.uint8)
        self._row_key: dict[int, tuple[int, int]] = {}

    def act(self, batch: DecisionBatch) -> np.ndarray:
        reports = batch.reports
        n = len(reports)
        mcs = np.zeros(n, np.int32)
        source = np.zeros(n, np.uint8)
        for cell in np.unique(reports.cell_id).tolist():
            if cell >= 1 << CELL_BITS:
                raise ValueError(f"cell id {cell} needs more than {CELL_BITS} bits")
            idx = np.flatnonzero(reports.cell_id == cell)
            part = reports.take(idx)
            m, s, _ = self.client.decide(part, cell_id=self.cell_base + int(cell), slot=self.slot)
            mcs[idx] = m
            source[idx] = s
        rows = batch.rows.tolist()
        cells = (reports.cell_id + self.cell_base).tolist()
        self._row_key.update(zip(rows, zip(cells, reports.ue_id.tolist(), strict=True),
                                 strict=True))  # fmt: skip
        self.slot += 1
        self.last_source = source
        return mcs

    def reset(self, rows: np.ndarray) -> None:
        by_cell: dict[int, list[int]] = {}
        for r in np.asarray(rows).tolist():
            key = self._row_key.pop(r, None)
            if key is not None:
                by_cell.setdefault(key[0], []).append(key[1])
        for cell, ues in by_cell.items():
            try:
                self.client.release(cell_id=cell, ue_ids=ues)
            except grpc.RpcError as exc:  # already expired on the server: nothing to forget
                if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
                    raise

    def close(self) -> None:
        self.client.close()
