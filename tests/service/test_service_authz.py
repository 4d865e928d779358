"""The per-cell authorization mapping (``service.authz``) and the cell-id scanner it
authorizes serialized DecideRequests with, checked against the protobuf parser; the
``serve`` command's exit on insecure or broken security settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from service.authz import (
    AuthzConfigError,
    CellGuard,
    CellPolicy,
    CellSet,
    decide_cell_id,
    denied_counter,
)
from service.errors import InvalidArgument, PermissionDenied, RequestError
from service.proto_gen import link_adaptation_pb2 as pb

INVALID_ARGUMENT, PERMISSION_DENIED = InvalidArgument.code, PermissionDenied.code

REPO = Path(__file__).resolve().parents[2]


def test_cell_sets_merge_ranges_and_answer_membership() -> None:
    cells = CellSet.from_ranges([(10, 19), (1, 1), (2, 2), (15, 30), (40, 40)])
    assert (cells.lo, cells.hi) == ((1, 10, 40), (2, 30, 40))
    assert [c for c in range(45) if c in cells] == [1, 2, *range(10, 31), 40]
    assert len(cells) == 2 + 21 + 1
    assert True not in cells and "1" not in cells  # only real ints


def test_mapping_file_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "cells.yaml"
    yaml_file.write_text(
        "identities:\n  gnb-a: [1, '5-7', ' 9 ']\n  'spiffe://x/gnb-b': ['100-199']\n"
    )
    json_file = tmp_path / "cells.json"
    json_file.write_text(json.dumps({"identities": {"gnb-a": [1, "5-7", 9]}}))
    for path in (yaml_file, json_file):
        policy = CellPolicy.load(path)
        assert policy.allows(("gnb-a",), 6) is True
        assert policy.allows(("gnb-a",), 8) is False
        assert policy.allows(("gnb-a",), 9) is True
        assert policy.allows(("nobody",), 1) is None  # not listed at all
    policy = CellPolicy.load(yaml_file)
    # every name of the certificate counts: the union of their cells
    assert policy.allows(("gnb-a", "spiffe://x/gnb-b"), 150) is True
    assert policy.allows(("other-name", "gnb-a"), 1) is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "exactly one key, 'identities'"),
        ("identities: {a: [1]}\nextra: 1", "exactly one key"),
        ("identities: [a]", "must map identities"),
        ("identities: {a: 5}", "must be a list"),
        ("identities: {a: ['7-3']}", "'7-3'"),
        ("identities: {a: [-1]}", "-1"),
        ("identities: {a: ['x']}", "'x'"),
        ("identities: {a: [1.5]}", "1.5"),
        ("identities: {a: [true]}", "True"),
        ("identities: {a: ['1-']}", "'1-'"),
        ("identities: {'': [1]}", "non-empty string"),
        ("identities: {a: [99999999999999999999]}", "2^63"),
        ("identities: {a: [1]", "not valid YAML/JSON"),
    ],
)
def test_bad_mapping_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "cells.yaml"
    path.write_text(text)
    with pytest.raises(AuthzConfigError, match="authz_cells_file=") as err:
        CellPolicy.load(path)
    assert message in str(err.value)


def test_missing_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(AuthzConfigError, match="file not found"):
        CellPolicy.load(tmp_path / "absent.yaml")


def test_guard_refuses_and_counts_by_reason() -> None:
    registry = CollectorRegistry()
    guard = CellGuard(CellPolicy.from_mapping({"identities": {"a": [1]}}), denied_counter(registry))

    def count(reason: str) -> float:
        value = registry.get_sample_value(
            "ran_distill_denied_requests_total", {"protocol": "grpc", "reason": reason}
        )
        assert value is not None  # every series exists from the start
        return value

    assert count("cell_not_allowed") == 0
    guard.check("grpc", ("a",), 1)
    for ids, cell, reason in [
        (("a",), 2, "cell_not_allowed"),
        (("b",), 1, "unknown_identity"),
        ((), 1, "no_client_certificate"),
    ]:
        with pytest.raises(RequestError) as err:
            guard.check("grpc", ids, cell)
        assert (err.value.code, err.value.field, err.value.reason) == (
            PERMISSION_DENIED,
            "cell_id",
            reason,
        )
        assert f"cell {cell}" in err.value.message
        assert count(reason) == 1
    for bad in (-1, "1", True, 2**63):
        with pytest.raises(RequestError) as err:
            guard.check("grpc", ("a",), bad)
        assert err.value.code == INVALID_ARGUMENT and err.value.field == "cell_id"
    with pytest.raises(RequestError) as err:
        guard.check_decide_pb(("a",), b"\x0a\xff\xff")  # truncated
    assert err.value.code == INVALID_ARGUMENT and err.value.field == "request"
    with pytest.raises(RequestError) as err:
        guard.check_decide_json(("a",), b'{"cell_id": 2, "ue_id": []}')
    assert err.value.code == PERMISSION_DENIED


# --------------------------------------------------------------------- the cell-id scanner

_I64 = st.integers(-(2**63), 2**63 - 1)


@st.composite
def decide_requests(draw: st.DrawFn) -> bytes:
    """Serialized DecideRequests, plus the wire's corners: fields out of order, field 1
    repeated (the last one wins) or sent with another wire type (an unknown field)."""
    msg = pb.DecideRequest(
        cell_id=draw(_I64),
        slot=draw(_I64),
        mcs_table=draw(st.integers(0, 2**32 - 1)),
        ue_id=draw(st.lists(_I64, max_size=3)),
        cqi=draw(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=3)),
        buffer_bytes=draw(st.lists(_I64, max_size=3)),
    )
    raw = msg.SerializeToString()
    extra = draw(
        st.lists(
            st.sampled_from(("cell_varint", "cell_bytes", "cell_fixed64", "unknown_field")),
            max_size=2,
        )
    )
    for kind in extra:
        if kind == "cell_varint":
            raw += pb.DecideRequest(cell_id=draw(_I64)).SerializeToString() or b"\x08\x00"
        elif kind == "cell_bytes":  # field 1, wire type 2: not cell_id for the parser
            raw += b"\x0a\x03abc"
        elif kind == "cell_fixed64":  # field 1, wire type 1
            raw += b"\x09" + draw(st.binary(min_size=8, max_size=8))
        else:  # field 1000, wire type 5
            raw += b"\xc5\x3e" + draw(st.binary(min_size=4, max_size=4))
    return raw


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(raw=decide_requests())
def test_cell_id_scanner_agrees_with_the_protobuf_parser(raw: bytes) -> None:
    assert decide_cell_id(raw) == pb.DecideRequest.FromString(raw).cell_id


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(raw=st.binary(max_size=40))
def test_cell_id_scanner_never_authorizes_what_the_parser_reads_otherwise(raw: bytes) -> None:
    """On arbitrary bytes the scanner either refuses (ValueError) or agrees with the
    parser whenever the parser accepts the message."""
    try:
        cell = decide_cell_id(raw)
    except ValueError:
        return
    try:
        parsed = pb.DecideRequest.FromString(raw)
    except Exception:  # the data plane refuses it as malformed: nothing to authorize
        return
    assert cell == parsed.cell_id


# --------------------------------------------------------------------- `serve` refuses


def _serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAN_DISTILL_")}
    clean.pop("CONFIG_FILE", None)
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), clean.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "service", "serve", "--grpc-port", "0", "--http-port", "0"],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_serve_exits_2_on_insecure_or_broken_security_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from service.__main__ import app

    # a combination refused with the settings (before anything starts): in-process
    monkeypatch.setenv("RAN_DISTILL_AUTHZ_CELLS_FILE", "cells.yaml")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2, result.output
    assert "authz_cells_file needs client-certificate TLS" in result.output
    monkeypatch.delenv("RAN_DISTILL_AUTHZ_CELLS_FILE")
    # a file refused at start: a real process (the start runs the event loop)
    (tmp_path / "server.crt").write_text("not a certificate")
    proc = _serve(
        tmp_path,
        RAN_DISTILL_TLS_CERT_FILE=str(tmp_path / "server.crt"),
        RAN_DISTILL_TLS_KEY_FILE=str(tmp_path / "server.key"),
    )
    assert proc.returncode == 2, proc.stderr
    assert "tls_cert_file=" in proc.stderr and "not a PEM file" in proc.stderr
    assert "Traceback" not in proc.stderr
