"""Model registry: manifest validation, golden check, atomic swap, failed reload keeps old."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from service_testing import mlp_weights, numpy_forward, write_model_dir

from linkadapt import features
from service.metrics import ServiceMetrics
from service.registry import ModelError, ModelRegistry, load_model


def _edit_manifest(path: Path, **changes: object) -> None:
    m = json.loads((path / "manifest.json").read_text())
    m.update(changes)
    (path / "manifest.json").write_text(json.dumps(m))


def test_valid_model_matches_numpy_forward(tmp_path: Path) -> None:
    d = write_model_dir(tmp_path / "m", seed=3)
    model = load_model(d)
    x = np.random.default_rng(0).uniform(-1, 1, (17, features.OBS_DIM)).astype(np.float32)
    want = numpy_forward(mlp_weights(features.OBS_DIM, 28, (64, 32), 3), x)
    np.testing.assert_allclose(model.infer(x), want, atol=1e-4)
    assert model.parameters == sum(w.size + b.size for w, b in mlp_weights(features.OBS_DIM, 28))
    assert model.version.startswith("test-3+")
    assert model.reference_kpis == {
        "mimo": {"throughput_mbps": 50.0, "bler": 0.1},
        "high-mobility": {"throughput_mbps": 20.0, "bler": 0.12},
    }


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"obs_schema_version": "999"}, "obs_schema_version"),
        ({"obs_dim": features.OBS_DIM + 1}, "obs_dim"),
        ({"n_actions": 29}, "n_actions"),
        ({"golden": None}, "golden"),
        ({"golden": {"obs": [[0.0] * 3], "q_values": [[0.0] * 28]}}, "golden"),
        ({"format": "something-else"}, "format"),
        ({"format_version": 2}, "format"),
        ({"model_sha256": "0" * 64}, "model_sha256"),
        ({"privileged": True}, "privileged"),
        ({"recurrent": {"state_input": "h", "state_output": "h_out"}}, "recurrent"),
    ],
)
def test_manifest_mismatch_rejected(tmp_path: Path, change: dict, needle: str) -> None:
    d = write_model_dir(tmp_path / "m")
    _edit_manifest(d, **change)
    with pytest.raises(ModelError, match=needle):
        load_model(d)


def test_golden_mismatch_and_broken_files_rejected(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="golden outputs differ"):
        load_model(write_model_dir(tmp_path / "g", corrupt_golden=True))
    d = write_model_dir(tmp_path / "o")
    (d / "model.onnx").write_bytes(b"not an onnx model")
    _edit_manifest(d, model_sha256=hashlib.sha256(b"not an onnx model").hexdigest())
    with pytest.raises(ModelError, match="onnxruntime cannot load"):
        load_model(d)
    (d / "manifest.json").unlink()
    with pytest.raises(ModelError, match="missing manifest.json"):
        load_model(d)
    with pytest.raises(ModelError, match="not a directory"):
        load_model(tmp_path / "nope")


def test_reload_swaps_and_failed_reload_keeps_old(tmp_path: Path) -> None:
    metrics = ServiceMetrics()
    d = write_model_dir(tmp_path / "m", seed=0, version="v1")
    reg = ModelRegistry(d, metrics=metrics)
    assert reg.reload() == (True, "")
    first = reg.current
    assert first is not None and first.version.startswith("v1+")
    assert not reg.changed()  # unchanged files: the data plane's poll does not reload
    # a broken update: old model keeps serving, failure reported in info + metric
    write_model_dir(d, seed=1, version="v2", corrupt_golden=True)
    assert reg.changed()
    assert reg.reload()[0] is False
    assert reg.current is first
    info = reg.info()
    assert info["last_reload_result"] == "failed" and "golden" in info["last_reload_error"]
    assert info["version"].startswith("v1+")
    assert (
        metrics.registry.get_sample_value("ran_distill_model_reloads_total", {"result": "failure"})
        == 1
    )
    # a good update is picked up by the poll and swapped in
    write_model_dir(d, seed=2, version="v3")
    os.utime(d / "model.onnx")
    assert reg.changed()
    assert reg.reload()[0] is True
    assert reg.current is not first and reg.current.version.startswith("v3+")
    assert reg.info()["last_reload_result"] == "ok"
    assert (
        metrics.registry.get_sample_value("ran_distill_model_reloads_total", {"result": "success"})
        == 2
    )
    assert metrics.registry.get_sample_value("ran_distill_model_loaded") == 1


def test_missing_model_dir_means_fallback(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "absent", metrics=ServiceMetrics())
    ok, err = reg.reload()
    assert not ok and "not a directory" in err
    assert reg.current is None and reg.info()["loaded"] is False


def test_shipped_default_model_is_servable() -> None:
    """``models/default`` (when the training pipeline has shipped it) passes every check the
    xApp applies before serving: format, SHA-256, schema, golden rows, warm-up."""
    default = Path(__file__).resolve().parents[2] / "models" / "default"
    if not (default / "manifest.json").exists():
        pytest.skip("models/default not shipped yet (produced by the training pipeline)")
    model = load_model(default)
    assert model.n_actions == 28 and model.obs_dim == features.OBS_DIM
