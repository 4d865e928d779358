"""Hostile clients, fuzzed (issue 13): hypothesis writes 1 000+ requests per protocol
(gRPC messages, REST JSON bodies) mixing valid and invalid fields — out-of-range values,
wrong lengths, duplicate or negative ids, wrong JSON types, missing columns, unknown MCS
tables — over Decide, ReportOutcome and release, against one real xApp on loopback.

The oracle knows which fields it broke: a request with no broken field must be served
(one MCS per UE, in range), one with broken fields must be refused with
INVALID_ARGUMENT / 422 naming one of them. A sentinel cell's UEs, which no fuzzed request
names, keep their state bit for bit, and the server is healthy at the end. (The
hand-written cases are in ``test_service_bad_input.py``; schemathesis' checks against the
OpenAPI description in ``test_service_openapi_fuzz.py``.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_testing import ServerThread, grpc_request, random_reports

from service.proto_gen import link_adaptation_pb2 as pb
from service.proto_gen import link_adaptation_pb2_grpc as pb_grpc

EXAMPLES = 1000  # per protocol
SENTINEL_CELL = 424_242
SENTINEL_UES = np.arange(50, 58)
# few cells, so releases find tracked UEs; each protocol its own (the oracle's model of
# what is tracked starts empty)
FUZZ_CELLS = {False: st.integers(1, 40), True: st.integers(101, 140)}
N_MCS = 28  # served table 2
# (low, high) each element must respect; conditional: checked only where another column says
RANGES = {
    "cqi": (0, 15),  # where cqi_age_slots >= 0
    "cqi_age_slots": (-1, 1_000_000),
    "harq_ack": (-1, 1),
    "harq_mcs": (0, N_MCS - 1),  # where harq_ack >= 0
    "rank": (1, 8),
    "n_prb": (1, 275),
    "n_symbols": (1, 14),
    "buffer_bytes": (-1, 10**7),
    "harq_tx_index": (-1, 7),  # where harq_ack >= 0
}
REQUIRED = ("cqi", "cqi_age_slots", "harq_ack", "harq_mcs", "rank", "n_prb", "n_symbols")
OPTIONAL = ("buffer_bytes", "harq_tx_index")
OUTCOME_RANGES = {"delivered_bits": (0, 10**9), "first_tx_ack": (-1, 1), "mcs": (0, N_MCS - 1)}
# what the server accepts, where wider than the values drawn (delivered_bits: any int64 >= 0):
# a value broken on purpose lies outside this
OUTCOME_LIMITS = {**OUTCOME_RANGES, "delivered_bits": (0, 2**63 - 1)}
# values outside each range that the column's protobuf type can still carry (int32 fields)
OUT_OF_RANGE = st.one_of(st.integers(-(2**31), -2), st.integers(1_000_001, 2**31 - 1))


@dataclass
class Case:
    """One fuzzed request: ``kind`` decide / outcome / release, the JSON body, and the
    fields it broke (empty: a valid request)."""

    kind: str
    body: dict[str, Any]
    broken: set[str] = field(default_factory=set)
    json_only: bool = False  # a JSON type error: not expressible as protobuf


def _out_of(lo: int, hi: int) -> st.SearchStrategy[int]:
    return OUT_OF_RANGE.filter(lambda v: v < lo or v > hi)


@st.composite
def decide_case(draw: st.DrawFn, json: bool) -> Case:
    n = draw(st.integers(0, 6))
    cols: dict[str, Any] = {
        "ue_id": draw(st.lists(st.integers(0, 2**40), min_size=n, max_size=n, unique=True))
    }
    for name in REQUIRED:
        lo, hi = RANGES[name]
        cols[name] = draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))
    for name in OPTIONAL:  # absent, empty (= absent) or one value per UE
        lo, hi = RANGES[name]
        choice = draw(st.sampled_from(("absent", "empty", "full")))
        if choice != "absent":
            size = n if choice == "full" else 0
            cols[name] = draw(st.lists(st.integers(lo, hi), min_size=size, max_size=size))
    body: dict[str, Any] = {
        "cell_id": draw(FUZZ_CELLS[json]),
        "slot": draw(st.integers(0, 2**40)),
        "mcs_table": draw(st.sampled_from((0, 2))),
        **cols,
    }
    case = Case("decide", body)
    mutations = ["range", "length", "dup_ue", "negative_ue", "mcs_table", "negative_id"]
    if json:
        mutations += ["json_type", "json_fraction", "json_missing", "json_id_type"]
    for _ in range(draw(st.integers(0, 2))):
        _mutate_decide(draw, case, draw(st.sampled_from(mutations)), n)
    return case


def _settable(body: dict[str, Any], name: str, n: int) -> bool:
    return isinstance(body.get(name), list) and len(body[name]) == n


def _mutate_decide(draw: st.DrawFn, case: Case, how: str, n: int) -> None:
    body = case.body
    # columns with one value per UE, still lists (not already given another length or type)
    columns = [
        c for c in (*REQUIRED, *OPTIONAL) if isinstance(body.get(c), list) and len(body[c]) == n
    ]
    if how == "range" and n and columns:
        name = draw(st.sampled_from(columns))
        i = draw(st.integers(0, n - 1))
        lo, hi = RANGES[name]
        body[name][i] = draw(_out_of(lo, hi))
        # make the conditional check apply to this UE (its age / feedback valid and >= 0)
        if name == "cqi" and _settable(body, "cqi_age_slots", n):
            body["cqi_age_slots"][i] = max(body["cqi_age_slots"][i], 0)
        if name in ("harq_mcs", "harq_tx_index") and _settable(body, "harq_ack", n):
            body["harq_ack"][i] = draw(st.integers(0, 1))
        case.broken.add(name)
    elif how == "length":
        name = draw(st.sampled_from([*REQUIRED, *OPTIONAL]))
        lengths = [k for k in range(n + 3) if k != n and not (name in OPTIONAL and k == 0)]
        size = draw(st.sampled_from(lengths))
        lo, hi = RANGES[name]
        body[name] = draw(st.lists(st.integers(lo, hi), min_size=size, max_size=size))
        case.broken.add(name)
    elif how == "dup_ue" and n >= 2:
        body["ue_id"][1] = body["ue_id"][0]
        case.broken.add("ue_id")
    elif how == "negative_ue" and n:
        body["ue_id"][draw(st.integers(0, n - 1))] = draw(st.integers(-(2**62), -1))
        case.broken.add("ue_id")
    elif how == "mcs_table":
        body["mcs_table"] = draw(st.sampled_from((1, 3, 7, 255)))  # 1: not the served table
        case.broken.add("mcs_table")
    elif how == "negative_id":
        name = draw(st.sampled_from(("cell_id", "slot")))
        body[name] = draw(st.integers(-(2**62), -1))
        case.broken.add(name)
    elif how == "json_type":
        name = draw(st.sampled_from([*REQUIRED, *OPTIONAL, "ue_id"]))
        body[name] = draw(st.sampled_from(("x", 3, True, {"a": 1}, [[1]], ["1"], [None])))
        case.broken.add(name)
        case.json_only = True
    elif how == "json_fraction" and n and columns:
        name = draw(st.sampled_from(columns))
        body[name][draw(st.integers(0, n - 1))] = 0.5
        case.broken.add(name)
        case.json_only = True
    elif how == "json_missing":
        name = draw(st.sampled_from([*REQUIRED, "ue_id"]))
        body.pop(name, None)
        case.broken.add(name)
        case.json_only = True
    elif how == "json_id_type":
        name = draw(st.sampled_from(("cell_id", "slot", "mcs_table")))
        body[name] = draw(st.sampled_from(("7", 1.5, True, [1])))
        case.broken.add(name)
        case.json_only = True


@st.composite
def outcome_case(draw: st.DrawFn, json: bool) -> Case:
    n = draw(st.integers(0, 6))
    body: dict[str, Any] = {
        "cell_id": draw(FUZZ_CELLS[json]),
        "slot": draw(st.integers(0, 2**40)),
        "ue_id": draw(st.lists(st.integers(0, 2**40), min_size=n, max_size=n)),
        "slot_duration_us": draw(st.sampled_from((0, 500, 1000))),
    }
    for name, (lo, hi) in OUTCOME_RANGES.items():
        size = draw(st.sampled_from((0, n))) if name == "mcs" else n
        body[name] = draw(st.lists(st.integers(lo, hi), min_size=size, max_size=size))
    case = Case("outcome", body)
    for _ in range(draw(st.integers(0, 2))):
        how = draw(st.sampled_from(("range", "length", "slot_duration", "json_type")))
        intact = [c for c in ("delivered_bits", "first_tx_ack") if _settable(body, c, n)]
        if how == "range" and n and intact:
            name = draw(st.sampled_from(intact))
            lo, hi = OUTCOME_LIMITS[name]
            body[name][draw(st.integers(0, n - 1))] = draw(_out_of(lo, hi))
            case.broken.add(name)
        elif how == "length":
            name = draw(st.sampled_from(("delivered_bits", "first_tx_ack")))
            size = draw(st.sampled_from([k for k in range(n + 3) if k != n]))
            body[name] = [0] * size
            case.broken.add(name)
        elif how == "slot_duration":
            body["slot_duration_us"] = draw(st.integers(1001, 2**31 - 1))
            case.broken.add("slot_duration_us")
        elif how == "json_type" and json:
            name = draw(st.sampled_from(("ue_id", "delivered_bits", "first_tx_ack", "mcs")))
            body[name] = draw(st.sampled_from(("x", 3, False, {"a": 1}, [[1]])))
            case.broken.add(name)
            case.json_only = True
    return case


@st.composite
def release_case(draw: st.DrawFn, json: bool) -> Case:
    """Validity depends on what is tracked: the oracle decides (``Model.release``)."""
    ues = draw(st.lists(st.integers(0, 2**40), max_size=3, unique=True))
    return Case("release", {"cell_id": draw(FUZZ_CELLS[json]), "ue_id": ues})


def requests(json: bool) -> st.SearchStrategy[Case]:
    return st.one_of(decide_case(json), decide_case(json), outcome_case(json), release_case(json))


class Model:
    """The UEs the server tracks per fuzzed cell (what a release may name)."""

    def __init__(self) -> None:
        self.tracked: dict[int, set[int]] = {}

    def decided(self, body: dict[str, Any]) -> None:
        if body["ue_id"]:
            self.tracked.setdefault(body["cell_id"], set()).update(body["ue_id"])

    def release_broken(self, body: dict[str, Any]) -> set[str]:
        if not body["ue_id"]:  # checked first: "no UE ids given"
            return {"ue_id"}
        ues = self.tracked.get(body["cell_id"])
        if not ues:
            return {"cell_id"}
        return set() if set(body["ue_id"]) <= ues else {"ue_id"}

    def released(self, body: dict[str, Any]) -> None:
        ues = self.tracked[body["cell_id"]]
        ues.difference_update(body["ue_id"])


def _check_served(case: Case, mcs: list[int], n: int) -> None:
    assert not case.broken, f"served a request with broken {case.broken}: {case.body}"
    if case.kind == "decide":
        assert len(mcs) == n and all(0 <= m < N_MCS for m in mcs), (mcs, case.body)


def _check_refused(case: Case, named: str) -> None:
    assert case.broken, f"refused a valid request naming {named!r}: {case.body}"
    assert named in case.broken, f"named {named!r}, broke {case.broken}: {case.body}"


@pytest.fixture(scope="module")
def fuzz_server(model_dir: Path) -> Iterator[ServerThread]:
    # no stale-slot drops (fuzzed slots jump around), no TTL expiry during the run
    srv = ServerThread(model_dir=model_dir, max_slot_lag=0, ue_ttl_seconds=3600, use_uvloop=True)
    with grpc.insecure_channel(srv.grpc_target) as ch:
        stub = pb_grpc.LinkAdaptationStub(ch)
        rng = np.random.default_rng(9)
        for slot in range(4):
            cols = random_reports(rng, SENTINEL_UES)
            stub.Decide(grpc_request(SENTINEL_CELL, slot, cols), timeout=10)
    yield srv
    srv.stop()


def _sentinel(srv: ServerThread) -> np.ndarray:
    dp = srv.app.dataplane

    def snap() -> np.ndarray:
        rows, known = dp.state.lookup(SENTINEL_CELL, SENTINEL_UES)
        assert known.all()
        return dp.state.history.encode(rows).copy()

    return srv.call(snap)


def _run(srv: ServerThread, send: Callable[[Case, Model], None], json: bool) -> int:
    model = Model()
    count = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same requests on every run: no flaky CI
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=requests(json))
    def fuzz(case: Case) -> None:
        nonlocal count
        count += 1
        send(case, model)

    before = _sentinel(srv)
    fuzz()
    np.testing.assert_array_equal(_sentinel(srv), before)  # never named: untouched
    return count


def _assert_healthy(srv: ServerThread) -> None:
    with grpc.insecure_channel(srv.grpc_target) as ch:
        reply = pb_grpc.LinkAdaptationStub(ch).Decide(
            grpc_request(77, 0, random_reports(np.random.default_rng(1), np.arange(3))),
            timeout=10,
        )
    assert len(reply.mcs) == 3
    r = httpx.get(f"{srv.http_base}/ric/v1/health/ready")
    assert r.status_code == 200
    reg = srv.app.dataplane.metrics.registry
    assert reg.get_sample_value("ran_distill_inference_errors_total") == 0


def _grpc_message(case: Case) -> Any:
    body = {k: v for k, v in case.body.items() if v is not None}
    if case.kind == "decide":
        return pb.DecideRequest(**body)
    if case.kind == "outcome":
        return pb.OutcomeReport(**body)
    return pb.ReleaseUeRequest(**body)


def test_fuzz_grpc(fuzz_server: ServerThread) -> None:
    srv = fuzz_server
    with grpc.insecure_channel(srv.grpc_target) as ch:
        stub = pb_grpc.LinkAdaptationStub(ch)
        calls = {"decide": stub.Decide, "outcome": stub.ReportOutcome, "release": stub.ReleaseUe}

        def send(case: Case, model: Model) -> None:
            assert not case.json_only  # json=False: no JSON-only mutation drawn
            if case.kind == "release":
                case.broken = model.release_broken(case.body)
            try:
                reply = calls[case.kind](_grpc_message(case), timeout=10)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, (exc, case.body)
                named = dict(exc.trailing_metadata() or ())["invalid-field"]
                assert exc.details().startswith(f"{named}:")
                _check_refused(case, named)
                return
            n = len(case.body.get("ue_id", ()))
            _check_served(case, list(getattr(reply, "mcs", ())), n)
            if case.kind == "decide":
                model.decided(case.body)
            elif case.kind == "release":
                assert reply.released == len(case.body["ue_id"])
                model.released(case.body)

        count = _run(srv, send, json=False)
    assert count >= EXAMPLES
    _assert_healthy(srv)


def test_fuzz_rest(fuzz_server: ServerThread) -> None:
    srv = fuzz_server
    paths = {"decide": "/v1/decisions", "outcome": "/v1/outcomes", "release": "/v1/ues/release"}
    with httpx.Client(base_url=srv.http_base, timeout=10) as http:

        def send(case: Case, model: Model) -> None:
            if case.kind == "release":
                case.broken = model.release_broken(case.body)
            r = http.post(paths[case.kind], json=case.body)
            if r.status_code != 200:
                assert r.status_code == 422, (r.status_code, r.text, case.body)
                doc = r.json()
                assert doc["detail"][0]["loc"] == ["body", doc["field"]]
                _check_refused(case, doc["field"])
                return
            doc = r.json()
            _check_served(case, doc.get("mcs", []), len(case.body.get("ue_id", ())))
            if case.kind == "decide":
                assert doc["cell_id"] == case.body["cell_id"]
                assert set(doc["source"]) <= {"DECISION_SOURCE_MODEL", "DECISION_SOURCE_FALLBACK"}
                model.decided(case.body)
            elif case.kind == "release":
                assert doc["released"] == len(case.body["ue_id"])
                model.released(case.body)

        count = _run(srv, send, json=True)
    assert count >= EXAMPLES
    _assert_healthy(srv)


def test_outcome_columns_of_the_wrong_json_type_are_refused_not_500(
    fuzz_server: ServerThread,
) -> None:
    """Found by schemathesis: ``"mcs": false`` answered 500 and ``"mcs": {}`` was taken
    for an absent column."""
    base = {"cell_id": 1, "ue_id": [1], "delivered_bits": [8], "first_tx_ack": [1]}
    for value in (False, {}, 3, "x"):
        r = httpx.post(f"{fuzz_server.http_base}/v1/outcomes", json=base | {"mcs": value})
        assert r.status_code == 422 and r.json()["field"] == "mcs", (value, r.text)
