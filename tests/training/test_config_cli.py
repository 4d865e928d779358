"""Configuration dataclasses on the command line: every field an option, defaults written once."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from training.config_cli import option_argv
from training.config_fields import field_defaults, field_docs
from training.distill import FLAGS as DISTILL_FLAGS
from training.distill import DistillConfig
from training.distill import register as register_distill
from training.dqn import cli as dqn_cli
from training.dqn.config import DQNConfig


class Captured(Exception):
    """Raised by the fakes below instead of training: carries the configuration."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg


@pytest.fixture()
def app(monkeypatch) -> typer.Typer:
    def fake_train(cfg, out, **kwargs):
        raise Captured(cfg)

    def fake_distill(cfg, out, **kwargs):
        raise Captured(cfg)

    monkeypatch.setattr("training.dqn.trainer.train", fake_train)
    monkeypatch.setattr("training.distill.distill", fake_distill)
    app = typer.Typer()
    dqn_cli.register(app)
    register_distill(app)
    return app


def _configured(app: typer.Typer, args: list[str]) -> Any:
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, Captured), (result.output, result.exception)
    return result.exception.cfg


def _options(app: typer.Typer, command: str) -> dict[str, Any]:
    """The click options of ``command`` by parameter name (typer bundles its own click)."""
    cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    return {p.name: p for p in cmd.params if p.param_type_name == "option"}


@pytest.mark.parametrize(
    ("command", "cls"), [("train-teacher", DQNConfig), ("distill", DistillConfig)]
)
def test_every_field_is_an_option_with_the_dataclass_default_and_doc(app, command, cls) -> None:
    options = _options(app, command)
    docs = field_docs(cls)
    for field in dataclasses.fields(cls):
        option = options[field.name]
        assert option.help == docs[field.name]
        if field.name in field_defaults(cls):
            assert option.default == field_defaults(cls)[field.name], field.name
        else:
            assert option.required, field.name


def test_field_docs_are_one_line_and_cover_every_field() -> None:
    for cls in (DQNConfig, DistillConfig):
        docs = field_docs(cls)
        assert list(docs) == [f.name for f in dataclasses.fields(cls)]
        assert all(d and "\n" not in d for d in docs.values())


def test_an_undocumented_field_is_reported() -> None:
    @dataclasses.dataclass
    class Half:
        a: int = 1
        """documented"""
        b: int = 2

    with pytest.raises(TypeError, match=r"without a docstring: \['b'\]"):
        field_docs(Half)


def test_train_teacher_options_reach_the_config(app, tmp_path) -> None:
    cfg = _configured(
        app,
        [
            "train-teacher",
            "--out",
            str(tmp_path),
            "--scenario",
            "mimo",
            "--steps",
            "1234",
            "--gamma",
            "0.7",
            "--no-double-dqn",
            "--ray-address",
            "10.0.0.1:6379",
            "--set",
            "tau=0.02",
        ],
    )
    assert (cfg.env, cfg.total_transitions, cfg.gamma, cfg.tau) == ("mimo", 1234, 0.7, 0.02)
    assert cfg.double_dqn is False and cfg.ray_address == "10.0.0.1:6379"
    assert cfg.learning_rate == DQNConfig.defaults()["learning_rate"]  # untouched: default


def test_presets_sit_under_typed_options_and_set_overrides_everything(app, tmp_path) -> None:
    base = ["train-teacher", "--out", str(tmp_path), "--env", "CartPole-v1"]
    assert _configured(app, base).arch == "mlp-2x64"  # CartPole's preset, not the default
    assert _configured(app, [*base, "--arch", "mlp-3x32"]).arch == "mlp-3x32"
    cfg = _configured(app, [*base, "--arch", "mlp-3x32", "--set", "arch=mlp-4x32"])
    assert cfg.arch == "mlp-4x32"


def test_distill_options_reach_the_config(app, tmp_path) -> None:
    cfg = _configured(
        app,
        [
            "distill",
            "--teacher",
            "models/teacher-generalist",
            "--out",
            str(tmp_path),
            "--teacher-driven",
            "--eval-scenarios",
            "mimo",
            "--eval-scenarios",
            "bursty",
            "--lr",
            "0.01",
            "--num-envs",
            "64",
        ],
    )
    assert cfg.teacher == "models/teacher-generalist" and cfg.student_driven is False
    assert cfg.eval_scenarios == ["mimo", "bursty"] and cfg.lr == 0.01 and cfg.num_envs == 64
    assert cfg.samples == 400_000  # untouched: default


def _round_trip(app, command: str, cls: type, flags, fixed: list[str], cfg: Any) -> Any:
    argv = [command, *fixed]
    for field in dataclasses.fields(cls):
        argv += option_argv(cls, field.name, getattr(cfg, field.name), flags)
    return _configured(app, argv)


def test_every_distill_field_round_trips_through_its_option(app, tmp_path) -> None:
    want = DistillConfig(
        teacher="t",
        arch="mlp-4x32",
        scenario="mimo",
        samples=99,
        rounds=3,
        student_driven=False,
        num_envs=7,
        episode_slots=50,
        loss="mse",
        temperature=0.5,
        epochs=2,
        batch_size=33,
        lr=0.02,
        seed=4,
        eval_scenarios=["bursty"],
        eval_seeds=0,
        eval_ues=9,
        eval_slots=90,
    )
    assert all(getattr(want, k) != v for k, v in field_defaults(DistillConfig).items())
    got = _round_trip(app, "distill", DistillConfig, DISTILL_FLAGS, ["--out", str(tmp_path)], want)
    assert got == want


def test_every_dqn_field_round_trips_through_its_option(app, tmp_path) -> None:
    changed: dict[str, Any] = {
        "env": "mimo",
        "reward": "first_tx",
        "arch": "dueling-2x16",
        "target_update": "hard",
        "backend": "ray",
        "ray_address": "10.0.0.1:6379",
    }
    for name, default in DQNConfig.defaults().items():
        if name in changed:
            continue
        if isinstance(default, bool):
            changed[name] = not default
        elif isinstance(default, int):
            changed[name] = default + 1
        else:  # floats: all in (0, 1] or positive, halving stays valid
            changed[name] = default / 2
    want = DQNConfig(**changed)
    want.validate()
    got = _round_trip(
        app, "train-teacher", DQNConfig, dqn_cli.FLAGS, ["--out", str(tmp_path)], want
    )
    assert got == want


def test_bad_values_are_rejected_with_the_field_named(app, tmp_path) -> None:
    out = ["--out", str(tmp_path)]
    result = CliRunner().invoke(app, ["train-teacher", *out, "--gamma", "2"])
    assert result.exit_code == 2 and "gamma" in result.output
    result = CliRunner().invoke(app, ["distill", *out, "--teacher", "t", "--epochs", "0"])
    assert result.exit_code == 2 and "epochs" in result.output


def test_the_replay_command_records_typed_fields() -> None:
    cfg = DQNConfig(env="mimo", gamma=0.7, prioritized=True)
    cmd = dqn_cli.replay_command(
        cfg, Path("runs/x"), frozenset({"gamma", "prioritized"}), ["tau=0.02"], 3
    )
    assert cmd[:4] == ["ran-distill", "train-teacher", "--scenario", "mimo"]
    assert cmd[cmd.index("--steps") + 1] == str(cfg.total_transitions)
    assert cmd[-5:] == ["--gamma", "0.7", "--prioritized", "--set", "tau=0.02"]
