"""Vectorized, domain-randomized 5G NR link-adaptation simulator."""

from linkadapt.sim.scenario import PRESETS, Randomization, ScenarioConfig, load_scenario
from linkadapt.sim.simulator import Simulator, StepResult

__all__ = ["PRESETS", "Randomization", "ScenarioConfig", "Simulator", "StepResult",
           "load_scenario"]
