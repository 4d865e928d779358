"""A simulated gNB driving the xApp over gRPC: :class:`GnbRunner` and ``ran-distill gnb``.

The simulator (:class:`linkadapt.sim.Simulator`) plays the gNB. It steps all cells
together, so each slot is:

1. ``sim.observe()``: the reports of every UE. They are split by serving cell, and every
   cell sends its message on its own ``DecideStream`` (:class:`~ran_distill.gnb_link.CellLink`,
   one task per cell, as a DU with several cells would), all concurrently.
2. The answers of all cells are collected until the per-slot deadline. A cell without an
   answer in time (xApp down, late, overloaded) gets the gNB's own per-UE OLLA, which is
   stepped every slot on every report so it is warm when needed (counted as fallback).
3. ``sim.step(mcs)``: the MCS applies where ``batch.new_tx`` (a new transport block);
   HARQ retransmissions reuse theirs.
4. ``ReportOutcome`` per cell: the HARQ feedback that landed this slot (ACK/NACK of first
   transmissions, ``-1`` for retransmissions), delivered bits and MCS, so the xApp's KPI
   metrics fill.

Every message carries *all* UEs attached to the cell, not only the scheduled ones: HARQ
feedback and CSI land whether or not a UE is scheduled, and the served model was trained
on a history updated with every UE's report every slot (``feedback_age`` counts reports).
The xApp's answer is used only for the rows that start a transport block.

On handover the UE's old (cell, UE) state is released on the xApp (its new cell starts a
fresh history, as the simulator's does); at the end every UE is released.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np

from linkadapt.baselines import OllaPolicy
from linkadapt.policy import DecisionBatch
from ran_distill.gnb_config import GnbConfig, GnbError, GnbResult, gnb_scenario, onnx_digest
from ran_distill.gnb_link import (
    INVALID_ARGUMENT_CODE,
    BackgroundCalls,
    CellLink,
    XappProtocolError,
)
from ran_distill.gnb_stats import CellTally, GnbStats
from service.client import channel_options, decide_request
from service.proto_gen import link_adaptation_pb2 as pb
from service.proto_gen import link_adaptation_pb2_grpc as pb_grpc
from service.tls import channel_credentials

__all__ = [
    "GnbConfig",
    "GnbError",
    "GnbResult",
    "GnbRunner",
    "gnb_scenario",
    "run_gnb",
]

SOURCE_MODEL, SOURCE_XAPP_FALLBACK, SOURCE_GNB_FALLBACK = 1, 2, 0
PROGRESS_EVERY_SLOTS = 25


def _open_channel(cfg: GnbConfig) -> grpc.aio.Channel:
    """One channel to the xApp, like one DU: TLS (mutual with a client certificate) when
    configured, else plaintext; the client's reconnect backoff either way."""
    options = channel_options(retry=False)
    if not cfg.uses_tls:
        return grpc.aio.insecure_channel(cfg.target, options=options)
    try:
        credentials = channel_credentials(cfg.tls_ca_file, cfg.tls_cert_file, cfg.tls_key_file)
    except ValueError as exc:
        raise GnbError(str(exc)) from None
    return grpc.aio.secure_channel(cfg.target, credentials, options=options)


class GnbRunner:
    """Runs the simulator as a gNB against the xApp at ``config.target`` (see module doc).

    ``on_progress(runner)`` is called every few slots; :meth:`stop` (thread-safe) ends the
    run after the current slot, with results for the slots done.
    """

    def __init__(
        self, config: GnbConfig, on_progress: Callable[[GnbRunner], None] | None = None
    ) -> None:
        from linkadapt.sim import Simulator

        self.config = config
        self.on_progress = on_progress
        self.sim = Simulator(gnb_scenario(config), config.ues, config.seed)
        self.n_cells = self.sim.cfg.n_cells
        self.mcs_table = self.sim.cfg.mcs_table
        self.slot_seconds = self.sim.cfg.slot_seconds
        self.stats = GnbStats()
        self.tally = CellTally(self.n_cells, config.ues)
        self.olla = OllaPolicy(
            config.ues,
            bler_target=config.olla_bler_target,
            delta_up_db=config.olla_delta_up_db,
            mcs_table=self.mcs_table,
        )
        self.last_cell = np.full(config.ues, -1, np.int64)
        # rows whose xApp history is known to match the simulator's (skew is checked there)
        self.synced = np.ones(config.ues, bool)
        self.local: Any = None
        self.xapp_model_version = ""
        self.slot = 0
        self._stop = False
        self.links: dict[int, CellLink] = {}

    def stop(self) -> None:
        self._stop = True

    @property
    def links_up(self) -> int:
        return sum(link.up for link in self.links.values())

    async def run(self) -> GnbResult:
        cfg = self.config
        t_start = time.perf_counter()
        channel = _open_channel(cfg)
        try:
            await self._connect(channel)
            stub = pb_grpc.LinkAdaptationStub(channel)
            # on a virtual clock (no --realtime) outcome reports hold the slot loop back
            # rather than being dropped; paced, a slot never waits for them
            background = BackgroundCalls(self.stats, block=cfg.realtime == 0)

            def ready() -> bool:
                state = channel.get_state(try_to_connect=False)
                return bool(state == grpc.ChannelConnectivity.READY)

            self.links = {
                c: CellLink(
                    stub,
                    cfg.cell_offset + c,
                    self.stats,
                    max_in_flight=cfg.max_in_flight,
                    channel_ready=ready,
                )
                for c in range(self.n_cells)
            }
            for link in self.links.values():
                link.start()
            await asyncio.sleep(0)  # let the links open their streams
            try:
                await self._loop(stub, background)
            finally:
                await self._finish(stub, background)
        finally:
            await channel.close()
        kpis = self.sim.summary()
        first_tx, nacks = int(self.tally.first_tx.sum()), int(self.tally.nacks.sum())
        return GnbResult(
            config=cfg,
            scenario=self.sim.cfg.name,
            slots=self.slot,
            wall_s=time.perf_counter() - t_start,
            kpis=kpis,
            reported={
                "delivered_bits": float(self.tally.bits.sum()),
                "first_tx": float(first_tx),
                "first_tx_nacks": float(nacks),
                "first_tx_bler": nacks / first_tx if first_tx else float("nan"),
            },
            per_cell=self.tally.per_cell(self.slot_seconds),
            stats=self.stats,
            xapp_model_version=self.xapp_model_version,
            skew_checked=self.local is not None,
        )

    # ------------------------------------------------------------------ setup / teardown
    async def _connect(self, channel: grpc.aio.Channel) -> None:
        cfg = self.config
        try:
            await asyncio.wait_for(channel.channel_ready(), cfg.connect_timeout_s)
            info = await pb_grpc.LinkAdaptationStub(channel).GetModel(
                pb.GetModelRequest(), timeout=cfg.connect_timeout_s
            )
        except (TimeoutError, grpc.aio.AioRpcError) as exc:
            raise GnbError(
                f"the xApp at {cfg.target} did not answer within {cfg.connect_timeout_s:g} s"
            ) from exc
        self.xapp_model_version = str(info.version)
        if cfg.model is not None:
            digest = onnx_digest(cfg.model)[:12]
            if info.loaded and self.xapp_model_version.endswith("+" + digest):
                from training.policies import OnnxQPolicy

                onnx = cfg.model / "model.onnx" if cfg.model.is_dir() else cfg.model
                self.local = OnnxQPolicy(onnx, "model")

    async def _finish(self, stub: Any, background: BackgroundCalls) -> None:
        """Outcomes flushed, every UE released, streams closed."""
        cells = self.last_cell
        for c in np.unique(cells[cells >= 0]).tolist():
            ues = np.flatnonzero(cells == c)
            msg = pb.ReleaseUeRequest(cell_id=self.config.cell_offset + c, ue_id=ues.tolist())
            await background.submit("release", stub.ReleaseUe, msg)
        await background.flush(timeout=10.0)
        await background.close()
        for link in self.links.values():
            await link.close()
        if background.error is not None:
            raise background.error

    # ------------------------------------------------------------------ the slot loop
    async def _loop(self, stub: Any, background: BackgroundCalls) -> None:
        cfg = self.config
        period = self.slot_seconds / cfg.realtime if cfg.realtime > 0 else 0.0
        t0 = time.perf_counter()
        for k in range(cfg.slots):
            if self._stop:
                break
            if period:
                lag = time.perf_counter() - (t0 + k * period)
                if lag < 0:
                    await asyncio.sleep(-lag)
                elif lag > period:
                    self.stats.behind_schedule_slots += 1
            await self._slot(stub, background)
            if background.error is not None:
                raise background.error
            if self.on_progress is not None and (
                self.slot % PROGRESS_EVERY_SLOTS == 0 or self.slot == cfg.slots
            ):
                self.on_progress(self)

    async def _slot(self, stub: Any, background: BackgroundCalls) -> None:
        # Yield to the links every slot: with every cell down (nothing awaited) and no pacing
        # sleep, the loop would otherwise never give their reconnect tasks a turn.
        await asyncio.sleep(0)
        cfg, sim, stats = self.config, self.sim, self.stats
        delivered_before = sim.kpi.delivered_bits.copy()
        batch = sim.observe()
        delivered = sim.kpi.delivered_bits - delivered_before
        slot = sim.t
        reports = batch.reports
        await self._handovers(batch, stub, background)
        fallback = np.asarray(self.olla.act(batch), np.int32)  # stepped every slot: warm

        cells, groups = _split_by_cell(reports.cell_id)
        asked: list[tuple[int, np.ndarray, asyncio.Future[Any] | None]] = []
        for cell, idx in zip(cells, groups, strict=True):
            req = decide_request(
                reports.take(idx),
                cell_id=cfg.cell_offset + cell,
                slot=slot,
                mcs_table=self.mcs_table,
            )
            asked.append((cell, idx, self.links[cell].exchange(slot, req)))
        waiting = [fut for _, _, fut in asked if fut is not None]
        if waiting:
            await asyncio.wait(waiting, timeout=cfg.deadline_ms / 1e3)

        mcs = fallback.copy()
        source = np.full(len(reports), SOURCE_GNB_FALLBACK, np.int32)
        late = fell_back = False
        for cell, idx, fut in asked:
            stats.cell_slots += 1
            resp = self._answer(idx, fut, self.links[cell])
            if resp is None:
                fell_back = True
                stats.fallback_cell_slots += 1
                late = late or (fut is not None and not fut.done())
                late = late or (fut is None and self.links[cell].refused == "backlog")
                continue
            mcs[idx] = np.asarray(resp.mcs, np.int32)
            source[idx] = np.asarray(resp.source, np.int32)
        stats.deadline_missed_slots += late
        stats.fallback_slots += fell_back
        self._count_decisions(batch, source, mcs)

        sim.step(mcs)
        self.slot += 1
        stats.slots += 1
        await self._report_outcomes(stub, background, slot, batch, delivered, cells, groups)

    def _answer(self, idx: np.ndarray, fut: asyncio.Future[Any] | None, link: CellLink) -> Any:
        """The cell's usable ``DecideResponse``, or None (counted by why)."""
        stats = self.stats
        if fut is None:  # not sent: the report never reaches the xApp
            if link.refused == "backlog":  # the xApp is that far behind: as late
                stats.late_cell_slots += 1
            else:
                stats.disconnected_cell_slots += 1
            self.synced[idx] = False
            return None
        if not fut.done():
            stats.late_cell_slots += 1

            def unsync(f: asyncio.Future[Any], rows: np.ndarray = idx) -> None:
                if f.result() is None:  # the stream broke before the xApp answered
                    self.synced[rows] = False

            fut.add_done_callback(unsync)
            return None
        resp = fut.result()
        if resp is None:
            stats.disconnected_cell_slots += 1
            self.synced[idx] = False
            return None
        if resp.HasField("error"):
            if resp.error.code == INVALID_ARGUMENT_CODE:
                raise XappProtocolError(f"{resp.error.field}: {resp.error.message}")
            stats.rejected_cell_slots += 1
            stats.count_error(int(resp.error.code))
            self.synced[idx] = False  # shed or stale: the xApp did not take the report
            return None
        if len(resp.mcs) != idx.size:
            raise XappProtocolError(f"{len(resp.mcs)} decisions for {idx.size} UEs")
        stats.answered_cell_slots += 1
        return resp

    def _count_decisions(self, batch: DecisionBatch, source: np.ndarray, mcs: np.ndarray) -> None:
        stats = self.stats
        new = np.asarray(batch.new_tx, bool)
        stats.decisions += int(new.sum())
        stats.decisions_xapp_model += int((new & (source == SOURCE_MODEL)).sum())
        stats.decisions_xapp_fallback += int((new & (source == SOURCE_XAPP_FALLBACK)).sum())
        stats.decisions_gnb_fallback += int((new & (source == SOURCE_GNB_FALLBACK)).sum())
        if self.local is None:
            return
        check = new & (source == SOURCE_MODEL) & self.synced
        if check.any():
            expected = np.asarray(self.local.act(batch))
            stats.skew_checked += int(check.sum())
            stats.skew_mismatches += int((expected[check] != mcs[check]).sum())

    async def _handovers(self, batch: DecisionBatch, stub: Any, bg: BackgroundCalls) -> None:
        """Reset the local OLLA of UEs that changed cell and release their old xApp state."""
        cell_now = batch.reports.cell_id
        if batch.attached is not None and batch.attached.any():
            moved = batch.rows[batch.attached]
            self.olla.reset(moved)
            self.synced[moved] = True  # a new (cell, UE) key: fresh on both sides
            old = self.last_cell[moved]
            for c in np.unique(old[old >= 0]).tolist():
                ues = moved[old == c]
                msg = pb.ReleaseUeRequest(cell_id=self.config.cell_offset + c, ue_id=ues.tolist())
                await bg.submit("release", stub.ReleaseUe, msg)
        self.last_cell[batch.rows] = cell_now

    async def _report_outcomes(
        self,
        stub: Any,
        bg: BackgroundCalls,
        slot: int,
        batch: DecisionBatch,
        delivered: np.ndarray,
        cells: list[int],
        groups: list[np.ndarray],
    ) -> None:
        r = batch.reports
        feedback = r.harq_ack >= 0
        first_ack = np.where(feedback & (r.harq_tx_index == 0), r.harq_ack, -1).astype(np.int64)
        fb_mcs = np.where(feedback, r.harq_mcs, 0).astype(np.int64)
        slot_us = int(round(self.slot_seconds * 1e6))
        for cell, idx in zip(cells, groups, strict=True):
            ues = r.ue_id[idx]
            self.tally.add(cell, slot, ues, delivered[idx], first_ack[idx])
            msg = pb.OutcomeReport(
                cell_id=self.config.cell_offset + cell,
                slot=slot,
                ue_id=ues.tolist(),
                delivered_bits=delivered[idx].tolist(),
                first_tx_ack=first_ack[idx].tolist(),
                mcs=fb_mcs[idx].tolist(),
                slot_duration_us=slot_us,
            )
            await bg.submit("outcome", stub.ReportOutcome, msg)


def _split_by_cell(cell_id: np.ndarray) -> tuple[list[int], list[np.ndarray]]:
    """The cells present and each one's row indices (in report order)."""
    order = np.argsort(cell_id, kind="stable")
    cells, starts = np.unique(cell_id[order], return_index=True)
    return [int(c) for c in cells], np.split(order, starts[1:])


def run_gnb(
    config: GnbConfig,
    on_progress: Callable[[GnbRunner], None] | None = None,
    *,
    stop_on_sigint: bool = False,
) -> GnbResult:
    """Run the gNB to completion in a fresh event loop (see :class:`GnbRunner`).

    ``stop_on_sigint``: Ctrl-C ends the run after the current slot (results of the slots
    done) instead of aborting it; only from the main thread."""
    runner = GnbRunner(config, on_progress)

    async def main() -> GnbResult:
        if stop_on_sigint:
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, runner.stop)
        return await runner.run()

    return asyncio.run(main())
