"""The simulated gNB against a real xApp subprocess on loopback.

- skew: every decision of a full (small) run through the gNB equals the same model's in
  process on the same reports, and the run's KPIs equal the in-process model's run;
- the xApp killed mid-run: the gNB decides with its own OLLA (counted) and finishes; a
  restarted xApp on the same ports gets every cell's stream back;
- the ``ran-distill gnb --json`` command.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ran_distill.gnb import GnbConfig, GnbError, GnbResult, GnbRunner, run_gnb
from ran_distill.gnb_cli import compare_in_process, same_kpis
from ran_distill.xapp_process import free_port, xapp_process

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "default"
N_CELLS = 7  # the mimo preset

pytestmark = pytest.mark.timeout(300)


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, runner: GnbRunner | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    state = ""
    if runner is not None:
        links = [(c.up, c.refused, c.answered_once, c.last_error) for c in runner.links.values()]
        state = f"; slot {runner.slot}, stats {runner.stats.as_dict()}, links {links}"
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{state}")


def test_gnb_decisions_equal_the_model_in_process() -> None:
    with xapp_process(MODEL) as (_, grpc_port, _http):
        config = GnbConfig(
            target=f"127.0.0.1:{grpc_port}",
            ues=42,
            slots=120,
            seed=10000,
            model=MODEL,
            deadline_ms=60_000,  # this test is about skew: every answer is waited for
        )
        result = run_gnb(config)
    s = result.stats
    assert result.skew_checked
    assert result.slots == 120 and s.cell_slots == 120 * N_CELLS
    assert s.answered_cell_slots == s.cell_slots and s.fallback_slots == 0
    assert s.decisions > 300
    # every decision came from the model and was compared: 0 mismatches
    assert s.decisions_xapp_model == s.decisions == s.skew_checked
    assert s.skew_mismatches == 0
    assert s.outcomes_sent == s.cell_slots and s.outcomes_failed == s.outcomes_dropped == 0
    assert s.latency.count == s.cell_slots
    # same decisions on the same channels: the same KPIs as the model run in-process
    model_run = compare_in_process(config, result.slots)["model"]
    assert same_kpis(result.kpis, model_run), (result.kpis, model_run)


def _restart_run(
    grpc_port: int, http_port: int, realtime: float
) -> tuple[GnbRunner, dict[str, int]]:
    """Kill the xApp under a running gNB, start a new one on the same ports."""
    config = GnbConfig(
        target=f"127.0.0.1:{grpc_port}",
        ues=28,
        slots=10_000_000,  # ended by stop()
        seed=10001,
        model=MODEL,
        realtime=realtime,
        deadline_ms=200,
    )
    runner = GnbRunner(config)
    out: dict[str, GnbResult] = {}
    thread = threading.Thread(target=lambda: out.setdefault("r", run_gnb_runner(runner)))
    marks: dict[str, int] = {}
    with xapp_process(MODEL, grpc_port=grpc_port, http_port=http_port) as (proc, _, _):
        thread.start()
        wait_until(lambda: runner.stats.answered_cell_slots >= 20 * N_CELLS, 60, "answers")
        proc.send_signal(signal.SIGKILL)  # no drain: the connection just goes away
        proc.wait()
        marks["answered_before"] = runner.stats.answered_cell_slots
    s = runner.stats
    wait_until(lambda: s.disconnected_cell_slots >= 20 * N_CELLS, 60, "fallbacks", runner)
    marks["fallback_while_down"] = s.fallback_slots
    with xapp_process(MODEL, grpc_port=grpc_port, http_port=http_port):
        wait_until(lambda: s.reconnects >= N_CELLS, 60, "every cell's stream back", runner)
        marks["answered_at_reconnect"] = s.answered_cell_slots
        wait_until(lambda: s.answered_cell_slots >= marks["answered_at_reconnect"] + 50, 60, "")
        runner.stop()
        thread.join(timeout=60)
    assert not thread.is_alive()
    marks["slots"] = out["r"].slots
    return runner, marks


def run_gnb_runner(runner: GnbRunner) -> GnbResult:
    import asyncio

    return asyncio.run(runner.run())


@pytest.mark.parametrize("realtime", [0.1, 0.0], ids=["paced-5ms-slots", "unpaced"])
def test_gnb_falls_back_when_the_xapp_dies_and_reconnects_to_a_new_one(realtime: float) -> None:
    """Paced (5 ms slots) and unpaced: with every cell down nothing is awaited, and the
    slot loop must still give the links' reconnect tasks their turn."""
    grpc_port, http_port = free_port(), free_port()
    runner, marks = _restart_run(grpc_port, http_port, realtime)
    s = runner.stats
    assert marks["slots"] == runner.slot == s.slots  # finished cleanly, every slot decided
    assert s.fallback_slots >= 20 and s.decisions_gnb_fallback > 0
    assert s.fallback_cell_slots == (
        s.late_cell_slots + s.disconnected_cell_slots + s.rejected_cell_slots
    )
    assert s.answered_cell_slots + s.fallback_cell_slots == s.cell_slots == N_CELLS * s.slots
    assert s.reconnects >= N_CELLS  # every cell reopened its stream on the new xApp
    assert s.answered_cell_slots > marks["answered_before"]
    assert s.outcomes_failed + s.outcomes_dropped > 0  # outcomes during the outage are lost
    # UEs whose history the new xApp lacks are not compared; the rest still agree
    assert s.skew_checked > 0 and s.skew_mismatches == 0


def test_gnb_says_clearly_when_no_xapp_answers() -> None:
    config = GnbConfig(target=f"127.0.0.1:{free_port()}", ues=7, slots=5, connect_timeout_s=1)
    with pytest.raises(GnbError, match="did not answer within 1 s"):
        run_gnb(config)


def test_gnb_command_prints_json() -> None:
    with xapp_process(MODEL) as (_, grpc_port, _http):
        out = subprocess.run(
            [sys.executable, "-m", "ran_distill", "gnb", "--target", f"127.0.0.1:{grpc_port}"]
            + ["--ues", "14", "--slots", "30", "--seed", "10000", "--no-compare", "--json"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=240,
        )
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads(out.stdout)
    assert doc["slots"] == 30 and doc["scenario"] == "mimo"
    assert doc["skew_checked"] and doc["stats"]["skew_mismatches"] == 0
    for key in ("p50_ms", "p99_ms", "p99_9_ms"):
        assert doc["stats"]["latency"][key] > 0
    assert {"throughput_mbps", "throughput_p5_mbps", "bler", "residual_bler"} <= set(doc["kpis"])
    assert doc["stats"]["slots"] == 30 and doc["comparison"] == {}


def test_gnb_command_rejects_a_bad_scenario() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ran_distill", "gnb", "--target", "127.0.0.1:1"]
        + ["--scenario", "no-such-preset"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "no-such-preset" in out.stderr
