"""The simulator's commands: ``sim``, ``tune-olla`` and ``calibrate-bler``.

:func:`register` adds them to the root ``ran-distill`` app (:mod:`ran_distill.cli`).
Heavy imports (scipy, the simulator) happen inside each command, so importing this
module is cheap.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from linkadapt.baselines import BASELINE_NAMES, OllaPolicy

app = typer.Typer(
    help="The link simulator's commands", no_args_is_help=True, pretty_exceptions_enable=False
)

KPI_COLUMNS = (
    ("throughput_mbps", "throughput (Mbit/s)"),
    ("throughput_p5_mbps", "p5 UE (Mbit/s)"),
    ("zero_ue_share", "zero-UE share"),
    ("cell_throughput_mbps", "cell (Mbit/s)"),
    ("bler", "1st-tx BLER"),
    ("residual_bler", "residual BLER"),
    ("spectral_efficiency", "SE (bit/s/Hz)"),
    ("mean_mcs", "mean MCS"),
)
BASELINE_HELP = ", ".join(BASELINE_NAMES)

T = TypeVar("T")
OnDone = Callable[[str, int], None]  # (policy or candidate label, seed) finished


@app.command("sim")
def sim(
    scenario: Annotated[str, typer.Option(help="Preset name or scenario YAML/JSON file")] = "mimo",
    policy: Annotated[
        list[str], typer.Option(help=f"Baseline to run ({BASELINE_HELP}); repeat to compare")
    ] = [OllaPolicy.name],  # noqa: B006
    ues: Annotated[int, typer.Option(min=1, help="Number of UEs")] = 1000,
    slots: Annotated[int, typer.Option(min=1, help="Slots to simulate")] = 2000,
    seed: Annotated[
        int,
        typer.Option(help="Seed: same seed, same channel for every policy (any seed: ad hoc runs)"),
    ] = 0,
    trace: Annotated[
        Path | None, typer.Option(help="Drive-test CSV replayed as each UE's large-scale SINR")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """Simulate baselines on identical channel realizations and print their KPIs."""
    from linkadapt.sim import load_scenario
    from linkadapt.sim.evaluation import baseline_factory, evaluate
    from linkadapt.sim.trace import with_trace

    try:
        cfg = load_scenario(scenario)
        if trace is not None:
            cfg = with_trace(cfg, trace)
        factories = {name: baseline_factory(name, cfg.mcs_table) for name in policy}
        for name in policy:
            factories[name](1)  # fail fast on an unknown name
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    result = _with_progress(
        lambda cb: evaluate(factories, cfg, [seed], ues, slots, progress=cb),
        total=len(policy),
        quiet=as_json,
    )
    per_policy: dict[str, dict[str, Any]] = {name: result.per_seed[name][seed] for name in policy}
    if as_json:
        for name in policy:
            per_policy[name]["mcs_histogram"] = result.mcs_histograms[name][seed]
        typer.echo(
            json.dumps(
                {
                    "scenario": cfg.name,
                    "seed": seed,
                    "ues": ues,
                    "slots": slots,
                    "policies": per_policy,
                },
                indent=2,
            )
        )
        return
    _print_table(f"{cfg.name}: {ues} UEs × {slots} slots, seed {seed}", per_policy)


@app.command("tune-olla")
def tune_olla(
    scenario: Annotated[list[str], typer.Option(help="Preset to tune; repeatable")] = [  # noqa: B006
        "mimo",
        "mmimo",
        "scsu",
        "high-mobility",
        "bursty",
        "randomized",
    ],
    seeds: Annotated[
        str,
        typer.Option(
            help="A count (the first N tuning seeds, 5000..) or a comma list of tuning seeds"
        ),
    ] = "5",
    ues: Annotated[int, typer.Option(min=1, help="UEs per simulation (scsu: 10)")] = 200,
    slots: Annotated[int, typer.Option(min=1, help="Slots per simulation")] = 1000,
    out: Annotated[Path, typer.Option(help="JSON to write")] = Path(
        "linkadapt/data/olla_tuned.json"
    ),
) -> None:
    """Grid-search OLLA's BLER target and Δ_up per preset on tuning seeds (olla-tuned)."""
    from linkadapt.seeds import parse_seeds
    from linkadapt.sim import load_scenario, olla_tuning

    try:
        seed_list = parse_seeds(seeds, "tuning")
        for sc in scenario:
            load_scenario(sc)  # fail fast on an unknown scenario
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    grid = olla_tuning.GRID
    n_points = len(grid["bler_target"]) * len(grid["delta_up_db"])
    argv = ["ran-distill", "tune-olla"]
    for sc in scenario:
        argv += ["--scenario", sc]
    argv += [
        "--seeds",
        ",".join(map(str, seed_list)),
        "--ues",
        str(ues),
        "--slots",
        str(slots),
        "--out",
        str(out),
    ]

    def report(name: str, entry: dict[str, Any]) -> None:
        o = entry[olla_tuning.PLAIN]
        typer.echo(
            f"{name}: BLER target {entry['bler_target']:g}, delta_up "
            f"{entry['delta_up_db']:g} dB: {entry['throughput_mbps']:.3f} Mbit/s, p5 "
            f"{entry['throughput_p5_mbps']:.3f} (olla {o['throughput_mbps']:.3f}, p5 "
            f"{o['throughput_p5_mbps']:.3f})",
            err=True,
        )

    def run(on_done: OnDone | None) -> dict[str, Any]:
        def progress(sc: str, name: str, seed: int) -> None:
            if on_done is not None:
                on_done(f"{sc} {name}", seed)

        return olla_tuning.tune(
            scenario,
            seed_list,
            ues,
            slots,
            command=shlex.join(argv),
            progress=progress,
            on_preset=report,
        )

    try:
        doc = _with_progress(run, total=len(scenario) * n_points * len(seed_list), quiet=False)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(f"wrote {olla_tuning.write(doc, out)}")


@app.command("calibrate-bler")
def calibrate_bler(
    reference: Annotated[Path, typer.Option(help="Folder with Sionna's PDSCH_table*.json")],
    out: Annotated[Path, typer.Option(help="Parameters JSON to write")] = Path(
        "linkadapt/data/bler_params.json"
    ),
    plot: Annotated[Path, typer.Option(help="Calibration plot (PNG)")] = Path(
        "docs/img/bler_calibration.png"
    ),
) -> None:
    """Fit the BLER abstraction to the reference tables (see linkadapt.sim.bler_calibration)."""
    from linkadapt.bler import _params
    from linkadapt.sim.bler_calibration import calibrate, plot_calibration

    params = calibrate(reference)
    out.write_text(json.dumps(params, indent=2) + "\n")
    _params.cache_clear()
    plot_calibration(reference, plot)
    typer.echo(f"wrote {out} and {plot}")


def _with_progress(run: Callable[[OnDone | None], T], total: int, quiet: bool) -> T:
    """``run(on_done)`` under a progress bar of ``total`` steps (no bar when ``quiet``)."""
    if quiet:
        return run(None)
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("simulating", total=total)
        return run(lambda name, seed: progress.update(task, advance=1, description=f"done {name}"))


def _print_table(title: str, per_policy: dict[str, dict[str, float]]) -> None:
    """KPIs as rows, one column per policy (fits a terminal for any number of KPIs)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("KPI")
    for name in per_policy:
        table.add_column(name, justify="right")
    for key, header in KPI_COLUMNS:
        table.add_row(header, *(f"{kpis[key]:.4g}" for kpis in per_policy.values()))
    Console().print(table)


def register(root: typer.Typer) -> None:
    """Add ``sim``, ``tune-olla`` and ``calibrate-bler`` to ``root``."""
    for command in app.registered_commands:
        root.registered_commands.append(command)
