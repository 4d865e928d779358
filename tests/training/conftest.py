"""Shared fixtures: single-threaded torch so the suite behaves on a shared 2-core box."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _single_thread_torch():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
