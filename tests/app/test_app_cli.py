"""The root ``ran-distill`` CLI composes every package's commands."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ran_distill.cli import app

COMMANDS = [
    "sim",
    "tune-olla",
    "calibrate-bler",
    "train-teacher",
    "evaluate",
    "export-onnx",
    "distill",
    "report",
    "serve",
    "gnb",
    "demo",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_package_registers_its_commands(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
