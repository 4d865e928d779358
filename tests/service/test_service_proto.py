"""The committed stubs match the .proto, and the hot-path wire encoder matches protobuf."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from service.proto_gen import build
from service.proto_gen import link_adaptation_pb2 as pb
from service.wire import encode_decide_response, request_columns


def test_committed_stubs_match_proto(tmp_path: Path) -> None:
    written = build.build(tmp_path)
    assert sorted(p.name for p in written) == sorted(build.GENERATED)
    for name in build.GENERATED:
        committed = (build.OUT_DEFAULT / name).read_text()
        fresh = (tmp_path / name).read_text()
        assert committed == fresh, (
            f"service/proto_gen/{name} is stale: run `python -m service.proto_gen.build`"
        )


def test_proto_mirrors_report_batch() -> None:
    from linkadapt.reports import REPORT_DTYPES

    fields = set(pb.DecideRequest.DESCRIPTOR.fields_by_name)
    assert set(REPORT_DTYPES) <= fields | {"cell_id"}
    assert {"mcs_table", "slot", "cell_id"} <= fields
    methods = {m.name for m in pb.DESCRIPTOR.services_by_name["LinkAdaptation"].methods}
    assert methods == {
        "Decide",
        "DecideStream",
        "ReportOutcome",
        "ReleaseUe",
        "GetModel",
        "ReloadModel",
        "LoadCandidate",
        "UnloadCandidate",
        "PromoteCandidate",
        "RollbackModel",
    }


@settings(max_examples=200, deadline=None)
@given(
    cell=st.integers(0, 2**62),
    slot=st.integers(0, 2**62),
    mcs=st.lists(st.integers(0, 28), max_size=300),
    version=st.text(max_size=40),
)
def test_response_encoder_is_byte_identical(cell: int, slot: int, mcs: list[int], version: str):
    arr = np.asarray(mcs, dtype=np.int32)
    source = np.where(arr % 3 == 0, 2, 1).astype(np.uint8)
    ours = encode_decide_response(cell, slot, arr, source, version)
    ref = pb.DecideResponse(
        cell_id=cell, slot=slot, mcs=mcs, source=source.tolist(), model_version=version
    ).SerializeToString()
    assert ours == ref
    back = pb.DecideResponse.FromString(ours)
    assert list(back.mcs) == mcs


def test_request_columns_roundtrip() -> None:
    msg = pb.DecideRequest(
        cell_id=3,
        ue_id=[1, 2**40],
        cqi=[0, 15],
        cqi_age_slots=[-1, 5],
        harq_ack=[-1, 1],
        harq_mcs=[0, 27],
        rank=[1, 8],
        n_prb=[1, 275],
        n_symbols=[1, 14],
        buffer_bytes=[-1, 2**40],
        harq_tx_index=[-1, 3],
    )
    cols = request_columns(pb.DecideRequest.FromString(msg.SerializeToString()))
    assert cols["ue_id"].tolist() == [1, 2**40]
    assert cols["cqi_age_slots"].tolist() == [-1, 5]
    assert cols["buffer_bytes"].tolist() == [-1, 2**40]
    assert cols["harq_tx_index"].tolist() == [-1, 3]
    absent = request_columns(pb.DecideRequest(ue_id=[1, 2]))
    assert absent["harq_tx_index"].shape == (0,)  # empty: unknown for every UE


def test_decide_request_field_numbers() -> None:
    """Wire compatibility: field numbers of the decide request never change."""
    nums = {f.name: f.number for f in pb.DecideRequest.DESCRIPTOR.fields}
    assert nums["buffer_bytes"] == 12 and nums["harq_tx_index"] == 13


def test_client_request_carries_harq_tx_index_when_known() -> None:
    from linkadapt.reports import ReportBatch
    from service.client import decide_request

    cols = dict(
        ue_id=[1, 2],
        cqi=[3, 4],
        cqi_age_slots=[0, 0],
        harq_ack=[1, 0],
        harq_mcs=[5, 6],
        rank=[1, 1],
        n_prb=[10, 10],
        n_symbols=[12, 12],
    )
    assert (
        len(decide_request(ReportBatch.from_arrays(**cols), cell_id=1, slot=0).harq_tx_index) == 0
    )  # all unknown: left out (same meaning)
    msg = decide_request(ReportBatch.from_arrays(**cols, harq_tx_index=[0, 2]), cell_id=1, slot=0)
    assert list(msg.harq_tx_index) == [0, 2]
