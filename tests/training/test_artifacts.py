"""Model directories: manifests and run configs read back into the network they describe."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from linkadapt.features import FEATURE_NAMES, OBS_DIM, PRIVILEGED_DIM
from training.artifacts import (
    load_torch_qnet,
    model_meta,
    observation_schema,
    onnx_model_file,
    read_manifest,
    write_manifest,
)
from training.networks import build_qnet, state_dict_dims


@pytest.mark.parametrize("arch", ["mlp-2x16", "dueling-2x16", "gru-8"])
def test_a_run_without_manifest_loads_from_config_and_weights(tmp_path, arch) -> None:
    """A run trained through the Python API has config.json + model.pt, no manifest."""
    torch.manual_seed(0)
    net = build_qnet(arch, 11, 5)
    torch.save(net.state_dict(), tmp_path / "model.pt")
    (tmp_path / "config.json").write_text(json.dumps({"arch": arch, "env": "CartPole-v1"}))
    assert model_meta(tmp_path) == {"arch": arch, "obs_dim": 11, "n_actions": 5}
    loaded = load_torch_qnet(tmp_path)
    x = torch.randn(3, 11)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))


def test_the_manifest_wins_over_the_config(tmp_path) -> None:
    write_manifest(tmp_path, {"arch": "mlp-2x16", "obs_dim": 4, "n_actions": 2, "seed": 3})
    (tmp_path / "config.json").write_text(json.dumps({"arch": "mlp-7x128"}))
    assert model_meta(tmp_path)["seed"] == 3 and read_manifest(tmp_path)["arch"] == "mlp-2x16"


def test_a_directory_without_manifest_or_config_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="neither manifest.json nor config.json"):
        model_meta(tmp_path)


def test_state_dict_dims_rejects_a_state_without_weights() -> None:
    assert state_dict_dims(build_qnet("mlp-3x32", 7, 28).state_dict()) == (7, 28)
    with pytest.raises(ValueError, match="no weight matrix"):
        state_dict_dims({"bias": torch.zeros(3)})


def test_manifests_store_numpy_values_as_json(tmp_path) -> None:
    write_manifest(tmp_path, {"n": np.int64(3), "rows": np.arange(2)})
    assert read_manifest(tmp_path) == {"n": 3, "rows": [0, 1]}


def test_observation_schema_by_size() -> None:
    assert observation_schema(OBS_DIM)["feature_names"] == list(FEATURE_NAMES)
    assert observation_schema(OBS_DIM + PRIVILEGED_DIM)["privileged"] is True
    assert observation_schema(4)["obs_schema_version"] is None


def test_onnx_model_file(tmp_path) -> None:
    assert onnx_model_file(tmp_path) is None
    (tmp_path / "model.onnx").write_bytes(b"")
    assert onnx_model_file(tmp_path) == tmp_path / "model.onnx"
    assert onnx_model_file(tmp_path / "model.onnx") == tmp_path / "model.onnx"
