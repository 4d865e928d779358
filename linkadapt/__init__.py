"""NR link-adaptation core: the one policy interface, reports, features, OLLA and baselines.

What the xApp imports is numpy only. The simulator (:mod:`linkadapt.sim`: channel,
Gymnasium envs, paired evaluation, OLLA tuning) needs the ``sim`` extra; its names are
re-exported here lazily, so ``import linkadapt`` never loads it.

Where things are:

- the policy interface: :class:`Policy`, :class:`DecisionBatch`, :data:`PolicyFactory`
- UE measurement reports: :class:`ReportBatch`; the feature encoder: :class:`FeatureHistory`
- baselines (OLLA, tuned OLLA, ILLA, fixed CQI mapping, genie): :data:`BASELINE_NAMES`,
  :func:`make_baseline`, :class:`OllaPolicy`; OLLA's update rule: :class:`OuterLoop`
- the simulator: :class:`Simulator`, :class:`ScenarioConfig`, :func:`load_scenario`
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from linkadapt.baselines import BASELINE_NAMES, OllaPolicy, make_baseline
from linkadapt.features import FeatureHistory
from linkadapt.olla import OuterLoop
from linkadapt.policy import DecisionBatch, Policy, PolicyFactory
from linkadapt.reports import ReportBatch

if TYPE_CHECKING:
    from linkadapt.sim import ScenarioConfig, Simulator, load_scenario

__version__ = "0.1.0"

_SIMULATOR_NAMES = ("Simulator", "ScenarioConfig", "load_scenario")

__all__ = [
    "BASELINE_NAMES",
    "DecisionBatch",
    "FeatureHistory",
    "OllaPolicy",
    "OuterLoop",
    "Policy",
    "PolicyFactory",
    "ReportBatch",
    "ScenarioConfig",
    "Simulator",
    "load_scenario",
    "make_baseline",
]


def __getattr__(name: str) -> Any:
    """Load the simulator on first use of one of its names (it needs the ``sim`` extra)."""
    if name in _SIMULATOR_NAMES:
        return getattr(importlib.import_module("linkadapt.sim"), name)
    raise AttributeError(f"module 'linkadapt' has no attribute {name!r}")
