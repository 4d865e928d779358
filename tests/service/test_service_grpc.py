"""gRPC surface on a real server: health, reflection, streaming, deadlines, cap, admin
reload, OLLA fallback, hot reload, outcome KPIs, TTL expiry."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from service_testing import ADMIN_TOKEN, ServerThread, grpc_request, random_reports, write_model_dir

from service.proto_gen import link_adaptation_pb2 as pb
from service.proto_gen import link_adaptation_pb2_grpc as pb_grpc

SERVICE = "linkadapt.v1.LinkAdaptation"


def _stub(target: str) -> tuple[grpc.Channel, pb_grpc.LinkAdaptationStub]:
    ch = grpc.insecure_channel(target)
    return ch, pb_grpc.LinkAdaptationStub(ch)


def _wait(cond, what: str, tries: int = 300) -> None:  # bounded, not a timing assertion
    for _ in range(tries):
        if cond():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def test_health_and_reflection(server: ServerThread) -> None:
    with grpc.insecure_channel(server.grpc_target) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for name in ("", SERVICE):
            resp = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as err:
            health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        db = ProtoReflectionDescriptorDatabase(ch)
        services = set(db.get_services())
        assert {SERVICE, "grpc.health.v1.Health"} <= services
        from google.protobuf.descriptor_pool import DescriptorPool

        svc = DescriptorPool(db).FindServiceByName(SERVICE)
        assert {m.name for m in svc.methods} >= {"Decide", "DecideStream", "ReloadModel"}


def test_stream_one_response_per_slot_and_errors_keep_stream(server: ServerThread) -> None:
    rng = np.random.default_rng(0)
    ues = np.arange(200, 232)
    msgs = []
    for slot in range(6):
        cols = random_reports(rng, ues)
        if slot == 3:
            cols["cqi"][0], cols["cqi_age_slots"][0] = 99, 1
        msgs.append(grpc_request(42, slot, cols))
    ch, stub = _stub(server.grpc_target)
    with ch:
        out = list(stub.DecideStream(iter(msgs), timeout=20))
    assert [r.slot for r in out] == list(range(6))
    for r in out:
        if r.slot == 3:
            assert r.error.code == 3 and r.error.field == "cqi" and len(r.mcs) == 0
        else:
            assert len(r.mcs) == 32 and not r.HasField("error")
            assert r.model_version == out[0].model_version != ""


def test_deadline_and_get_model(server: ServerThread) -> None:
    ch, stub = _stub(server.grpc_target)
    with ch:
        with pytest.raises(grpc.RpcError) as err:
            stub.Decide(
                grpc_request(9, 0, random_reports(np.random.default_rng(0), np.arange(8))),
                timeout=-1.0,
            )
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        info = stub.GetModel(pb.GetModelRequest(), timeout=5)
        assert info.loaded and info.n_actions == 28 and info.parameters > 0
        assert info.last_reload_result == "ok"


def test_admin_reload_auth(server: ServerThread) -> None:
    ch, stub = _stub(server.grpc_target)
    with ch:
        with pytest.raises(grpc.RpcError) as err:
            stub.ReloadModel(pb.ReloadModelRequest(), timeout=30)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            stub.ReloadModel(
                pb.ReloadModelRequest(), timeout=30, metadata=(("authorization", "Bearer wrong"),)
            )
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        ok = stub.ReloadModel(
            pb.ReloadModelRequest(),
            timeout=30,
            metadata=(("authorization", f"Bearer {ADMIN_TOKEN}"),),
        )
        assert ok.ok and ok.model.loaded
    assert httpx.post(f"{server.http_base}/v1/model/reload").status_code == 401
    r = httpx.post(
        f"{server.http_base}/v1/model/reload",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["ok"] is True


def test_outcomes_feed_cell_kpis(server: ServerThread) -> None:
    ch, stub = _stub(server.grpc_target)
    window = server.settings.kpi_window_slots
    ues = list(range(10))
    with ch:
        stub.Decide(
            grpc_request(77, 0, random_reports(np.random.default_rng(1), np.asarray(ues))),
            timeout=5,
        )
        for slot in (0, window - 1):  # two reports spanning exactly one window
            stub.ReportOutcome(
                pb.OutcomeReport(
                    cell_id=77,
                    slot=slot,
                    ue_id=ues,
                    delivered_bits=[8000] * 10,
                    first_tx_ack=[1] * 8 + [0, -1],
                    mcs=[10] * 10,
                ),
                timeout=5,
            )
    reg = server.app.dataplane.metrics.registry
    seconds = window * 500e-6
    assert reg.get_sample_value("ran_distill_cell_delivered_bytes_total", {"cell": "77"}) == 20000
    assert reg.get_sample_value("ran_distill_cell_first_transmissions_total", {"cell": "77"}) == 18
    tput = reg.get_sample_value("ran_distill_cell_throughput_bytes_per_second", {"cell": "77"})
    assert tput == pytest.approx(20000 / seconds)
    assert reg.get_sample_value("ran_distill_cell_first_tx_bler_ratio", {"cell": "77"}) == (
        pytest.approx(2 / 18)
    )
    # manifest reference for the first scenario ("mimo"): 50 Mbit/s per UE, BLER 0.1
    dev = reg.get_sample_value(
        "ran_distill_cell_throughput_deviation_ratio", {"cell": "77", "scenario": "mimo"}
    )
    assert dev == pytest.approx(20000 * 8 / seconds / 10 / 50e6 - 1)
    bdev = reg.get_sample_value(
        "ran_distill_cell_first_tx_bler_deviation_ratio", {"cell": "77", "scenario": "mimo"}
    )
    assert bdev == pytest.approx(2 / 18 - 0.1)
    assert reg.get_sample_value("ran_distill_cell_mcs_count", {"cell": "77"}) >= 10


def test_no_model_means_olla_fallback(tmp_path: Path) -> None:
    srv = ServerThread(model_dir=tmp_path / "absent")
    try:
        cols = random_reports(np.random.default_rng(0), np.arange(16))
        ch, stub = _stub(srv.grpc_target)
        with ch:
            resp = stub.Decide(grpc_request(1, 0, cols), timeout=5)
            assert set(resp.source) == {pb.DECISION_SOURCE_FALLBACK} and resp.model_version == ""
            info = stub.GetModel(pb.GetModelRequest(), timeout=5)
            assert not info.loaded and "not a directory" in info.last_reload_error
        r = httpx.get(f"{srv.http_base}/ric/v1/health/ready")
        assert r.status_code == 200  # fallback serves: decisions never stop
        # the fallback is linkadapt's OLLA: same decisions as a local OllaPolicy
        from linkadapt.baselines import OllaPolicy
        from linkadapt.policy import DecisionBatch
        from linkadapt.reports import ReportBatch

        olla = OllaPolicy(16)
        rb = ReportBatch.from_arrays(**cols)
        want = olla.act(
            DecisionBatch(obs=np.zeros((16, 1), np.float32), reports=rb, rows=np.arange(16))
        )
        np.testing.assert_array_equal(np.asarray(resp.mcs), want)
        reg = srv.app.dataplane.metrics.registry
        assert reg.get_sample_value("ran_distill_decisions_total", {"source": "fallback"}) == 16
        assert reg.get_sample_value("ran_distill_model_loaded") == 0
    finally:
        srv.stop()


def test_inference_failure_falls_back(server: ServerThread) -> None:
    dp = server.app.dataplane
    model = dp.registry.current

    class Broken:
        version = "broken"

        def infer(self, obs: np.ndarray) -> np.ndarray:
            raise RuntimeError("onnxruntime exploded")

    server.call(setattr, dp.registry, "current", Broken())
    try:
        ch, stub = _stub(server.grpc_target)
        with ch:
            cols = random_reports(np.random.default_rng(0), np.arange(8))
            resp = stub.Decide(grpc_request(3, 0, cols), timeout=5)
        assert set(resp.source) == {pb.DECISION_SOURCE_FALLBACK}
        assert dp.metrics.registry.get_sample_value("ran_distill_inference_errors_total") >= 1

        class NanRow:
            version = "nan-row"

            def infer(self, obs: np.ndarray) -> np.ndarray:
                q = model.infer(obs)
                q[0, 5] = np.nan
                q[1, 3] = np.inf
                return q

        server.call(setattr, dp.registry, "current", NanRow())
        with grpc.insecure_channel(server.grpc_target) as ch2:
            resp = pb_grpc.LinkAdaptationStub(ch2).Decide(grpc_request(4, 0, cols), timeout=5)
        fb, md = pb.DECISION_SOURCE_FALLBACK, pb.DECISION_SOURCE_MODEL
        assert list(resp.source) == [fb, fb] + [md] * 6
    finally:
        server.call(setattr, dp.registry, "current", model)


def test_hot_reload_on_file_change_and_failed_reload_keeps_old(tmp_path: Path) -> None:
    d = write_model_dir(tmp_path / "m", seed=0, version="v1")
    srv = ServerThread(model_dir=d, reload_poll_seconds=0.05)
    try:
        cols = random_reports(np.random.default_rng(0), np.arange(8))
        ch, stub = _stub(srv.grpc_target)
        with ch:
            assert stub.Decide(grpc_request(1, 0, cols), timeout=5).model_version.startswith("v1")
            write_model_dir(d, seed=1, version="v2", corrupt_golden=True)
            # the poll may first catch the directory half-written (model.onnx new, manifest
            # old: a hash mismatch, also refused); once the writes are done it retries
            _wait(
                lambda: (
                    "golden" in stub.GetModel(pb.GetModelRequest(), timeout=5).last_reload_error
                ),
                "failed reload on the golden rows",
            )
            info = stub.GetModel(pb.GetModelRequest(), timeout=5)
            assert info.version.startswith("v1") and info.last_reload_result == "failed"
            assert stub.Decide(grpc_request(1, 1, cols), timeout=5).model_version.startswith("v1")
            write_model_dir(d, seed=2, version="v3")
            _wait(
                lambda: stub.GetModel(pb.GetModelRequest(), timeout=5).version.startswith("v3"),
                "hot reload",
            )
            resp = stub.Decide(grpc_request(1, 2, cols), timeout=5)
            assert resp.model_version.startswith("v3") and set(resp.source) == {1}
    finally:
        srv.stop()


def test_full_table_evicts_stale_ues_and_refuses_only_oversized_requests(
    tmp_path: Path, model_dir: Path
) -> None:
    """Issue 13: one client filled the tracked-UE cap with made-up UEs, after which a
    legitimate cell's request with one new UE was refused whole."""
    srv = ServerThread(
        model_dir=model_dir, max_tracked_ues=20, max_ues_per_cell=16, ue_ttl_seconds=3600
    )
    try:
        rng = np.random.default_rng(0)
        ch, stub = _stub(srv.grpc_target)
        dp = srv.app.dataplane
        reg = dp.metrics.registry
        with ch:
            for cell in (666, 667):  # the flood: 2 cells x 10 made-up UEs, table full
                stub.Decide(grpc_request(cell, 0, random_reports(rng, np.arange(10))), timeout=5)
            assert reg.get_sample_value("ran_distill_tracked_ues") == 20
            # a real cell's request with new UEs: admitted whole, over gRPC and REST
            resp = stub.Decide(grpc_request(1, 0, random_reports(rng, np.arange(3))), timeout=5)
            assert len(resp.mcs) == 3
            r = httpx.post(
                f"{srv.http_base}/v1/decisions",
                json={
                    "cell_id": 1,
                    "slot": 1,
                    **{k: v.tolist() for k, v in random_reports(rng, np.arange(5)).items()},
                },
            )
            assert r.status_code == 200 and len(r.json()["mcs"]) == 5
            # the flood's oldest UEs made room; cell 1's UEs are all tracked
            assert srv.call(lambda: dp.state.lookup(1, np.arange(5))[1].all())
            assert srv.call(lambda: dp.state.n_tracked) == 20
            assert srv.call(lambda: dp.state.cells[666].ues.size) == 5  # 666 was older
            # a cell at its quota loses its own least recently seen UEs
            stub.Decide(grpc_request(2, 0, random_reports(rng, np.arange(16))), timeout=5)
            stub.Decide(grpc_request(2, 1, random_reports(rng, np.arange(2, 16))), timeout=5)
            stub.Decide(grpc_request(2, 2, random_reports(rng, np.arange(8, 18))), timeout=5)
            assert srv.call(lambda: dp.state.cells[2].ues.size) == 16
            assert not srv.call(lambda: dp.state.lookup(2, np.arange(2))[1].any())
            # only a request with more UEs than a cell may hold is refused
            with pytest.raises(grpc.RpcError) as err:
                stub.Decide(grpc_request(3, 0, random_reports(rng, np.arange(17))), timeout=5)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert err.value.details().startswith("ue_id:")
            assert "max_ues_per_cell=16" in err.value.details()
            assert reg.get_sample_value("ran_distill_ue_capacity_rejections_total") == 1
            # counted by reason once the sweep publishes what admissions forgot
            srv.call(dp.expire_idle)
            evicted = "ran_distill_ues_evicted_total"
            assert reg.get_sample_value(evicted, {"reason": "cell_quota"}) == 2
            # 5 for cell 1's new UEs, 16 for cell 2's first request
            assert reg.get_sample_value(evicted, {"reason": "capacity"}) == 5 + 16
            assert reg.get_sample_value("ran_distill_tracked_ues_limit") == 20
            # everyone idles past the TTL → the sweep frees them and counts them
            srv.call(setattr, dp.state, "ttl_seconds", 0.0)
            assert srv.call(dp.expire_idle) == 20
            assert reg.get_sample_value("ran_distill_ues_expired_total") == 20
            stub.Decide(grpc_request(2, 3, random_reports(rng, np.arange(10))), timeout=5)
            assert (
                stub.ReleaseUe(pb.ReleaseUeRequest(cell_id=2, ue_id=[0, 1]), timeout=5).released
                == 2
            )
            assert reg.get_sample_value("ran_distill_tracked_ues") == 8
    finally:
        srv.stop()


def test_drain_reports_not_serving_then_stops(model_dir: Path) -> None:
    srv = ServerThread(model_dir=model_dir, drain_seconds=1.0)
    import asyncio

    fut = asyncio.run_coroutine_threadsafe(srv.app.shutdown(), srv.loop)
    with grpc.insecure_channel(srv.grpc_target) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        _wait(
            lambda: (
                health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
                == health_pb2.HealthCheckResponse.NOT_SERVING
            ),
            "NOT_SERVING",
        )
        assert health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5).status == (
            health_pb2.HealthCheckResponse.NOT_SERVING
        )
    assert httpx.get(f"{srv.http_base}/ric/v1/health/ready").status_code == 503
    fut.result(30)
    srv.loop.call_soon_threadsafe(srv.loop.stop)
    srv.thread.join(10)


def test_internal_error_fails_one_request_not_the_worker(server: ServerThread) -> None:
    dp = server.app.dataplane
    original = dp.validator.decide

    def boom(cell_id, slot, mcs_table, columns):  # noqa: ANN001, ANN202
        if cell_id == 666:
            raise ValueError("synthetic bug")
        return original(cell_id, slot, mcs_table, columns)

    server.call(setattr, dp.validator, "decide", boom)
    try:
        cols = random_reports(np.random.default_rng(0), np.arange(4))
        ch, stub = _stub(server.grpc_target)
        with ch:
            with pytest.raises(grpc.RpcError) as err:
                stub.Decide(grpc_request(666, 0, cols), timeout=5)
            assert err.value.code() == grpc.StatusCode.INTERNAL
            assert len(stub.Decide(grpc_request(667, 0, cols), timeout=5).mcs) == 4
        r = httpx.post(
            f"{server.http_base}/v1/decisions",
            json={"cell_id": 666, **{k: v.tolist() for k, v in cols.items()}},
        )
        assert r.status_code == 500
    finally:
        server.call(delattr, dp.validator, "decide")


def test_release_is_ordered_with_decisions(server: ServerThread) -> None:
    """A release queued right after a decision for a brand-new UE applies after it."""
    dp = server.app.dataplane
    cols = random_reports(np.random.default_rng(0), np.array([4242]))

    async def scenario() -> tuple[int, bool]:
        decided = dp.submit(9090, 0, 0, dict(cols))  # not awaited yet
        released = await dp.release(9090, [4242])
        await decided
        return released, bool(dp.state.lookup(9090, np.array([4242]))[1][0])

    released, still_known = server.run(scenario())
    assert released == 1 and not still_known
