"""A small Python client for the xApp's gRPC API, and a :class:`linkadapt.policy.Policy`
adapter (:class:`RemotePolicy`) so the evaluation loop can treat a running xApp as one
more policy.

    with XappClient("127.0.0.1:50051") as client:
        mcs, source, version = client.decide(reports, cell_id=0, slot=17)

Resilience: the channel retries UNAVAILABLE (the call never reached a serving xApp: a
restart, a connection reset) up to 4 attempts with capped exponential backoff, under
gRPC retry throttling so a down server does not get a retry storm; reconnects quickly
(100 ms first backoff, at most 0.8 s); sends keepalive pings every 30 s during calls so a
dead connection is noticed; and with ``wait_for_ready=True`` a call waits (up to its
timeout) for the server to come up instead of failing at once. :class:`RemotePolicy`
decides a batch with its own per-UE OLLA when the xApp cannot be reached, as the xApp
itself falls back to OLLA without a model.

Cell affinity: every per-cell call carries its cell id as the ``x-ran-cell-id`` metadata
(:mod:`service.cell_affinity`), so an L7 proxy in front of several replicas can hash it
and keep each cell, and its per-UE history, on one replica. The xApp refuses a call whose
metadata names another cell than its body.

TLS (an xApp started with ``tls_cert_file``): ``tls_ca_file`` verifies the server
(``tls=True`` alone: the system roots), ``tls_cert_file`` + ``tls_key_file`` present a
client certificate (mutual TLS, ``tls_require_client_cert``), ``tls_server_name``
overrides the name checked against the server certificate (e.g. connecting by IP)::

    XappClient("xapp.ricxapp.svc:50051", tls_ca_file="ca.crt",
               tls_cert_file="gnb-a.crt", tls_key_file="gnb-a.key")
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from linkadapt.baselines import OllaPolicy
from linkadapt.policy import DecisionBatch
from linkadapt.reports import ReportBatch
from service.cell_affinity import cell_metadata
from service.proto_gen import link_adaptation_pb2 as pb
from service.proto_gen import link_adaptation_pb2_grpc as pb_grpc
from service.tls import channel_credentials
from service.wire import DECIDE_COLUMNS, SOURCE_FALLBACK, decide_response_arrays

log = logging.getLogger("service.client")

CELL_BITS = 24  # RemotePolicy: simulator cell ids below 2**24, namespace above
SERVICE = pb.DESCRIPTOR.services_by_name["LinkAdaptation"].full_name
# gRPC retry policy (https://github.com/grpc/proposal/blob/master/A6-client-retries.md):
# only UNAVAILABLE, which means the request was not processed by a serving xApp. Overload
# (RESOURCE_EXHAUSTED) and deadlines are not retried: the answer would come too late.
RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.05s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
# retries stop while more than half of the recent calls failed (token bucket)
RETRY_THROTTLING = {"maxTokens": 10, "tokenRatio": 0.1}
# sent always; harq_tx_index only when some UE's index is known (empty = all unknown)
_ALWAYS_SENT = tuple(c for c in DECIDE_COLUMNS if c != "harq_tx_index")


def decide_request(reports: ReportBatch, *, cell_id: int, slot: int, mcs_table: int = 0) -> Any:
    """A ``DecideRequest`` carrying ``reports`` (all of one cell).

    ``harq_tx_index`` is sent only when some UE's index is known (empty = all -1)."""
    msg = pb.DecideRequest(cell_id=cell_id, slot=slot, mcs_table=mcs_table)
    for name in _ALWAYS_SENT:
        getattr(msg, name).extend(getattr(reports, name).tolist())
    if (reports.harq_tx_index >= 0).any():
        msg.harq_tx_index.extend(reports.harq_tx_index.tolist())
    return msg


def service_config(*, retry: bool = True) -> str:
    """The channel's gRPC service config (JSON): the retry policy for every method of
    ``linkadapt.v1.LinkAdaptation``, and retry throttling."""
    method: dict[str, Any] = {"name": [{"service": SERVICE}]}
    if retry:
        method["retryPolicy"] = RETRY_POLICY
    cfg: dict[str, Any] = {"methodConfig": [method]}
    if retry:
        cfg["retryThrottling"] = RETRY_THROTTLING
    return json.dumps(cfg)


def channel_options(
    *, retry: bool = True, keepalive_seconds: float = 30.0
) -> list[tuple[str, Any]]:
    """grpc channel options of :class:`XappClient`."""
    return [
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ("grpc.enable_retries", 1 if retry else 0),
        ("grpc.service_config", service_config(retry=retry)),
        # a dead connection (peer gone without FIN) is noticed within ~40 s during a call;
        # the xApp accepts pings down to every 10 s
        ("grpc.keepalive_time_ms", int(keepalive_seconds * 1000)),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 0),
        # an xApp restart takes seconds: reconnect soon (defaults: 1 s first, 120 s max).
        # At most 0.8 s (+20 % jitter) between attempts, so a restarted xApp gets its
        # clients back within 1 s of coming up (benchmarks/service_faults.py measures it);
        # one connection attempt per client per 0.8 s costs a down xApp nothing.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 800),
    ]


class XappClient:
    """Synchronous gRPC client (one channel); usable as a context manager.

    ``wait_for_ready``: calls wait for the channel to connect (up to ``timeout``) instead
    of failing with UNAVAILABLE while the xApp is down or not started yet. ``retry``:
    the UNAVAILABLE retry policy (:data:`RETRY_POLICY`). ``tls*``: see the module
    docstring; TLS is on when ``tls`` is true or any ``tls_*_file`` is given."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = 5.0,
        admin_token: str | None = None,
        wait_for_ready: bool = False,
        retry: bool = True,
        keepalive_seconds: float = 30.0,
        tls: bool | None = None,
        tls_ca_file: str | Path | None = None,
        tls_cert_file: str | Path | None = None,
        tls_key_file: str | Path | None = None,
        tls_server_name: str | None = None,
    ) -> None:
        options = channel_options(retry=retry, keepalive_seconds=keepalive_seconds)
        if tls is None:
            tls = any(f is not None for f in (tls_ca_file, tls_cert_file, tls_key_file))
        if tls:
            if tls_server_name:
                options.append(("grpc.ssl_target_name_override", tls_server_name))
            creds = channel_credentials(tls_ca_file, tls_cert_file, tls_key_file)
            self.channel = grpc.secure_channel(target, creds, options=options)
        else:
            if tls_server_name or tls_cert_file or tls_key_file or tls_ca_file:
                raise ValueError("tls=False with TLS options given")
            self.channel = grpc.insecure_channel(target, options=options)
        self.stub = pb_grpc.LinkAdaptationStub(self.channel)
        self.timeout = timeout
        self.admin_token = admin_token
        self.wait_for_ready = wait_for_ready

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
            metadata=cell_metadata(cell_id),
            timeout=self.timeout,
            wait_for_ready=self.wait_for_ready,
        )
        mcs, source = decide_response_arrays(resp)
        return mcs, source, resp.model_version

    def decide_stream(
        self, requests: Iterable[Any], *, cell_id: int, timeout: float | None = None
    ) -> Iterator[Any]:
        """``DecideStream`` for one cell: ``DecideRequest`` messages in, ``DecideResponse``
        messages out (in order); ``timeout`` bounds the whole stream (None: none). The
        cell id rides on the stream's metadata."""
        return iter(
            self.stub.DecideStream(
                iter(requests),
                metadata=cell_metadata(cell_id),
                timeout=timeout,
                wait_for_ready=self.wait_for_ready,
            )
        )

    def report_outcome(
        self,
        *,
        cell_id: int,
        slot: int,
        ue_id: Any,
        delivered_bits: Any,
        first_tx_ack: Any,
        mcs: Any = (),
        slot_duration_us: int = 0,
    ) -> int:
        resp = self.stub.ReportOutcome(
            pb.OutcomeReport(
                cell_id=cell_id,
                slot=slot,
                ue_id=list(ue_id),
                delivered_bits=list(delivered_bits),
                first_tx_ack=list(first_tx_ack),
                mcs=list(mcs),
                slot_duration_us=slot_duration_us,
            ),
            metadata=cell_metadata(cell_id),
            timeout=self.timeout,
            wait_for_ready=self.wait_for_ready,
        )
        return resp.accepted

    def release(self, *, cell_id: int, ue_ids: Any) -> int:
        resp = self.stub.ReleaseUe(
            pb.ReleaseUeRequest(cell_id=cell_id, ue_id=[int(u) for u in ue_ids]),
            metadata=cell_metadata(cell_id),
            timeout=self.timeout,
            wait_for_ready=self.wait_for_ready,
        )
        return resp.released

    def get_model(self) -> Any:
        return self.stub.GetModel(
            pb.GetModelRequest(), timeout=self.timeout, wait_for_ready=self.wait_for_ready
        )

    def reload_model(self) -> Any:
        md = (("authorization", f"Bearer {self.admin_token}"),) if self.admin_token else None
        return self.stub.ReloadModel(
            pb.ReloadModelRequest(), metadata=md, timeout=60.0, wait_for_ready=self.wait_for_ready
        )


class RemotePolicy:
    """A running xApp as a :class:`linkadapt.policy.Policy`.

    ``act`` sends the batch's raw reports (one ``Decide`` per cell in the batch; the
    xApp keeps its own history, so ``batch.obs`` is not sent) and returns the MCS.
    ``reset(rows)`` releases the UEs last seen on those rows. ``last_source`` holds the
    per-UE decision source of the last call.

    Fallback: a local per-UE OLLA (:class:`linkadapt.baselines.OllaPolicy`, the xApp's own
    fallback settings by default) is stepped on every batch, so it is warm; a cell whose
    ``Decide`` fails (xApp down, overloaded, deadline) gets OLLA's MCS instead of an
    exception, with source FALLBACK, counted in ``fallback_calls`` / ``fallback_ues``.
    INVALID_ARGUMENT is still raised: it means this client sends bad requests (or an
    MCS-table mismatch), which no fallback should hide. Failed releases are counted in
    ``release_failures`` (the xApp forgets idle UEs by itself).
    """

    name = "xapp"

    def __init__(
        self,
        target: str | XappClient,
        *,
        timeout: float = 5.0,
        fresh_state: bool = True,
        wait_for_ready: bool = False,
        mcs_table: int = 2,
        olla_bler_target: float = 0.1,
        olla_delta_up_db: float = 1.0,
        tls: bool | None = None,
        tls_ca_file: str | Path | None = None,
        tls_cert_file: str | Path | None = None,
        tls_key_file: str | Path | None = None,
        tls_server_name: str | None = None,
    ) -> None:
        """``tls*``: as :class:`XappClient`'s, used with a ``target`` address."""
        self.client = (
            target
            if isinstance(target, XappClient)
            else XappClient(
                target,
                timeout=timeout,
                wait_for_ready=wait_for_ready,
                tls=tls,
                tls_ca_file=tls_ca_file,
                tls_cert_file=tls_cert_file,
                tls_key_file=tls_key_file,
                tls_server_name=tls_server_name,
            )
        )
        # fresh_state: this instance's cells live in their own id range on the xApp, so a
        # new policy (e.g. one per evaluation seed) never inherits per-UE history that an
        # earlier instance left behind for the same (cell, UE) ids (it expires by TTL).
        self.cell_base = (secrets.randbits(31) + 1) << CELL_BITS if fresh_state else 0
        self.slot = 0
        self.last_source = np.zeros(0, np.uint8)
        self._row_key: dict[int, tuple[int, int]] = {}
        self.olla = OllaPolicy(
            64, bler_target=olla_bler_target, delta_up_db=olla_delta_up_db, mcs_table=mcs_table
        )
        self.fallback_calls = 0
        self.fallback_ues = 0
        self.release_failures = 0
        self._failing = False

    def act(self, batch: DecisionBatch) -> np.ndarray:
        reports = batch.reports
        n = len(reports)
        if n and int(batch.rows.max()) >= self.olla.loop.capacity:
            self.olla.grow(max(int(batch.rows.max()) + 1, 2 * self.olla.loop.capacity))
        fallback = np.asarray(self.olla.act(batch), dtype=np.int32)  # always stepped
        mcs = np.zeros(n, np.int32)
        source = np.zeros(n, np.uint8)
        failed = False
        for cell in np.unique(reports.cell_id).tolist():
            if cell >= 1 << CELL_BITS:
                raise ValueError(f"cell id {cell} needs more than {CELL_BITS} bits")
            idx = np.flatnonzero(reports.cell_id == cell)
            part = reports.take(idx)
            try:
                m, s, _ = self.client.decide(
                    part, cell_id=self.cell_base + int(cell), slot=self.slot
                )
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    raise
                self._fell_back(exc, idx.size)
                failed = True
                m, s = fallback[idx], np.full(idx.size, SOURCE_FALLBACK, np.uint8)
            mcs[idx] = m
            source[idx] = s
        if self._failing and not failed:
            self._failing = False
            log.info("xApp reachable again", extra={"fallback_calls": self.fallback_calls})
        rows = batch.rows.tolist()
        cells = (reports.cell_id + self.cell_base).tolist()
        self._row_key.update(
            zip(rows, zip(cells, reports.ue_id.tolist(), strict=True), strict=True)
        )
        self.slot += 1
        self.last_source = source
        return mcs

    def _fell_back(self, exc: grpc.RpcError, n_ues: int) -> None:
        self.fallback_calls += 1
        self.fallback_ues += n_ues
        if not self._failing:  # once per outage, not once per slot
            self._failing = True
            log.warning(
                "xApp call failed, local OLLA decides until it answers again",
                extra={"code": exc.code().name, "details": exc.details()},
            )

    def reset(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows)
        inside = rows[rows < self.olla.loop.capacity]
        if inside.size:
            self.olla.reset(inside)
        by_cell: dict[int, list[int]] = {}
        for r in rows.tolist():
            key = self._row_key.pop(r, None)
            if key is not None:
                by_cell.setdefault(key[0], []).append(key[1])
        for cell, ues in by_cell.items():
            try:
                self.client.release(cell_id=cell, ue_ids=ues)
            except grpc.RpcError as exc:
                # INVALID_ARGUMENT: already expired on the server, nothing to forget;
                # anything else (xApp down...): its idle-UE TTL forgets them
                if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
                    self.release_failures += 1

    def close(self) -> None:
        self.client.close()
