import json

import pytest

from training.dqn.config import DQNConfig


def test_every_field_has_a_one_line_doc():
    docs = DQNConfig.field_docs()
    assert docs and all(d.strip() and "\n" not in d for d in docs.values())


def test_config_roundtrips_through_json(tmp_path):
    cfg = DQNConfig(env="mimo", gamma=0.3, prioritized=True, seed=7)
    cfg.save(tmp_path / "c.json")
    assert DQNConfig.load(tmp_path / "c.json") == cfg
    assert json.loads((tmp_path / "c.json").read_text())["gamma"] == 0.3


@pytest.mark.parametrize(
    "bad",
    [
        {"target_update": "soft"},
        {"backend": "mpi"},
        {"n_step": 0},
        {"gamma": 1.5},
        {"seq_len": 4, "burn_in": 4},
    ],
)
def test_inconsistent_settings_are_rejected(bad):
    with pytest.raises(ValueError):
        DQNConfig(**bad).validate()


def test_unknown_fields_are_rejected():
    with pytest.raises(ValueError, match="unknown"):
        DQNConfig.from_dict({"gama": 0.1})
