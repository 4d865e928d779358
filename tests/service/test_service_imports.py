"""The xApp imports the numpy core only: never the simulator, gymnasium, scipy or torch."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("linkadapt.sim", "gymnasium", "scipy", "torch", "training")


def test_serving_path_loads_no_simulator_or_training_stack() -> None:
    code = (
        "import json, sys\n"
        "import linkadapt, service.app, service.cli, service.client, service.dataplane\n"
        "import service.grpc_server, service.rest\n"
        "from service.config import load_settings\n"
        "service.dataplane.DataPlane(load_settings(model_dir='absent'))  # first-use imports\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    leaked = [m for m in loaded if m.split(".")[0] in FORBIDDEN or m.startswith(FORBIDDEN)]
    assert leaked == []


def test_simulator_names_stay_reachable_from_the_core() -> None:
    code = "import linkadapt; print(linkadapt.Simulator.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "linkadapt.sim.simulator"


def test_root_cli_import_is_light() -> None:
    """``ran-distill serve`` starts without loading the simulator, scipy or torch."""
    code = "import json, sys, ran_distill.cli; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy = ("gymnasium", "scipy", "torch", "linkadapt.sim.simulator", "linkadapt.sim.channel")
    assert [m for m in json.loads(out.stdout) if m.startswith(heavy)] == []
