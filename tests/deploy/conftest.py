from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow: builds the wheel and a clean virtual environment, then starts the service "
        "(about a minute with a warm pip cache); deselect with -m 'not slow'",
    )
