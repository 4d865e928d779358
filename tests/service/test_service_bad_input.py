"""Every kind of bad input, on a real server on loopback, over both protocols: refused with
INVALID_ARGUMENT / HTTP 422 naming the field, counted, server keeps serving, and no other
UE's state (not even other UEs of the same request) is touched."""

from __future__ import annotations

import json
from typing import Any

import grpc
import httpx
import numpy as np
import orjson
import pytest
from service_testing import ServerThread, grpc_request, json_request, random_reports

from service.errors import RequestError
from service.proto_gen import link_adaptation_pb2 as pb
from service.proto_gen import link_adaptation_pb2_grpc as pb_grpc

CELL = 100
UES = np.arange(1000, 1016)


def _valid(n: int = 16) -> dict[str, np.ndarray]:
    return random_reports(np.random.default_rng(5), UES[:n])


def _with(**changes: Any) -> dict[str, Any]:
    cols: dict[str, Any] = {k: v.tolist() for k, v in _valid().items()}
    for k, v in changes.items():
        if v is _DROP:
            cols.pop(k)
        else:
            cols[k] = v
    return cols


_DROP = object()
_cqi_bad = _valid()["cqi"].tolist()
_cqi_bad[7] = 16
_cqi_neg = _valid()["cqi"].tolist()
_cqi_neg[3] = -2
_age = [5] * 16  # make every CQI count
_prb_neg = [50] * 15 + [-5]
_buf_neg = [-1] * 15 + [-7]
_fb = [1] * 8 + [0] * 8  # feedback on every UE: harq_tx_index is range-checked
_dup = UES.tolist()
_dup[4] = _dup[5]

# (case id, request columns, request-level overrides, field the error must name)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("cqi_above_15", _with(cqi=_cqi_bad, cqi_age_slots=_age), {}, "cqi"),
    ("cqi_negative", _with(cqi=_cqi_neg, cqi_age_slots=_age), {}, "cqi"),
    ("negative_prb", _with(n_prb=_prb_neg), {}, "n_prb"),
    ("negative_buffer", _with(buffer_bytes=_buf_neg), {}, "buffer_bytes"),
    ("negative_ue_id", _with(ue_id=[-1, *UES[1:].tolist()]), {}, "ue_id"),
    ("harq_ack_2", _with(harq_ack=[2] * 16), {}, "harq_ack"),
    ("rank_9", _with(rank=[9] * 16), {}, "rank"),
    ("harq_tx_index_8", _with(harq_ack=_fb, harq_tx_index=[0] * 15 + [8]), {}, "harq_tx_index"),
    ("harq_tx_index_neg", _with(harq_ack=_fb, harq_tx_index=[-2] + [0] * 15), {}, "harq_tx_index"),
    ("harq_tx_index_length", _with(harq_tx_index=[0] * 15), {}, "harq_tx_index"),
    ("mismatched_lengths", _with(cqi=_valid()["cqi"][:15].tolist()), {}, "cqi"),
    ("missing_column", _with(n_symbols=[]), {}, "n_symbols"),
    ("duplicate_ue", _with(ue_id=_dup), {}, "ue_id"),
    ("unknown_mcs_table", _with(), {"mcs_table": 7}, "mcs_table"),
    ("unserved_mcs_table", _with(), {"mcs_table": 1}, "mcs_table"),
]
JSON_ONLY: list[tuple[str, bytes, str]] = [
    (
        "nan_cqi",
        b'{"cell_id": 100, "ue_id": [1000], "cqi": [NaN], "cqi_age_slots": [1],'
        b' "harq_ack": [1], "harq_mcs": [3], "rank": [1], "n_prb": [5], "n_symbols": [12]}',
        "cqi",
    ),
    ("float_prb", orjson.dumps(json_request(CELL, 1, _valid()) | {"n_prb": [1.5] * 16}), "n_prb"),
    ("string_cqi", orjson.dumps(json_request(CELL, 1, _valid()) | {"cqi": ["x"] * 16}), "cqi"),
    ("nested_rank", orjson.dumps(json_request(CELL, 1, _valid()) | {"rank": [[1]] * 16}), "rank"),
    ("malformed_json", b'{"cell_id": 100, "ue_id": [1,', "body"),
    ("not_an_object", b"[1, 2, 3]", "body"),
    ("cell_id_string", orjson.dumps(json_request(CELL, 1, _valid()) | {"cell_id": "a"}), "cell_id"),
    (
        "cell_id_above_int64",
        json.dumps(json_request(CELL, 1, _valid()) | {"cell_id": 2**70}).encode(),
        "cell_id",
    ),
    (
        "ue_id_above_int64",
        json.dumps(
            json_request(CELL, 1, _valid()) | {"ue_id": [2**70] + UES[1:].tolist()}
        ).encode(),
        "ue_id",
    ),
]


@pytest.fixture(scope="module")
def seeded(server: ServerThread) -> dict[str, Any]:
    """Track CELL's UEs with a few slots of valid history; return a snapshot function."""
    with grpc.insecure_channel(server.grpc_target) as ch:
        stub = pb_grpc.LinkAdaptationStub(ch)
        rng = np.random.default_rng(1)
        for slot in range(5):
            stub.Decide(grpc_request(CELL, slot, random_reports(rng, UES)), timeout=10)
    dp = server.app.dataplane

    def snapshot() -> tuple[np.ndarray, int]:
        def _snap() -> tuple[np.ndarray, int]:
            rows, known = dp.state.lookup(CELL, UES)
            assert known.all()
            return dp.state.history.encode(rows).copy(), dp.state.n_tracked

        return server.call(_snap)

    return {"snapshot": snapshot}


def _invalid_count(server: ServerThread, protocol: str, field: str) -> float:
    reg = server.app.dataplane.metrics.registry
    total = 0.0
    for metric in reg.collect():
        if metric.name == "ran_distill_invalid_requests":
            for s in metric.samples:
                if (
                    s.name.endswith("_total")
                    and s.labels["protocol"] == protocol
                    and (s.labels["field"] == field)
                ):
                    total += s.value
    return total


def _assert_serving(server: ServerThread) -> None:
    with grpc.insecure_channel(server.grpc_target) as ch:
        resp = pb_grpc.LinkAdaptationStub(ch).Decide(
            grpc_request(7, 0, random_reports(np.random.default_rng(2), np.arange(4))), timeout=10
        )
    assert len(resp.mcs) == 4
    assert httpx.get(f"{server.http_base}/ric/v1/health/ready").status_code == 200


@pytest.mark.parametrize(("case", "cols", "extra", "field"), CASES, ids=[c[0] for c in CASES])
def test_grpc_bad_input(
    server: ServerThread, seeded: dict, case: str, cols: dict, extra: dict, field: str
) -> None:
    before = seeded["snapshot"]()
    count = _invalid_count(server, "grpc", field)
    msg = pb.DecideRequest(cell_id=CELL, slot=9, **cols, **extra)
    with grpc.insecure_channel(server.grpc_target) as ch, pytest.raises(grpc.RpcError) as err:
        pb_grpc.LinkAdaptationStub(ch).Decide(msg, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(f"{field}:")
    assert ("invalid-field", field) in tuple(err.value.trailing_metadata())
    assert _invalid_count(server, "grpc", field) == count + 1
    after = seeded["snapshot"]()
    np.testing.assert_array_equal(after[0], before[0])
    assert after[1] == before[1]
    _assert_serving(server)


@pytest.mark.parametrize(("case", "cols", "extra", "field"), CASES, ids=[c[0] for c in CASES])
def test_rest_bad_input(
    server: ServerThread, seeded: dict, case: str, cols: dict, extra: dict, field: str
) -> None:
    before = seeded["snapshot"]()
    count = _invalid_count(server, "rest", field)
    body = {"cell_id": CELL, "slot": 9, **cols, **extra}
    if case == "missing_column":
        body.pop("n_symbols")
    r = httpx.post(f"{server.http_base}/v1/decisions", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert r.json()["detail"][0]["loc"] == ["body", field]
    assert _invalid_count(server, "rest", field) == count + 1
    after = seeded["snapshot"]()
    np.testing.assert_array_equal(after[0], before[0])
    assert after[1] == before[1]
    _assert_serving(server)


@pytest.mark.parametrize(("case", "raw", "field"), JSON_ONLY, ids=[c[0] for c in JSON_ONLY])
def test_rest_bad_json(
    server: ServerThread, seeded: dict, case: str, raw: bytes, field: str
) -> None:
    before = seeded["snapshot"]()
    r = httpx.post(
        f"{server.http_base}/v1/decisions",
        content=raw,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    np.testing.assert_array_equal(seeded["snapshot"]()[0], before[0])
    _assert_serving(server)


def test_grpc_malformed_protobuf(server: ServerThread, seeded: dict) -> None:
    before = seeded["snapshot"]()
    with grpc.insecure_channel(server.grpc_target) as ch:
        for method in ("Decide", "ReportOutcome", "ReleaseUe"):
            call = ch.unary_unary(f"/linkadapt.v1.LinkAdaptation/{method}")
            with pytest.raises(grpc.RpcError) as err:
                call(b"\x0a\xff\xff\xff\x0f", timeout=10)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details().startswith("request:")
    np.testing.assert_array_equal(seeded["snapshot"]()[0], before[0])
    _assert_serving(server)


def test_oversized_batches(server: ServerThread, seeded: dict) -> None:
    before = seeded["snapshot"]()
    n = server.settings.max_batch_ues + 1
    cols = random_reports(np.random.default_rng(3), np.arange(n))
    with grpc.insecure_channel(server.grpc_target) as ch:
        stub = pb_grpc.LinkAdaptationStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            stub.Decide(grpc_request(5, 0, cols), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith("ue_id:")
        # above grpc_max_message_bytes: grpc itself refuses with RESOURCE_EXHAUSTED
        k = server.settings.grpc_max_message_bytes // 4  # 6-byte varints: > 1.5x the limit
        huge = pb.DecideRequest(cell_id=5, ue_id=range(2**40, 2**40 + k))
        with pytest.raises(grpc.RpcError) as err:
            stub.Decide(huge, timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    r = httpx.post(f"{server.http_base}/v1/decisions", json=json_request(5, 0, cols))
    assert r.status_code == 422 and r.json()["field"] == "ue_id"
    assert "max_batch_ues" in r.json()["detail"][0]["msg"]
    reg = server.app.dataplane.metrics.registry
    assert (
        reg.get_sample_value(
            "ran_distill_invalid_requests_total",
            {"protocol": "rest", "reason": "batch_too_large", "field": "ue_id"},
        )
        >= 1
    )
    np.testing.assert_array_equal(seeded["snapshot"]()[0], before[0])
    _assert_serving(server)


def test_release_unknown_cell_or_ue(server: ServerThread, seeded: dict) -> None:
    before = seeded["snapshot"]()
    with grpc.insecure_channel(server.grpc_target) as ch:
        stub = pb_grpc.LinkAdaptationStub(ch)
        for req, field in [
            (pb.ReleaseUeRequest(cell_id=999_999, ue_id=[1]), "cell_id"),
            (pb.ReleaseUeRequest(cell_id=CELL, ue_id=[int(UES[0]), 5]), "ue_id"),
            (pb.ReleaseUeRequest(cell_id=CELL), "ue_id"),
        ]:
            with pytest.raises(grpc.RpcError) as err:
                stub.ReleaseUe(req, timeout=10)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details().startswith(f"{field}:")
    for body, field in [
        ({"cell_id": 999_999, "ue_id": [1]}, "cell_id"),
        ({"cell_id": CELL, "ue_id": [int(UES[0]), 5]}, "ue_id"),
        ({"cell_id": CELL, "ue_id": "x"}, "ue_id"),
        ({"cell_id": CELL}, "ue_id"),
    ]:
        r = httpx.post(f"{server.http_base}/v1/ues/release", json=body)
        assert r.status_code == 422 and r.json()["field"] == field, r.text
    # a float id beyond int64 is refused as such, not cast (it wrapped to INT64_MIN)
    r = httpx.post(f"{server.http_base}/v1/ues/release", json={"cell_id": CELL, "ue_id": [1e30]})
    assert r.status_code == 422 and r.json()["field"] == "ue_id"
    assert "out of range" in r.json()["detail"][0]["msg"]
    after = seeded["snapshot"]()  # UES[0] was named in a failed release: still tracked
    np.testing.assert_array_equal(after[0], before[0])
    assert after[1] == before[1]
    _assert_serving(server)


def test_bad_outcome_reports(server: ServerThread) -> None:
    with grpc.insecure_channel(server.grpc_target) as ch:
        stub = pb_grpc.LinkAdaptationStub(ch)
        for req, field in [
            (
                pb.OutcomeReport(cell_id=1, ue_id=[1, 2], delivered_bits=[5], first_tx_ack=[1, 0]),
                "delivered_bits",
            ),
            (
                pb.OutcomeReport(cell_id=1, ue_id=[1], delivered_bits=[-5], first_tx_ack=[1]),
                "delivered_bits",
            ),
            (
                pb.OutcomeReport(cell_id=1, ue_id=[1], delivered_bits=[5], first_tx_ack=[3]),
                "first_tx_ack",
            ),
            (
                pb.OutcomeReport(
                    cell_id=1, ue_id=[1], delivered_bits=[5], first_tx_ack=[1], mcs=[40]
                ),
                "mcs",
            ),
            (
                pb.OutcomeReport(
                    cell_id=1,
                    ue_id=[1],
                    delivered_bits=[5],
                    first_tx_ack=[1],
                    slot_duration_us=5000,
                ),
                "slot_duration_us",
            ),
        ]:
            with pytest.raises(grpc.RpcError) as err:
                stub.ReportOutcome(req, timeout=10)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details().startswith(f"{field}:")
    r = httpx.post(
        f"{server.http_base}/v1/outcomes",
        json={"cell_id": 1, "ue_id": [1], "delivered_bits": [1.5], "first_tx_ack": [1]},
    )
    assert r.status_code == 422 and r.json()["field"] == "delivered_bits"
    _assert_serving(server)


def _micro_batch(server: ServerThread, raws: list[bytes]) -> tuple[list, int]:
    """Queue all ``raws`` before any is processed; return results and how many requests
    took the merged (one-pass) path."""
    dp = server.app.dataplane
    merged_counts: list[int] = []
    original = dp.validator.premerge

    def spy(raws):  # noqa: ANN001, ANN202
        batch, spans = original(raws)
        merged_counts.append(len(spans))
        return batch, spans

    async def together() -> list:
        futs = [dp.submit_raw("pb", raw) for raw in raws]
        out = []
        for f in futs:
            try:
                out.append((await f).wire)
            except RequestError as exc:
                out.append(exc)
        return out

    server.call(setattr, dp.validator, "premerge", spy)
    try:
        return server.run(together()), sum(merged_counts)
    finally:
        server.call(delattr, dp.validator, "premerge")


def test_one_micro_batch_mixing_good_and_bad_requests(server: ServerThread, model_dir) -> None:  # noqa: ANN001
    """Requests decided in the same micro-batch (merged parsing and validation) get the
    same answers as one at a time, and a bad one among them is refused alone."""
    rng = np.random.default_rng(11)
    good = []
    for k in range(6):
        cols = random_reports(rng, np.arange(20) + 100 * k)
        if k == 4:
            cols.pop("buffer_bytes")  # mixed presence of the optional columns
        if k == 5:  # and of harq_tx_index (both take the per-request path)
            cols["harq_tx_index"] = rng.integers(-1, 4, 20)
        good.append(grpc_request(7000 + k, 1, cols).SerializeToString())
    bad_cqi = grpc_request(7100, 1, random_reports(rng, np.arange(5)))
    bad_cqi.cqi[2], bad_cqi.cqi_age_slots[2] = 99, 0
    dup = grpc_request(7101, 1, random_reports(rng, np.array([1, 2, 2]))).SerializeToString()
    # phase 1: good + duplicate-UE request: the merged path serves the good ones
    raws1 = good[:3] + [dup] + good[3:]
    got1, merged1 = _micro_batch(server, raws1)
    assert merged1 >= 5, merged1
    assert isinstance(got1[3], RequestError) and got1[3].field == "ue_id"
    # phase 2 (next slot): a bad value anywhere sends the batch down the per-request path
    good2 = [
        grpc_request(7000 + k, 2, random_reports(rng, np.arange(20) + 100 * k)).SerializeToString()
        for k in range(6)
    ]
    raws2 = good2[:2] + [bad_cqi.SerializeToString()] + good2[2:]
    got2, _ = _micro_batch(server, raws2)
    assert isinstance(got2[2], RequestError) and got2[2].field == "cqi"
    # phase 3: every request carries harq_tx_index: merged as well
    raws3 = [
        grpc_request(
            7000 + k, 3, random_reports(rng, np.arange(20) + 100 * k, harq_tx_index=True)
        ).SerializeToString()
        for k in range(6)
    ]
    got3, merged3 = _micro_batch(server, raws3)
    assert merged3 >= 6, merged3
    ref = ServerThread(model_dir=model_dir, inference_thread=False)  # one at a time
    try:
        with grpc.insecure_channel(ref.grpc_target) as ch:
            stub = pb_grpc.LinkAdaptationStub(ch)
            for raw, res in zip(raws1 + raws2 + raws3, got1 + got2 + got3, strict=True):
                if isinstance(res, RequestError):
                    continue
                want = stub.Decide(pb.DecideRequest.FromString(raw), timeout=10)
                assert list(pb.DecideResponse.FromString(res).mcs) == list(want.mcs)
    finally:
        ref.stop()
