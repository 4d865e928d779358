"""``python -m service serve ...`` (same command as ``ran-distill serve``)."""

from __future__ import annotations

import typer

from service.cli import register

app = typer.Typer(add_completion=False, help="ran-distill xApp")


@app.callback()
def _root() -> None:
    """ran-distill link-adaptation xApp."""


register(app)

if __name__ == "__main__":
    app()
