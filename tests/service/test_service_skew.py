"""Training/serving skew: the same report sequence gives the same observation and the same
MCS in-process (linkadapt encoder + onnxruntime), over gRPC and over REST."""

from __future__ import annotations

from pathlib import Path

import grpc
import httpx
import numpy as np
import onnxruntime as ort
from service_testing import ServerThread, grpc_request, json_request, random_reports

from linkadapt.features import FEATURE_NAMES, FeatureHistory
from linkadapt.reports import ReportBatch
from service.proto_gen import link_adaptation_pb2_grpc as pb_grpc

N_UES, N_SLOTS = 48, 12


def _decide_both(
    stub, server: ServerThread, cells: tuple[int, int], slot: int, cols: dict, want: np.ndarray
):
    """Decide ``cols`` over gRPC (cell ``cells[0]``) and REST (``cells[1]``); both must give
    ``want``. Returns (gRPC response, REST JSON)."""
    got_grpc = stub.Decide(grpc_request(cells[0], slot, cols), timeout=10)
    r = httpx.post(f"{server.http_base}/v1/decisions", json=json_request(cells[1], slot, cols))
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(np.asarray(got_grpc.mcs), want)
    np.testing.assert_array_equal(np.asarray(r.json()["mcs"]), want)
    return got_grpc, r.json()


def test_same_reports_same_observation_same_mcs(server: ServerThread, model_dir: Path) -> None:
    rng = np.random.default_rng(42)
    ue_ids = rng.choice(10**9, N_UES, replace=False).astype(np.int64)
    sess = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    history = FeatureHistory(N_UES)
    rows = np.arange(N_UES)
    cell_grpc, cell_rest = 501, 502
    dp = server.app.dataplane
    with grpc.insecure_channel(server.grpc_target) as ch:
        stub = pb_grpc.LinkAdaptationStub(ch)
        for slot in range(N_SLOTS):
            # UEs come in a different order each slot; the server must map ids to rows
            order = rng.permutation(N_UES)
            cols = random_reports(rng, ue_ids[order])
            batch = ReportBatch.from_arrays(**cols)
            history.update(rows[order], batch)
            obs = history.encode(rows[order])
            want = np.argmax(sess.run(None, {"obs": obs})[0], axis=1)

            got_grpc, got_rest = _decide_both(
                stub, server, (cell_grpc, cell_rest), slot, cols, want
            )
            assert set(got_grpc.source) == {1}
            assert set(got_rest["source"]) == {"DECISION_SOURCE_MODEL"}

            def _server_obs(cell: int, ues: np.ndarray = ue_ids[order]) -> np.ndarray:
                srows, known = dp.state.lookup(cell, ues)
                assert known.all()
                return dp.state.history.encode(srows).copy()

            np.testing.assert_array_equal(server.call(_server_obs, cell_grpc), obs)
            np.testing.assert_array_equal(server.call(_server_obs, cell_rest), obs)


def test_inline_mode_gives_the_same_decisions(server: ServerThread, model_dir: Path) -> None:
    """``inference_thread=False`` (everything on the event loop) decides identically."""
    inline = ServerThread(model_dir=model_dir, inference_thread=False)
    try:
        rng = np.random.default_rng(9)
        ues = np.arange(40)
        with (
            grpc.insecure_channel(server.grpc_target) as a,
            grpc.insecure_channel(inline.grpc_target) as b,
        ):
            sa, sb = pb_grpc.LinkAdaptationStub(a), pb_grpc.LinkAdaptationStub(b)
            for slot in range(6):
                req = grpc_request(777, slot, random_reports(rng, ues))
                ra, rb = sa.Decide(req, timeout=10), sb.Decide(req, timeout=10)
                assert list(ra.mcs) == list(rb.mcs) and list(ra.source) == list(rb.source)
                # and the REST path of the inline server (another cell, same reports)
                body = json_request(
                    778,
                    slot,
                    {
                        k: list(getattr(req, k))
                        for k in (
                            "ue_id",
                            "cqi",
                            "cqi_age_slots",
                            "harq_ack",
                            "harq_mcs",
                            "rank",
                            "n_prb",
                            "n_symbols",
                            "buffer_bytes",
                        )
                    },
                )
                r = httpx.post(f"{inline.http_base}/v1/decisions", json=body)
                assert r.status_code == 200 and r.json()["mcs"] == list(ra.mcs)
        assert inline.app.dataplane.batcher.worker is None
    finally:
        inline.stop()


class _LocalOnnxPolicy:
    """The reference: linkadapt's encoder + onnxruntime in this process (no xApp)."""

    name = "local-onnx"

    def __init__(self, n_ues: int, model: Path) -> None:
        from linkadapt.features import FeatureHistory

        self.history = FeatureHistory(n_ues)
        self.sess = ort.InferenceSession(
            str(model / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        self.input = self.sess.get_inputs()[0].name

    def act(self, batch):  # noqa: ANN001, ANN201
        self.history.update(batch.rows, batch.reports)
        obs = self.history.encode(batch.rows)
        return np.argmax(self.sess.run(None, {self.input: obs})[0], axis=1)

    def reset(self, rows: np.ndarray) -> None:
        self.history.reset(rows)


def test_evaluation_loop_same_kpis_in_process_and_through_the_xapp(model_dir: Path) -> None:
    """Through the simulator, paired seeds: the served student (models/default when shipped,
    else the test model) gives exactly the KPIs of the same ONNX file run in-process."""
    from linkadapt.sim.evaluation import evaluate
    from service.client import RemotePolicy

    shipped = Path(__file__).resolve().parents[2] / "models" / "default"
    model = shipped if (shipped / "manifest.json").exists() else model_dir
    srv = ServerThread(model_dir=model)
    try:
        res = evaluate(
            {
                "xapp": lambda n: RemotePolicy(srv.grpc_target),
                "local": lambda n: _LocalOnnxPolicy(n, model),
            },
            "mimo",
            [0, 1],
            n_ues=16,
            n_slots=40,
        )
        for seed in (0, 1):
            assert res.per_seed["xapp"][seed] == res.per_seed["local"][seed], seed
        reg = srv.app.dataplane.metrics.registry
        assert reg.get_sample_value("ran_distill_decisions_total", {"source": "model"}) > 0
        assert not reg.get_sample_value("ran_distill_decisions_total", {"source": "fallback"})
    finally:
        srv.stop()


def test_harq_tx_index_same_observation_over_grpc_and_rest(
    server: ServerThread, model_dir: Path
) -> None:
    """With ``harq_tx_index`` in the requests, the served observation (OLLA offset on
    first-transmission feedback only) still equals the in-process one, on both protocols,
    and the index really reaches the server (it changes the offset feature)."""
    rng = np.random.default_rng(7)
    n = 24
    ue_ids = np.arange(n, dtype=np.int64) + 5000
    sess = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    history, blind = FeatureHistory(n), FeatureHistory(n)  # blind: index left out
    rows = np.arange(n)
    cell_grpc, cell_rest = 601, 602
    dp = server.app.dataplane
    with grpc.insecure_channel(server.grpc_target) as ch:
        stub = pb_grpc.LinkAdaptationStub(ch)
        for slot in range(8):
            cols = random_reports(rng, ue_ids, harq_tx_index=True)
            history.update(rows, ReportBatch.from_arrays(**cols))
            blind.update(
                rows,
                ReportBatch.from_arrays(**{k: v for k, v in cols.items() if k != "harq_tx_index"}),
            )
            obs = history.encode(rows)
            want = np.argmax(sess.run(None, {"obs": obs})[0], axis=1)
            _decide_both(stub, server, (cell_grpc, cell_rest), slot, cols, want)

            def _server_obs(cell: int) -> np.ndarray:
                srows, known = dp.state.lookup(cell, ue_ids)
                assert known.all()
                return dp.state.history.encode(srows).copy()

            np.testing.assert_array_equal(server.call(_server_obs, cell_grpc), obs)
            np.testing.assert_array_equal(server.call(_server_obs, cell_rest), obs)
    off = FEATURE_NAMES.index("olla_offset_db")
    assert not np.array_equal(obs[:, off], blind.encode(rows)[:, off])


def test_olla_fallback_ignores_retransmission_feedback(tmp_path: Path) -> None:
    """No model: the per-UE OLLA fallback is linkadapt's OllaPolicy fed the index too."""
    from linkadapt.baselines import OllaPolicy
    from linkadapt.policy import DecisionBatch

    srv = ServerThread(model_dir=tmp_path / "absent")
    try:
        rng = np.random.default_rng(3)
        n = 16
        olla = OllaPolicy(n)
        with grpc.insecure_channel(srv.grpc_target) as ch:
            stub = pb_grpc.LinkAdaptationStub(ch)
            for slot in range(10):
                cols = random_reports(rng, np.arange(n), harq_tx_index=True)
                rb = ReportBatch.from_arrays(**cols)
                want = olla.act(
                    DecisionBatch(obs=np.zeros((n, 1), np.float32), reports=rb, rows=np.arange(n))
                )
                if slot % 2:
                    resp = stub.Decide(grpc_request(1, slot, cols), timeout=10)
                    got = list(resp.mcs)
                    assert set(resp.source) == {2}
                else:
                    r = httpx.post(
                        f"{srv.http_base}/v1/decisions", json=json_request(1, slot, cols)
                    )
                    assert r.status_code == 200, r.text
                    got = r.json()["mcs"]
                np.testing.assert_array_equal(np.asarray(got), want)
        assert np.any(olla.loop.offset_db != 0.0)
    finally:
        srv.stop()
