"""``ran-distill serve``: registered on the root typer app by ``ran_distill.cli``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to ``app``."""

    @app.command("serve")
    def serve(
        model: Annotated[
            Path | None, typer.Option("--model", help="Model directory (model_dir)")
        ] = None,
        candidate: Annotated[
            str | None,
            typer.Option(
                "--candidate", help="Shadow candidate model directory (candidate_model_dir)"
            ),
        ] = None,
        grpc_port: Annotated[int | None, typer.Option("--grpc-port", help="gRPC port")] = None,
        http_port: Annotated[int | None, typer.Option("--http-port", help="HTTP port")] = None,
        host: Annotated[str | None, typer.Option("--host", help="Bind address")] = None,
        log_level: Annotated[str | None, typer.Option("--log-level")] = None,
    ) -> None:
        """Run the link-adaptation xApp (gRPC + REST + metrics) until SIGTERM.

        Flags override RAN_DISTILL_* environment variables, which override the
        CONFIG_FILE descriptor's controls, which override defaults.
        """
        from service.app import run
        from service.config import ConfigError, load_settings

        try:
            settings = load_settings(
                model_dir=model,
                candidate_model_dir=candidate,
                grpc_port=grpc_port,
                http_port=http_port,
                host=host,
                log_level=log_level,
            )
        except ConfigError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
        try:
            run(settings)
        except ConfigError as exc:  # a TLS or authorization file, read at start
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
