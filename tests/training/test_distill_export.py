"""A student's ONNX: parity on held-out rows (and its failure), the stateful GRU export the
xApp refuses, int8, and exports that cannot carry a GRU refusing it before any work."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from linkadapt.features import OBS_DIM
from service.registry import ModelError, load_model
from training.distill.export import export_student, onnx_q_values, parity_check, quantize_int8
from training.networks import build_qnet


def _held(t: int, n: int = 300) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (n, t, OBS_DIM)).astype(np.float32)


def _extra() -> dict:
    return {"source": {"kind": "test"}}


def test_a_feed_forward_student_passes_parity_and_the_xapp_serves_it(tmp_path) -> None:
    torch.manual_seed(0)
    student = build_qnet("mlp-3x32", OBS_DIM, 28).eval()
    parity = export_student(
        student, tmp_path, _held(1), arch="mlp-3x32", feature_names=None, extra=_extra()
    )
    assert parity["argmax_agreement"] == 1.0 and parity["max_rel_dq"] <= 1e-5
    assert parity["rows"] == 300
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["parity"] == parity and manifest["onnx_opset"] >= 17
    model = load_model(tmp_path)  # the xApp's own validation
    assert model.obs_dim == OBS_DIM


def test_parity_fails_when_the_onnx_is_not_the_student(tmp_path) -> None:
    torch.manual_seed(0)
    student = build_qnet("mlp-3x32", OBS_DIM, 28).eval()
    export_student(student, tmp_path, _held(1), arch="mlp-3x32", feature_names=None, extra=_extra())
    with torch.no_grad():
        student.head.bias += torch.linspace(0, 1, 28)  # the torch model moves on
    with pytest.raises(RuntimeError, match="parity failed"):
        parity_check(student, tmp_path / "model.onnx", _held(1))


def test_a_gru_student_exports_its_state_and_the_xapp_refuses_it(tmp_path) -> None:
    torch.manual_seed(0)
    student = build_qnet("gru-16", OBS_DIM, 28).eval()
    held = _held(6, 50)
    parity = export_student(
        student, tmp_path, held, arch="gru-16", feature_names=None, extra=_extra()
    )
    assert parity["rows"] == 300 and parity["argmax_agreement"] == 1.0
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["obs", "h"]
    assert [o.name for o in session.get_outputs()] == ["q_values", "h_out"]
    # stepping with the state fed back is the torch sequence, step by step
    with torch.no_grad():
        want, _ = student.forward_seq(torch.from_numpy(held))
    np.testing.assert_allclose(onnx_q_values(session, held), want.numpy(), atol=1e-5)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["recurrent"]["state_input"] == "h"
    with pytest.raises(ModelError, match="recurrent"):
        load_model(tmp_path)


def test_int8_reports_agreement_size_and_latency(tmp_path) -> None:
    torch.manual_seed(0)
    student = build_qnet("mlp-4x64", OBS_DIM, 28).eval()
    held = _held(1)
    export_student(student, tmp_path, held, arch="mlp-4x64", feature_names=None, extra=_extra())
    report = quantize_int8(tmp_path, held)
    assert (tmp_path / "model.int8.onnx").is_file()
    assert report["bytes"]["int8"] < report["bytes"]["float"]
    assert 0.5 < report["argmax_agreement_vs_float"] <= 1.0
    assert report["latency_us"]["int8"]["batch_1"] > 0


def test_export_onnx_refuses_a_gru_run_before_loading_it(tmp_path) -> None:
    from training.export import export_from_run

    meta = {"arch": "gru-32", "obs_dim": OBS_DIM, "n_actions": 28}
    (tmp_path / "manifest.json").write_text(json.dumps(meta))
    # no model.pt at all: the refusal comes from the architecture, before any loading
    with pytest.raises(ValueError, match="recurrent"):
        export_from_run(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
