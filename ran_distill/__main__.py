"""``python -m ran_distill``: the ``ran-distill`` command line."""

from ran_distill.cli import app

app()
