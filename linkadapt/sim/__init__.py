"""Vectorized, domain-randomized 5G NR link-adaptation simulator (the ``sim`` extra).

Names load on first use (PEP 562), so ``linkadapt.sim.cli`` can register its commands
on the root CLI without importing scipy or the simulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from linkadapt.sim.scenario import PRESETS, Randomization, ScenarioConfig, load_scenario
    from linkadapt.sim.simulator import Simulator, StepResult

_WHERE = {
    "PRESETS": "linkadapt.sim.scenario",
    "Randomization": "linkadapt.sim.scenario",
    "ScenarioConfig": "linkadapt.sim.scenario",
    "load_scenario": "linkadapt.sim.scenario",
    "Simulator": "linkadapt.sim.simulator",
    "StepResult": "linkadapt.sim.simulator",
}

__all__ = [
    "PRESETS",
    "Randomization",
    "ScenarioConfig",
    "Simulator",
    "StepResult",
    "load_scenario",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'linkadapt.sim' has no attribute {name!r}")
