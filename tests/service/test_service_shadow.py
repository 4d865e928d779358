"""Shadow models on real servers (loopback): loading a candidate beside the active model,
shadow inference that never changes a response, the comparison and predicted KPIs in
GetModel / GET /v1/model and the metrics, promotion under load, rollback, automatic
promotion, and the interaction with hot reload."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from service_testing import (
    ADMIN_TOKEN,
    ServerThread,
    grpc_request,
    random_reports,
    write_model_dir,
)

from linkadapt import nr
from service.proto_gen import link_adaptation_pb2 as pb
from service.proto_gen import link_adaptation_pb2_grpc as pb_grpc
from service.shadow_stats import AckModel

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GRPC_AUTH = (("authorization", f"Bearer {ADMIN_TOKEN}"),)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Under one root: the active model, a good candidate, a refused one, and one outside."""
    root = tmp_path_factory.mktemp("shadow")
    out = {
        "active": write_model_dir(root / "active", seed=0, version="act"),
        "cand": write_model_dir(root / "cand", seed=5, version="cand"),
        "cand2": write_model_dir(root / "cand2", seed=6, version="cand2"),
        "bad": write_model_dir(root / "bad", seed=7, version="bad", corrupt_golden=True),
        "outside": write_model_dir(tmp_path_factory.mktemp("elsewhere") / "m", seed=8),
    }
    out["root"] = root
    return out


def _server(model_dir: Path, **settings: Any) -> ServerThread:
    settings.setdefault("admin_token", ADMIN_TOKEN)
    return ServerThread(model_dir=model_dir, **settings)


def _info(srv: ServerThread) -> dict[str, Any]:
    r = httpx.get(f"{srv.http_base}/v1/model", timeout=10)
    assert r.status_code == 200
    return r.json()


def _post(srv: ServerThread, path: str, body: Any = None, auth: bool = True) -> httpx.Response:
    return httpx.post(f"{srv.http_base}{path}", json=body, headers=AUTH if auth else {}, timeout=30)


def _sample(srv: ServerThread, name: str, labels: dict[str, str] | None = None) -> float:
    value = srv.app.dataplane.metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


def _traffic(seed: int, cell: int, slots: int, n_ues: int = 48) -> list[Any]:
    """A deterministic sequence of decide requests (one cell)."""
    rng = np.random.default_rng(seed)
    ues = np.arange(1000, 1000 + n_ues)
    return [grpc_request(cell, slot, random_reports(rng, ues)) for slot in range(slots)]


def _decide_all(srv: ServerThread, requests: list[Any]) -> list[Any]:
    with grpc.insecure_channel(srv.grpc_target) as ch:
        stub = pb_grpc.LinkAdaptationStub(ch)
        return [stub.Decide(r, timeout=10) for r in requests]


def _wait(cond: Any, what: str, tries: int = 500) -> None:  # bounded, not a timing assertion
    for _ in range(tries):
        if cond():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


# ----------------------------------------------------------------------------- loading
def test_load_candidate_validates_like_the_active_model(models: dict[str, Path]) -> None:
    srv = _server(models["active"])
    try:
        active = _info(srv)["version"]
        assert active.startswith("act+") and _info(srv)["candidate"]["loaded"] is False
        # admin only: no token 401, wrong path 422 (outside the root, empty, escaping)
        assert (
            _post(srv, "/v1/model/candidate", {"model_dir": "cand"}, auth=False).status_code == 401
        )
        for bad_path in (str(models["outside"]), "", "../elsewhere", 7):
            r = _post(srv, "/v1/model/candidate", {"model_dir": bad_path})
            assert r.status_code == 422 and r.json()["field"] == "model_dir", bad_path
        assert _post(srv, "/v1/model/candidate", {}).json()["field"] == "model_dir"
        # a refused candidate: clear error, counted, active model and state untouched
        r = _post(srv, "/v1/model/candidate", {"model_dir": "bad"})
        assert r.status_code == 422 and r.json()["field"] == "model_dir"
        assert "golden" in r.json()["detail"][0]["msg"]
        info = _info(srv)
        assert info["version"] == active and info["candidate"]["loaded"] is False
        assert info["candidate"]["last_load_result"] == "failed"
        assert "golden" in info["candidate"]["last_load_error"]
        assert _sample(srv, "ran_distill_candidate_loads_total", {"result": "failure"}) == 1
        assert _sample(srv, "ran_distill_candidate_loaded") == 0
        # a good one over REST (relative to the root) ...
        r = _post(srv, "/v1/model/candidate", {"model_dir": "cand"})
        assert r.status_code == 200, r.text
        cand = r.json()["candidate"]
        assert cand["loaded"] and cand["version"].startswith("cand+")
        assert cand["path"] == str(models["cand"].resolve())
        assert r.json()["version"] == active  # the active model is untouched
        # ... replaced over gRPC (absolute path under the root); a bad one keeps it
        with grpc.insecure_channel(srv.grpc_target) as ch:
            stub = pb_grpc.LinkAdaptationStub(ch)
            with pytest.raises(grpc.RpcError) as err:
                stub.LoadCandidate(pb.LoadCandidateRequest(model_dir="cand2"), timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            got = stub.LoadCandidate(
                pb.LoadCandidateRequest(model_dir=str(models["cand2"])),
                metadata=GRPC_AUTH,
                timeout=30,
            )
            assert got.candidate.version.startswith("cand2+") and got.version == active
            with pytest.raises(grpc.RpcError) as err:
                stub.LoadCandidate(
                    pb.LoadCandidateRequest(model_dir="bad"), metadata=GRPC_AUTH, timeout=30
                )
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "golden" in (err.value.details() or "")
            info = stub.GetModel(pb.GetModelRequest(), timeout=5)
            assert info.candidate.loaded and info.candidate.version.startswith("cand2+")
            # unload (twice: the second has nothing to do)
            for _ in range(2):
                got = stub.UnloadCandidate(
                    pb.UnloadCandidateRequest(), metadata=GRPC_AUTH, timeout=10
                )
                assert not got.candidate.loaded and got.version == active
        assert _sample(srv, "ran_distill_candidate_loads_total", {"result": "success"}) == 2
        # refused models are counted; refused paths never reach the loader
        assert _sample(srv, "ran_distill_candidate_loads_total", {"result": "failure"}) == 2
    finally:
        srv.stop()


def test_candidate_from_config_and_a_refused_one_at_start(models: dict[str, Path]) -> None:
    srv = _server(models["active"], candidate_model_dir=str(models["cand"]))
    try:
        assert _info(srv)["candidate"]["version"].startswith("cand+")
    finally:
        srv.stop()
    srv = _server(models["active"], candidate_model_dir=str(models["bad"]))
    try:
        info = _info(srv)
        assert info["version"].startswith("act+") and not info["candidate"]["loaded"]
        assert info["candidate"]["last_load_result"] == "failed"
        assert httpx.get(f"{srv.http_base}/ric/v1/health/ready").status_code == 200
    finally:
        srv.stop()


# ----------------------------------------------------------------------------- shadow pass
def test_shadow_leaves_responses_alone_and_compares(models: dict[str, Path]) -> None:
    """Server A shadows the candidate; B serves the active model alone; C serves the
    candidate. Same requests: A answers exactly like B, and A's comparison is B vs C."""
    requests = _traffic(seed=3, cell=11, slots=12)
    a = _server(models["active"], candidate_model_dir=str(models["cand"]), shadow_window_slots=5)
    b = _server(models["active"])
    c = _server(models["cand"])
    try:
        got_a, got_b, got_c = (_decide_all(s, requests) for s in (a, b, c))
        for ra, rb in zip(got_a, got_b, strict=True):
            assert ra == rb  # mcs, source, model_version: the active model's, always
        served = np.concatenate([np.asarray(r.mcs) for r in got_b])
        proposed = np.concatenate([np.asarray(r.mcs) for r in got_c])
        assert (served != proposed).any()  # the two models really differ here
        diff = proposed - served
        total = _info(a)["candidate"]["total"]
        assert total["cell_slots"] == 12 and total["compared_decisions"] == served.size
        assert total["agreement"] == pytest.approx(np.mean(diff == 0))
        assert total["agreement_within_one"] == pytest.approx(np.mean(np.abs(diff) <= 1))
        assert total["mean_mcs_difference"] == pytest.approx(diff.mean())
        # the window gauges hold the last full window (slots 5..9 of 12, window 5)
        window = _info(a)["candidate"]["last_window"]
        w = diff[5 * 48 : 10 * 48]
        assert window["cell_slots"] == 5 and window["agreement"] == pytest.approx(np.mean(w == 0))
        assert _sample(a, "ran_distill_shadow_window", {"quantity": "agreement"}) == (
            pytest.approx(np.mean(w == 0))
        )
        assert _sample(a, "ran_distill_shadow_decisions_total") == served.size
        assert _sample(
            a, "ran_distill_shadow_agreeing_decisions_total", {"tolerance": "exact"}
        ) == (np.count_nonzero(diff == 0))
        # cost: one shadow pass per inference group (none without a candidate) ...
        groups = "ran_distill_inference_batch_requests_count"
        shadow = "ran_distill_stage_latency_seconds_count"
        assert _sample(a, groups) >= 12 and _sample(a, shadow, {"stage": "shadow"}) == (
            _sample(a, groups)
        )
        assert _sample(b, shadow, {"stage": "shadow"}) == 0
        # ... with exactly one onnxruntime call of the candidate in it
        dp = a.app.dataplane
        counting = _CountingModel(dp.shadow.candidate)
        a.call(setattr, dp.shadow, "candidate", counting)
        before = _sample(a, groups)
        _decide_all(a, _traffic(seed=5, cell=13, slots=5))
        assert counting.calls == _sample(a, groups) - before == 5
        text = a.app.dataplane.metrics.exposition().decode()
        assert "ue" not in {lbl for line in text.splitlines() for lbl in _labels(line)}
    finally:
        for s in (a, b, c):
            s.stop()


class _CountingModel:
    """A candidate that counts its onnxruntime calls."""

    def __init__(self, model: Any) -> None:
        self.model, self.version, self.calls = model, model.version, 0

    def infer(self, obs: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.model.infer(obs)


def _labels(line: str) -> set[str]:
    if line.startswith("#") or "{" not in line:
        return set()
    inner = line[line.index("{") + 1 : line.index("}")]
    return {kv.split("=", 1)[0] for kv in inner.split(",") if "=" in kv}


def test_predicted_kpis_from_outcome_reports(models: dict[str, Path]) -> None:
    requests = _traffic(seed=4, cell=12, slots=6, n_ues=40)
    a = _server(models["active"], candidate_model_dir=str(models["cand"]))
    c = _server(models["cand"])
    try:
        got_a, got_c = _decide_all(a, requests), _decide_all(c, requests)
        rng = np.random.default_rng(9)
        model = AckModel(2, 0.1)
        want = {"first_tx": 0, "active_bits": 0.0, "cand_bits": 0.0, "nacks": 0.0, "cnacks": 0.0}
        with grpc.insecure_channel(a.grpc_target) as ch:
            stub = pb_grpc.LinkAdaptationStub(ch)
            for req, ra, rc in zip(requests, got_a, got_c, strict=True):
                act, cand = np.asarray(ra.mcs), np.asarray(rc.mcs)
                ack = rng.integers(-1, 2, act.size)  # -1: a retransmission, not counted
                sent = act.copy()
                sent[:3] = (act[:3] + 1) % 28  # the gNB overrode these: not_followed
                stub.ReportOutcome(
                    pb.OutcomeReport(
                        cell_id=12,
                        slot=req.slot,
                        ue_id=list(req.ue_id),
                        delivered_bits=[0] * act.size,
                        first_tx_ack=ack.tolist(),
                        mcs=sent.tolist(),
                    ),
                    timeout=5,
                )
                k = (ack >= 0) & (sent == act)
                y, aa, cc = ack[k], act[k], cand[k]
                alloc = tuple(
                    np.asarray(getattr(req, f))[k] for f in ("rank", "n_prb", "n_symbols")
                )
                buf = np.asarray(req.buffer_bytes)[k]
                tbs_a = _tbs(aa, *alloc, buf)
                tbs_c = _tbs(cc, *alloc, buf)
                p = model.p_ack[y, aa, cc]
                want["first_tx"] += int(k.sum())
                want["active_bits"] += float(np.dot(y, tbs_a))
                want["cand_bits"] += float(np.dot(p, tbs_c))
                want["nacks"] += float(np.sum(y == 0))
                want["cnacks"] += float(np.sum(1 - p))
            # outcomes of an unknown slot, and of a UE the slot's request did not name
            for slot, ue in ((99, 1005), (0, 5)):
                stub.ReportOutcome(
                    pb.OutcomeReport(
                        cell_id=12, slot=slot, ue_id=[ue], delivered_bits=[0], first_tx_ack=[1]
                    ),
                    timeout=5,
                )
        total = _info(a)["candidate"]["total"]
        assert total["matched_outcomes"] == want["first_tx"] > 0
        change = (want["cand_bits"] - want["active_bits"]) / want["active_bits"]
        assert total["predicted_throughput_change"] == pytest.approx(change)
        bler = (want["cnacks"] - want["nacks"]) / want["first_tx"]
        assert total["predicted_first_tx_bler_change"] == pytest.approx(bler)
        outcomes = "ran_distill_shadow_outcomes_total"
        assert _sample(a, outcomes, {"result": "matched"}) == want["first_tx"]
        assert _sample(a, outcomes, {"result": "unmatched"}) == 2
        assert _sample(a, outcomes, {"result": "not_followed"}) > 0
    finally:
        a.stop()
        c.stop()


def _tbs(mcs: np.ndarray, rank: Any, n_prb: Any, n_symbols: Any, buf: np.ndarray) -> np.ndarray:
    t = nr.mcs_table(2)[mcs]
    size = np.asarray(nr.tbs(t[:, 0], t[:, 1], n_prb, n_symbols=n_symbols, n_layers=rank), float)
    return np.where(buf >= 0, np.minimum(size, 8.0 * buf), size)


# ----------------------------------------------------------------------------- promotion
def test_promotion_under_load_and_rollback(models: dict[str, Path]) -> None:
    """A client hammers Decide while the candidate is promoted: every call succeeds, calls
    after the promotion are the candidate's decisions; rollback restores the old model."""
    a = _server(models["active"], candidate_model_dir=str(models["cand"]))
    c = _server(models["cand"])
    try:
        old, new = _info(a)["version"], _info(a)["candidate"]["version"]
        calls: list[tuple[float, float, str]] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def hammer() -> None:
            rng = np.random.default_rng(1)
            ues = np.arange(64)
            with grpc.insecure_channel(a.grpc_target) as ch:
                stub = pb_grpc.LinkAdaptationStub(ch)
                slot = 0
                while not stop.is_set():
                    req = grpc_request(21 + slot % 2, slot // 2, random_reports(rng, ues))
                    t0 = time.monotonic()
                    try:
                        resp = stub.Decide(req, timeout=10)
                    except grpc.RpcError as exc:
                        errors.append(exc)
                        continue
                    calls.append((t0, time.monotonic(), resp.model_version))
                    slot += 1

        thread = threading.Thread(target=hammer)
        thread.start()
        try:
            _wait(lambda: len(calls) >= 50, "calls before the promotion")
            t_start = time.monotonic()
            r = _post(a, "/v1/model/promote")
            t_end = time.monotonic()
            n_before = len(calls)
            _wait(lambda: len(calls) >= n_before + 50, "calls after the promotion")
        finally:
            stop.set()
            thread.join(30)
        assert not errors, errors[:3]
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["version"] == new and body["previous_version"] == old
        assert not body["candidate"]["loaded"]  # the candidate is now the active model
        assert all(v == old for t0, t1, v in calls if t1 < t_start)
        assert all(v == new for t0, t1, v in calls if t0 > t_end)
        assert {v for _, _, v in calls} == {old, new}
        assert _sample(a, "ran_distill_model_promotions_total", {"trigger": "admin"}) == 1
        # decisions are the candidate's: fresh cells answer exactly like a server serving it
        fresh = _traffic(seed=8, cell=40, slots=4)
        mine, theirs = _decide_all(a, fresh), _decide_all(c, fresh)
        assert [list(r.mcs) for r in mine] == [list(r.mcs) for r in theirs]
        # nothing left to promote
        r = _post(a, "/v1/model/promote")
        assert r.status_code == 409 and r.json()["field"] == "candidate"
        # rollback: one call back to the old model; a second undoes it
        with grpc.insecure_channel(a.grpc_target) as ch:
            stub = pb_grpc.LinkAdaptationStub(ch)
            got = stub.RollbackModel(pb.RollbackModelRequest(), metadata=GRPC_AUTH, timeout=10)
            assert got.version == old and got.previous_version == new
            assert stub.Decide(fresh[0], timeout=5).model_version == old
            with pytest.raises(grpc.RpcError) as err:
                stub.PromoteCandidate(pb.PromoteCandidateRequest(), metadata=GRPC_AUTH, timeout=5)
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert _post(a, "/v1/model/rollback").json()["version"] == new
        assert _sample(a, "ran_distill_model_rollbacks_total") == 2
    finally:
        a.stop()
        c.stop()


def test_rollback_without_previous_model(models: dict[str, Path]) -> None:
    srv = _server(models["active"])
    try:
        r = _post(srv, "/v1/model/rollback")
        assert r.status_code == 409 and r.json()["field"] == "previous"
        assert _post(srv, "/v1/model/rollback", auth=False).status_code == 401
        assert _info(srv)["version"].startswith("act+")
    finally:
        srv.stop()


def test_admin_calls_are_disabled_without_a_token(models: dict[str, Path]) -> None:
    srv = _server(models["active"], admin_token=None)
    try:
        for path, body in (
            ("/v1/model/candidate", {"model_dir": "cand"}),
            ("/v1/model/promote", None),
            ("/v1/model/rollback", None),
        ):
            r = _post(srv, path, body)
            assert r.status_code == 403 and r.json()["field"] == "authorization", path
        r = httpx.delete(f"{srv.http_base}/v1/model/candidate", headers=AUTH, timeout=10)
        assert r.status_code == 403
        with grpc.insecure_channel(srv.grpc_target) as ch:
            with pytest.raises(grpc.RpcError) as err:
                pb_grpc.LinkAdaptationStub(ch).PromoteCandidate(
                    pb.PromoteCandidateRequest(), metadata=GRPC_AUTH, timeout=5
                )
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert not _info(srv)["candidate"]["loaded"]
    finally:
        srv.stop()


def _decide_with_outcomes(srv: ServerThread, slots: int, cell: int = 50) -> None:
    """Decide 64 UEs per slot and report every decision's first transmission as ACKed."""
    rng = np.random.default_rng(2)
    ues = np.arange(64)
    with grpc.insecure_channel(srv.grpc_target) as ch:
        stub = pb_grpc.LinkAdaptationStub(ch)
        for slot in range(slots):
            resp = stub.Decide(grpc_request(cell, slot, random_reports(rng, ues)), timeout=10)
            stub.ReportOutcome(
                pb.OutcomeReport(
                    cell_id=cell,
                    slot=slot,
                    ue_id=ues.tolist(),
                    delivered_bits=[1000] * 64,
                    first_tx_ack=[1] * 64,
                    mcs=list(resp.mcs),
                ),
                timeout=5,
            )


def test_automatic_promotion_inside_bounds(models: dict[str, Path]) -> None:
    permissive = {
        "shadow_auto_promote": True,
        "shadow_window_slots": 4,
        "shadow_promote_after_slots": 8,
        "shadow_promote_min_agreement": 0.0,
        "shadow_promote_min_throughput_change": -1.0,
        "shadow_promote_max_bler_change": 1.0,
    }
    srv = _server(models["active"], candidate_model_dir=str(models["cand"]), **permissive)
    try:
        new = _info(srv)["candidate"]["version"]
        _decide_with_outcomes(srv, slots=10)
        _wait(lambda: _info(srv)["version"] == new, "automatic promotion")
        info = _info(srv)
        assert not info["candidate"]["loaded"] and info["previous_version"].startswith("act+")
        assert _sample(srv, "ran_distill_model_promotions_total", {"trigger": "auto"}) == 1
    finally:
        srv.stop()
    # bounds it cannot meet (a 10x throughput gain): windows counted, never promoted
    strict = {**permissive, "shadow_promote_min_throughput_change": 10.0}
    srv = _server(models["active"], candidate_model_dir=str(models["cand"]), **strict)
    try:
        _decide_with_outcomes(srv, slots=10)
        cand = _info(srv)["candidate"]
        assert cand["loaded"] and cand["last_window"]["cell_slots"] == 4
        assert cand["last_window"]["matched_outcomes"] >= 100
        assert cand["last_window_inside_bounds"] is False and cand["promotion_streak_slots"] == 0
        assert _info(srv)["version"].startswith("act+")
        assert _sample(srv, "ran_distill_model_promotions_total", {"trigger": "auto"}) == 0
    finally:
        srv.stop()


# ----------------------------------------------------------------------------- hot reload
def test_hot_reload_keeps_the_candidate_and_follows_a_promotion(tmp_path: Path) -> None:
    active = write_model_dir(tmp_path / "active", seed=0, version="v1")
    cand = write_model_dir(tmp_path / "cand", seed=5, version="cand")
    srv = _server(active, candidate_model_dir=str(cand), reload_poll_seconds=0.05)
    try:
        _decide_all(srv, _traffic(seed=1, cell=60, slots=3))
        assert _info(srv)["candidate"]["total"]["compared_decisions"] > 0
        # a new active model: the candidate stays, its comparison restarts
        write_model_dir(active, seed=1, version="v2")
        _wait(lambda: _info(srv)["version"].startswith("v2+"), "hot reload")
        info = _info(srv)
        assert info["candidate"]["loaded"] and info["candidate"]["total"]["compared_decisions"] == 0
        assert "restarted" in info["candidate"]["last_event"]
        _decide_all(srv, _traffic(seed=2, cell=61, slots=2))
        assert _info(srv)["candidate"]["total"]["compared_decisions"] == 2 * 48
        # the candidate's own model becomes active by reload: its shadow run ends
        write_model_dir(active, seed=5, version="cand")
        _wait(lambda: _info(srv)["version"].startswith("cand+"), "reload to the candidate")
        info = _info(srv)
        assert (
            not info["candidate"]["loaded"] and "now the active" in info["candidate"]["last_event"]
        )
        # after a promotion, hot reload watches the promoted model's directory
        other = write_model_dir(tmp_path / "other", seed=6, version="other")
        assert _post(srv, "/v1/model/candidate", {"model_dir": str(other)}).status_code == 200
        assert _post(srv, "/v1/model/promote").json()["version"].startswith("other+")
        write_model_dir(other, seed=7, version="other2")
        _wait(lambda: _info(srv)["version"].startswith("other2+"), "reload of the promoted dir")
        assert _info(srv)["path"] == str(other.resolve())
    finally:
        srv.stop()
