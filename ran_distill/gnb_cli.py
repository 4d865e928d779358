"""``ran-distill gnb``: the simulated gNB's command, its in-process comparison and its tables.

After the run over gRPC, the same scenario, seed, UEs and slots run in-process with the
model itself (when ``--model`` names the one the xApp serves), ``olla``, ``olla-tuned``
and ``genie`` (:func:`linkadapt.sim.evaluation.evaluate`): identical channels, so the
xApp's column and the in-process model's column are equal when nothing fell back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from ran_distill.gnb import GnbConfig, GnbError, GnbResult, GnbRunner, gnb_scenario, run_gnb
from ran_distill.gnb_link import XappProtocolError

DEFAULT_MODEL = Path("models/default")
BASELINES = ("olla", "olla-tuned", "genie")
KPI_ROWS = (
    ("throughput_mbps", "mean UE (Mbit/s)", "{:.3f}"),
    ("throughput_p5_mbps", "p5 UE (Mbit/s)", "{:.3f}"),
    ("bler", "1st-tx BLER", "{:.4f}"),
    ("residual_bler", "residual BLER", "{:.5f}"),
    ("mean_mcs", "mean MCS", "{:.2f}"),
)


def compare_in_process(config: GnbConfig, slots: int) -> dict[str, dict[str, float]]:
    """KPIs of the model (``config.model``), olla, olla-tuned and genie on the run's seed."""
    from linkadapt.sim.evaluation import baseline_factory, evaluate

    policies: dict[str, Any] = {}
    if config.model is not None:
        from training.policies import resolve_policy

        policies["model"] = resolve_policy(str(config.model), prefer="onnx")
    for name in BASELINES:
        policies[name] = baseline_factory(name)
    result = evaluate(policies, gnb_scenario(config), [config.seed], config.ues, max(slots, 1))
    return {name: result.per_seed[name][config.seed] for name in policies}


def same_kpis(a: dict[str, float], b: dict[str, float]) -> bool:
    keys = [k for k, _, _ in KPI_ROWS]
    return all(math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-12) for k in keys)


def print_result(result: GnbResult, console: Any = None) -> None:
    """The KPI table (gNB via the xApp next to the in-process policies) and what the gNB
    saw of the xApp (latency, deadline, fallback, skew)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    cfg = result.config
    columns = {"via xApp": result.kpis, **result.comparison}
    kpis = Table(
        title=f"{result.scenario}{f' + trace {cfg.trace.name}' if cfg.trace else ''}: "
        f"{cfg.ues} UEs × {result.slots} slots, seed {cfg.seed}",
        caption="via xApp: the gNB over gRPC; the others in-process on the same channels"
        if result.comparison
        else None,
    )
    kpis.add_column("KPI")
    for name in columns:
        kpis.add_column(name, justify="right")
    for key, label, fmt in KPI_ROWS:
        kpis.add_row(label, *(fmt.format(col[key]) for col in columns.values()))
    console.print(kpis)
    model = result.comparison.get("model")
    if model is not None and result.stats.decisions_gnb_fallback == 0:
        same = same_kpis(result.kpis, model)
        console.print(
            "gNB via the xApp vs the same model in-process: "
            + ("identical KPIs" if same else "KPIs differ (see the skew check)")
        )
    console.print(stats_table(result))


def stats_table(result: GnbResult) -> Any:
    from rich.table import Table

    s = result.stats
    lat = s.latency.summary_ms()
    t = Table(title="the xApp as the gNB saw it", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row(
        "decision latency p50 / p99 / p99.9 (ms)",
        f"{lat['p50_ms']:.3f} / {lat['p99_ms']:.3f} / {lat['p99_9_ms']:.3f}",
    )
    t.add_row(
        f"slots missing the {result.config.deadline_ms:g} ms deadline",
        f"{s.deadline_missed_slots} of {s.slots}",
    )
    t.add_row(
        "fallback slots (gNB OLLA in ≥ 1 cell)",
        f"{s.fallback_slots} ({s.fallback_cell_slots} of {s.cell_slots} cell-slots)",
    )
    t.add_row(
        "cell-slots late / disconnected / rejected",
        f"{s.late_cell_slots} / {s.disconnected_cell_slots} / {s.rejected_cell_slots}",
    )
    t.add_row(
        "decisions: model / xApp OLLA / gNB OLLA",
        f"{s.decisions_xapp_model} / {s.decisions_xapp_fallback} / {s.decisions_gnb_fallback}",
    )
    if result.skew_checked:
        skew = f"{s.skew_mismatches} of {s.skew_checked} differ"
    else:
        skew = "not checked (no --model, or the xApp serves another model)"
    t.add_row("xApp vs the model in-process", skew)
    t.add_row("stream reconnects", str(s.reconnects))
    t.add_row(
        "outcome reports sent / failed / dropped",
        f"{s.outcomes_sent} / {s.outcomes_failed} / {s.outcomes_dropped}",
    )
    if result.config.realtime:
        t.add_row("slots started behind schedule", str(s.behind_schedule_slots))
    rate = result.slots / result.wall_s if result.wall_s else 0.0
    t.add_row("wall time", f"{result.wall_s:.1f} s ({rate:.0f} slots/s)")
    t.add_row("xApp model", result.xapp_model_version or "none (xApp OLLA)")
    return t


@contextmanager
def live_progress(total: int, enabled: bool = True) -> Iterator[Callable[[GnbRunner], None]]:
    """A rich progress bar fed by :class:`GnbRunner`'s ``on_progress``."""
    if not enabled:
        yield lambda runner: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task("gNB", total=total)

        def update(runner: GnbRunner) -> None:
            s = runner.stats
            p50 = 1e3 * s.latency.percentile(50) if s.latency.count else float("nan")
            progress.update(
                task,
                completed=runner.slot,
                description=(
                    f"gNB slot {runner.slot}: {runner.links_up}/{len(runner.links)} streams, "
                    f"p50 {p50:.2f} ms, fallback slots {s.fallback_slots}"
                ),
            )

        yield update


def register(app: typer.Typer) -> None:
    """Add ``gnb`` to the root app."""

    @app.command("gnb")
    def gnb(
        target: Annotated[str, typer.Option(help="The xApp's gRPC address, HOST:PORT")],
        scenario: Annotated[
            str, typer.Option(help="Preset name or scenario YAML/JSON file")
        ] = "mimo",
        trace: Annotated[
            Path | None, typer.Option(help="Drive-test CSV replayed as each UE's SINR")
        ] = None,
        ues: Annotated[int, typer.Option(min=1, help="UEs (the shipped reference: 210)")] = 210,
        slots: Annotated[int, typer.Option(min=1, help="Slots to run")] = 2000,
        seed: Annotated[int, typer.Option(help="Simulator seed (same seed, same channel)")] = 0,
        realtime: Annotated[
            float,
            typer.Option(
                min=0.0, help="Pace slots at X times real time (1 = 0.5 ms slots); 0 = unpaced"
            ),
        ] = 0.0,
        deadline_ms: Annotated[
            float, typer.Option(min=0.001, help="Per-slot deadline for the xApp's answers")
        ] = 20.0,
        model: Annotated[
            Path | None,
            typer.Option(
                help="The model the xApp serves: every decision is checked against it "
                "in-process, and it joins the comparison (default: models/default if present)"
            ),
        ] = None,
        compare: Annotated[
            bool, typer.Option(help="Run model/olla/olla-tuned/genie in-process on the seed")
        ] = True,
        cell_offset: Annotated[
            int, typer.Option(min=0, help="Added to cell ids on the wire (several gNBs)")
        ] = 0,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")] = (
            False
        ),
        tls: Annotated[bool, typer.Option(help="TLS to the xApp (system roots)")] = False,
        tls_ca: Annotated[
            Path | None, typer.Option(help="CA file to verify the xApp's certificate (TLS)")
        ] = None,
        tls_cert: Annotated[
            Path | None, typer.Option(help="Client certificate (mutual TLS)")
        ] = None,
        tls_key: Annotated[Path | None, typer.Option(help="Client certificate's key")] = None,
    ) -> None:
        """Run the simulator as a gNB: one DecideStream per cell, outcomes, fallback, KPIs."""
        if model is None and DEFAULT_MODEL.is_dir():
            model = DEFAULT_MODEL
        elif model is not None and not model.exists():
            raise typer.BadParameter(f"{model} does not exist", param_hint="--model")
        try:
            config = GnbConfig(
                target=target,
                scenario=scenario,
                trace=trace,
                ues=ues,
                slots=slots,
                seed=seed,
                realtime=realtime,
                deadline_ms=deadline_ms,
                model=model,
                cell_offset=cell_offset,
                tls=tls,
                tls_ca_file=tls_ca,
                tls_cert_file=tls_cert,
                tls_key_file=tls_key,
            )
            gnb_scenario(config)  # a bad scenario or trace fails before connecting
        except GnbError as exc:
            raise typer.BadParameter(str(exc)) from exc
        except ImportError as exc:  # e.g. the serving image: no simulator extras
            typer.echo(
                f"error: the gNB needs the simulator (pip install 'ran-distill[sim]'): {exc}",
                err=True,
            )
            raise typer.Exit(2) from exc
        try:
            with live_progress(slots, enabled=not as_json) as progress:
                result = run_gnb(config, progress, stop_on_sigint=True)
        except (GnbError, XappProtocolError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        if compare:
            result.comparison = compare_in_process(config, result.slots)
        if as_json:
            typer.echo(json.dumps(_finite(result.as_dict()), indent=2))
        else:
            print_result(result)


def _finite(value: Any) -> Any:
    """JSON-safe: NaN / inf become null, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
