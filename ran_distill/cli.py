"""The ``ran-distill`` command line: each package contributes its commands via ``register``.

``linkadapt.sim`` brings ``sim``, ``tune-olla`` and ``calibrate-bler``; ``training``
(train-teacher, evaluate, export-onnx, distill) registers when importable; ``service``
brings ``serve``; this package adds ``gnb`` and ``demo``. The serving image has no torch, so a
package whose import fails is left out and the rest of the CLI still works.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    help="ran-distill: distilled DQN link adaptation for 5G NR, as an O-RAN xApp",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Order is the order of `ran-distill --help`.
COMMAND_MODULES = (
    "linkadapt.sim.cli",
    "training.dqn.cli",
    "training.cli",
    "training.dqn.distill_runners",
    "service.cli",
    "ran_distill.gnb_cli",
    "ran_distill.demo",
)


def _register_optional(module: str) -> None:
    try:
        mod = importlib.import_module(module)
    except ImportError:  # e.g. the serving image has no training extras
        return
    mod.register(app)


for _module in COMMAND_MODULES:
    _register_optional(_module)


if __name__ == "__main__":
    app()
