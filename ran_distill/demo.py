"""``ran-distill demo`` (what ``make demo`` runs): the product end to end on embedded defaults.

1. Simulator: OLLA, the tuned OLLA, the fixed CQI mapping and the genie on the ``mimo``
   preset (identical channel realizations).
2. The xApp (``ran-distill serve`` on ``models/default``) and a real Prometheus scraping
   it every second (Debian's ``prometheus`` binary, generated configuration in a
   temporary directory).
3. The simulated gNB (:mod:`ran_distill.gnb`): one ``DecideStream`` per cell, outcomes
   reported, a live progress display; every xApp decision is checked against the same
   model in-process (no training/serving skew).
4. The KPI table: the gNB's KPIs through the xApp next to the same model, OLLA, the tuned
   OLLA and the genie in-process on the same seed, and the latency, deadline and fallback
   figures as the gNB saw them.
5. ``kpis.png``: throughput and BLER per cell against the model's reference, their
   deviation, decision latency p50/p99 and decisions per second over time, queried from
   Prometheus's HTTP API with the Grafana dashboard's PromQL (``--no-prometheus``: from
   the xApp's own ``/metrics``, sampled by the demo).

6. Shadow: the xApp runs a candidate model (by default the 106k-parameter teacher the
   student was distilled from, ``models/teacher-generalist``) beside the student on the same
   traffic without affecting decisions; the demo prints the comparison (agreement, within
   ±1 MCS, mean MCS difference, predicted throughput and BLER change from the outcomes)
   that ``GET /v1/model`` and the ``ran_distill_shadow_*`` metrics carry.

``--quick`` shrinks every budget (the smoke test); ``--hold`` keeps the xApp and
Prometheus running after the run until Ctrl-C, to explore them.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from ran_distill.xapp_process import xapp_process

DEFAULT_MODEL = Path("models/default")
DEFAULT_CANDIDATE = Path("models/teacher-generalist")
SCENARIO = "mimo"  # the scenario of the model's first reference KPIs
SEED = 10000  # the first evaluation seed: the reference KPIs come from 10000-10002


@dataclass(frozen=True)
class DemoBudget:
    """How much each stage simulates."""

    sim_ues: int = 210
    """UEs in the simulator table."""
    sim_slots: int = 500
    """Slots in the simulator table."""
    gnb_ues: int = 210
    """UEs behind the simulated gNB (the reference KPIs' 30 per cell)."""
    gnb_slots: int = 2000
    """Slots the gNB runs through the xApp (1 s of air time)."""
    kpi_window_slots: int = 200
    """The xApp's live-KPI window: one point per cell every 200 slots."""


QUICK = DemoBudget(sim_ues=20, sim_slots=40, gnb_ues=21, gnb_slots=60, kpi_window_slots=20)


def _cli(*args: str) -> None:
    print("\n$ ran-distill " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "ran_distill", *args], check=True)


def run_demo(
    model_dir: Path,
    budget: DemoBudget,
    out_dir: Path,
    *,
    use_prometheus: bool = True,
    hold: bool = False,
    candidate_dir: Path | None = None,
) -> None:
    """The stages of the module doc; raises ``SystemExit`` on training/serving skew."""
    from rich.console import Console

    from ran_distill.gnb import GnbConfig, GnbRunner
    from ran_distill.gnb_cli import compare_in_process, live_progress, print_result
    from ran_distill.kpi_plot import plot_kpis
    from ran_distill.prometheus import prometheus_binary

    console = Console()
    if use_prometheus and prometheus_binary() is None:
        raise SystemExit(
            "prometheus is not installed: run `make system-deps` (apt-get install prometheus) "
            "or pass --no-prometheus"
        )
    if threading.current_thread() is threading.main_thread():
        # `timeout`, a CI runner or `kill` end the demo through its context managers, so
        # the xApp and Prometheus children are stopped, not orphaned
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    _cli(
        "sim",
        "--scenario",
        SCENARIO,
        *("--policy", "olla", "--policy", "olla-tuned", "--policy", "fixed"),
        *("--policy", "genie", "--ues", str(budget.sim_ues), "--slots", str(budget.sim_slots)),
        *("--seed", str(SEED)),
    )
    env = {
        "RAN_DISTILL_KPI_WINDOW_SLOTS": str(budget.kpi_window_slots),
        "RAN_DISTILL_REFERENCE_SCENARIO": SCENARIO,
    }
    serve = f"ran-distill serve --model {model_dir}"
    if candidate_dir is not None:
        env["RAN_DISTILL_CANDIDATE_MODEL_DIR"] = str(candidate_dir)
        serve += f" --candidate {candidate_dir}"
    print(f"\n$ {serve}", flush=True)
    with ExitStack() as stack:
        _, grpc_port, http_port = stack.enter_context(xapp_process(model_dir, env=env))
        print(
            f"xApp ready: gRPC 127.0.0.1:{grpc_port}, metrics http://127.0.0.1:{http_port}/metrics"
        )
        collector = _start_collector(stack, http_port, use_prometheus)
        config = GnbConfig(
            target=f"127.0.0.1:{grpc_port}",
            scenario=SCENARIO,
            ues=budget.gnb_ues,
            slots=budget.gnb_slots,
            seed=SEED,
            model=model_dir,
        )
        print(
            f"\n$ ran-distill gnb --target {config.target} --scenario {SCENARIO} "
            f"--ues {config.ues} --slots {config.slots} --seed {SEED}",
            flush=True,
        )
        t_start = time.time()
        with live_progress(config.slots) as progress:
            result = asyncio.run(GnbRunner(config, progress).run())
        series = collector.finish(result.reported["first_tx"], t_start)
        title = f"ran-distill demo: {SCENARIO}, {config.ues} UEs, {result.slots} slots via the xApp"
        png = plot_kpis(
            series, out_dir / "kpis.png", title=title, source=collector.source, reference=SCENARIO
        )
        result.comparison = compare_in_process(config, result.slots)
        print_result(result, console)
        s = result.stats
        print(
            f"\nxApp over gRPC: {s.skew_checked} decisions, {s.skew_mismatches} differ from the "
            "in-process student"
        )
        print(f"live KPIs over time ({collector.source}): {png}")
        if candidate_dir is not None:
            print_shadow(http_port, console)
        if hold:
            collector.hold(grpc_port, http_port)
    print("\nxApp stopped cleanly (SIGTERM)" + (", Prometheus stopped." if use_prometheus else "."))
    if not result.skew_checked:
        raise SystemExit(
            f"the xApp does not serve {model_dir} (it reports "
            f"{result.xapp_model_version or 'no model'}): nothing to check the decisions against"
        )
    if result.stats.skew_mismatches:
        raise SystemExit("training/serving skew: the xApp disagrees with the student")


def print_shadow(http_port: int, console: Any) -> None:
    """The shadow candidate's comparison with the active model, from ``GET /v1/model``."""
    from rich.table import Table

    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v1/model", timeout=5) as r:
        info = json.loads(r.read())
    cand = info.get("candidate") or {}
    if not cand.get("loaded"):
        print(f"shadow candidate not loaded: {cand.get('last_load_error') or 'none configured'}")
        return
    total = cand["total"]
    table = Table(title=f"shadow: candidate {cand['version']} beside {info['version']}")
    table.add_column("since loaded")
    table.add_column("value", justify="right")
    rows = (
        ("decisions compared", f"{total['compared_decisions']}"),
        ("same MCS", f"{100 * total['agreement']:.1f} %"),
        ("within ±1 MCS", f"{100 * total['agreement_within_one']:.1f} %"),
        ("mean MCS difference (candidate − active)", f"{total['mean_mcs_difference']:+.2f}"),
        ("first transmissions with outcomes", f"{total['matched_outcomes']}"),
        ("predicted throughput change", f"{100 * total['predicted_throughput_change']:+.2f} %"),
        (
            "predicted 1st-tx BLER change",
            f"{100 * total['predicted_first_tx_bler_change']:+.2f} pt",
        ),
    )
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


class _Collector:
    """Where the plotted series come from: Prometheus, or the demo's own ``/metrics`` sampler."""

    source = ""

    def finish(self, first_tx: float, t_start: float) -> Any:
        raise NotImplementedError

    def hold(self, grpc_port: int, http_port: int) -> None:
        print(
            f"\nHolding: xApp gRPC 127.0.0.1:{grpc_port}, http://127.0.0.1:{http_port}/metrics"
            + self._hold_extra()
            + ". Ctrl-C to stop."
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass

    def _hold_extra(self) -> str:
        return ""


class _PrometheusCollector(_Collector):
    source = "Prometheus /api/v1/query_range"

    def __init__(self, base: str) -> None:
        from ran_distill.prometheus import wait_for

        self.base = base
        wait_for(base, 'up{job="ran-distill"}', lambda v: v == 1.0, timeout=30)
        print(f"Prometheus ready: {base} (scraping the xApp every second)")

    def finish(self, first_tx: float, t_start: float) -> Any:
        from ran_distill.kpi_series import from_prometheus
        from ran_distill.prometheus import PrometheusError, wait_for

        # the last scrape must include the last outcome report (all of them arrive unless
        # some failed; then plot what Prometheus has after a while)
        try:
            wait_for(
                self.base,
                "sum(ran_distill_cell_first_transmissions_total)",
                lambda v: v >= first_tx,
                timeout=15,
            )
        except PrometheusError as exc:
            print(f"note: Prometheus has not seen every outcome report ({exc})")
        return from_prometheus(self.base, t_start - 1.0, time.time())

    def _hold_extra(self) -> str:
        return f", Prometheus {self.base}/graph"


class _SamplerCollector(_Collector):
    source = "the xApp's /metrics, sampled by the demo"

    def __init__(self, stack: ExitStack, http_port: int) -> None:
        from ran_distill.kpi_series import MetricsSampler

        self.sampler = MetricsSampler(f"http://127.0.0.1:{http_port}/metrics")
        self.stack = ExitStack()
        self.stack.enter_context(self.sampler)
        stack.push(self.stack.__exit__)

    def finish(self, first_tx: float, t_start: float) -> Any:
        self.stack.close()  # stops the sampler after a final scrape
        return self.sampler.series(t_start)


def _start_collector(stack: ExitStack, http_port: int, use_prometheus: bool) -> _Collector:
    if not use_prometheus:
        return _SamplerCollector(stack, http_port)
    from ran_distill.prometheus import prometheus_server

    print("\n$ prometheus --config.file=<temp>/prometheus.yml", flush=True)
    base = stack.enter_context(prometheus_server([f"127.0.0.1:{http_port}"]))
    return _PrometheusCollector(base)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the root app."""

    @app.command("demo")
    def demo(
        model: Annotated[Path, typer.Option(help="Model directory to serve")] = DEFAULT_MODEL,
        out: Annotated[Path, typer.Option(help="Folder for the figures")] = Path("artifacts/demo"),
        quick: Annotated[bool, typer.Option(help="Tiny budgets (a smoke run in seconds)")] = False,
        prometheus: Annotated[
            bool,
            typer.Option(help="Plot from a real Prometheus (else from the xApp's /metrics)"),
        ] = True,
        hold: Annotated[
            bool, typer.Option(help="Keep the xApp and Prometheus up after the run (Ctrl-C)")
        ] = False,
        candidate: Annotated[
            Path | None,
            typer.Option(help="Candidate model run in shadow beside the served one"),
        ] = DEFAULT_CANDIDATE,
        shadow: Annotated[bool, typer.Option(help="Run the shadow candidate")] = True,
    ) -> None:
        """Simulator baselines, then a simulated gNB driving the xApp, watched by Prometheus."""
        run_demo(
            model,
            QUICK if quick else DemoBudget(),
            out,
            use_prometheus=prometheus,
            hold=hold,
            candidate_dir=candidate if shadow else None,
        )
