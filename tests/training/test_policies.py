import dataclasses

import numpy as np
import pytest
import torch

from linkadapt.policy import DecisionBatch, Policy
from linkadapt.sim import Simulator, load_scenario
from training.export import export_qnet
from training.networks import build_qnet
from training.policies import OnnxQPolicy, TorchQPolicy, resolve_policy


@pytest.fixture(scope="module")
def batch() -> DecisionBatch:
    sim = Simulator(load_scenario("mimo"), 24, 0)
    for _ in range(30):
        sim.observe()
        sim.step(np.full(24, 5))
    return sim.observe()


def _net(arch="mlp-2x32", obs_dim=None):
    from linkadapt.features import OBS_DIM

    torch.manual_seed(0)
    return build_qnet(arch, obs_dim or OBS_DIM, 28)


def test_torch_policy_is_greedy_argmax(batch):
    net = _net()
    pol = TorchQPolicy(net)
    assert isinstance(pol, Policy)
    with torch.no_grad():
        expect = net(torch.as_tensor(batch.obs)).argmax(1).numpy()
    # No new_tx information (e.g. a gNB asking for every UE): every row is decided.
    np.testing.assert_array_equal(pol.act(dataclasses.replace(batch, new_tx=None)), expect)
    # In the simulator only new transmissions use the MCS: only those rows are computed.
    new = np.asarray(batch.new_tx, bool)
    assert new.any() and not new.all()
    got = pol.act(batch)
    np.testing.assert_array_equal(got[new], expect[new])
    assert (got[~new] == 0).all()


def test_extra_privileged_columns_are_ignored_missing_columns_fail(batch):
    pol = TorchQPolicy(_net())
    wide = np.concatenate([batch.obs, np.ones((len(batch), 2), np.float32)], axis=1)
    np.testing.assert_allclose(pol.q_values(wide), pol.q_values(batch.obs))
    with pytest.raises(ValueError):
        pol.q_values(batch.obs[:, :5])


def test_gru_policy_keeps_per_row_state_and_reset_clears_it(batch):
    net = _net("gru-16")
    pol = TorchQPolicy(net)
    rows = np.arange(4)
    fresh = pol.q_values(batch.obs[:4], rows)
    second = pol.q_values(batch.obs[:4], rows)
    assert not np.allclose(fresh, second)  # state advanced
    pol.reset(np.array([1]))
    third = pol.q_values(batch.obs[:4], rows)
    np.testing.assert_allclose(third[1], fresh[1], atol=1e-6)  # row 1 back to zero state
    assert not np.allclose(third[0], fresh[0])
    # rows that do not start a new transmission keep their state
    pol.reset(rows)
    pol.q_values(batch.obs[:4], rows, commit=np.array([True, False, False, False]))
    after = pol.q_values(batch.obs[:4], rows)
    np.testing.assert_allclose(after[1:], fresh[1:], atol=1e-6)
    assert not np.allclose(after[0], fresh[0])


def test_onnx_policy_matches_torch_policy(batch, tmp_path):
    net = _net("mlp-3x32")
    export_qnet(net, tmp_path)
    onnx_pol, torch_pol = OnnxQPolicy(tmp_path / "model.onnx"), TorchQPolicy(net)
    np.testing.assert_allclose(
        onnx_pol.q_values(batch.obs), torch_pol.q_values(batch.obs), atol=1e-5
    )
    np.testing.assert_array_equal(onnx_pol.act(batch), torch_pol.act(batch))
    full = dataclasses.replace(batch, new_tx=None)
    np.testing.assert_array_equal(onnx_pol.act(full), torch_pol.act(full))


def test_resolve_policy_baselines_and_errors(tmp_path, batch):
    from linkadapt.baselines import BASELINE_NAMES
    from training.policies import policy_name

    assert {"olla", "olla-tuned", "illa", "genie", "fixed"} <= set(BASELINE_NAMES)
    for name in BASELINE_NAMES:
        assert policy_name(name) == name
        pol = resolve_policy(name)(24)
        mcs = pol.act(batch)
        assert mcs.shape == (24,) and mcs.min() >= 0 and mcs.max() <= 27
    with pytest.raises(ValueError, match="neither a baseline"):
        resolve_policy(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="model.pt"):
        resolve_policy(str(tmp_path))  # exists, but holds no model


def test_a_directory_with_both_runs_onnx_without_torch(tmp_path, monkeypatch):
    """The serving image has no torch: a model directory with torch weights (model.pt, or a
    student's student.pt) and model.onnx must still evaluate, through its ONNX."""
    import shutil
    from pathlib import Path

    from training.policies import OnnxQPolicy, TorchQPolicy, resolve_policy

    shipped = Path(__file__).resolve().parents[2] / "models" / "default"  # model.pt + onnx
    legacy = tmp_path / "legacy"  # a student of an older release: student.pt + onnx
    legacy.mkdir()
    for name in ("manifest.json", "model.onnx"):
        shutil.copy(shipped / name, legacy / name)
    shutil.copy(shipped / "model.pt", legacy / "student.pt")
    for model_dir in (str(shipped), str(legacy)):
        assert isinstance(resolve_policy(model_dir)(4), TorchQPolicy)
    monkeypatch.setattr("training.policies.torch_available", lambda: False)
    for model_dir in (str(shipped), str(legacy)):
        assert isinstance(resolve_policy(model_dir)(4), OnnxQPolicy)
