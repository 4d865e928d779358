"""Fixtures for the xApp tests: tiny ONNX models and a real server on loopback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from service_testing import ADMIN_TOKEN, ServerThread, write_model_dir  # noqa: E402


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid tiny student (seed 0)."""
    return write_model_dir(tmp_path_factory.mktemp("models") / "m0", seed=0)


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[ServerThread]:
    """A running xApp serving ``model_dir`` (shared by a test module)."""
    srv = ServerThread(model_dir=model_dir, admin_token=ADMIN_TOKEN, max_batch_ues=512)
    yield srv
    srv.stop()
