import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from linkadapt.features import FEATURE_NAMES, OBS_DIM, OBS_SCHEMA_VERSION
from training.export import export_qnet, verify_export
from training.networks import build_qnet, parameter_count


@pytest.fixture()
def exported(tmp_path):
    torch.manual_seed(0)
    net = build_qnet("mlp-4x32", OBS_DIM, 28)
    export_qnet(net, tmp_path, arch="mlp-4x32", extra={"note": "test"})
    return net, tmp_path


def test_manifest_describes_the_model(exported):
    net, d = exported
    man = json.loads((d / "manifest.json").read_text())
    assert man["obs_dim"] == OBS_DIM and man["n_actions"] == 28
    assert man["obs_schema_version"] == OBS_SCHEMA_VERSION
    assert man["feature_names"] == list(FEATURE_NAMES)
    assert man["parameter_count"] == parameter_count(net)
    assert man["input"]["name"] == "obs" and man["output"]["name"] == "q_values"
    assert man["note"] == "test" and man["arch"] == "mlp-4x32"
    golden = np.asarray(man["golden"]["obs"], np.float32)
    with torch.no_grad():
        q = net(torch.as_tensor(golden)).numpy()
    assert man["golden"]["mcs"] == q.argmax(1).tolist()
    assert verify_export(d) <= man["golden"]["atol"]


@pytest.mark.parametrize("batch", [1, 37])
def test_batch_axis_is_dynamic(exported, batch):
    net, d = exported
    sess = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])
    obs = np.random.default_rng(batch).normal(size=(batch, OBS_DIM)).astype(np.float32)
    (q,) = sess.run(["q_values"], {"obs": obs})
    with torch.no_grad():
        np.testing.assert_allclose(q, net(torch.as_tensor(obs)).numpy(), atol=1e-5)


def test_verification_catches_a_tampered_manifest(exported):
    _, d = exported
    man = json.loads((d / "manifest.json").read_text())
    man["golden"]["q_values"][0][0] += 1.0
    (d / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(AssertionError):
        verify_export(d)


def test_recurrent_nets_are_refused(tmp_path):
    with pytest.raises(ValueError, match="recurrent"):
        export_qnet(build_qnet("gru-16", OBS_DIM, 28), tmp_path)


def test_dueling_head_exports_and_verifies(tmp_path):
    torch.manual_seed(1)
    net = build_qnet("dueling-2x16", OBS_DIM, 28)
    export_qnet(net, tmp_path, arch="dueling-2x16")
    assert verify_export(tmp_path) <= 1e-4
