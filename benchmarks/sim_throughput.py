"""Simulator speed: UE-slots per CPU-second at 1k, 10k and 100k UEs, everything on.

"Everything on": the ``bursty`` preset (mixed full-buffer and bursty traffic, PF
scheduling, 7 cells with interference, per-subband fading, CQI with delay and noise,
16 HARQ processes with chase combining) and ``mimo`` (full buffer), the feature encoder
producing observations every slot, and OLLA choosing MCS. Single process, numpy pinned
to one thread, so the figure is per core, measured as UE-slots per CPU-second of the
process (``time.process_time``), which other load on a shared machine does not inflate
the way it does wall time.

Alongside, in the same run: a bare numpy toy loop (AR(1) Rayleigh fading of the same
subbands + OLLA with ILLA, nothing else) whose UE-slots per CPU-second make a yardstick
that moves with the machine and its load (the ratio is what to compare across runs);
the batched Gymnasium env's decisions per CPU-second as the DQN trainer steps it
(:class:`linkadapt.sim.envs.LinkAdaptVectorEnv`, ``randomized``, 256 UEs); and the
teacher's training wall time per million decisions (a short ``training.dqn`` run).

    python benchmarks/sim_throughput.py [--write] [--seconds S] [--skip-train]

``--write`` replaces the "Simulator" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks_common import machine_description, replace_section  # noqa: E402
from linkadapt import link_map  # noqa: E402
from linkadapt.baselines import OllaPolicy  # noqa: E402
from linkadapt.olla import OuterLoop  # noqa: E402
from linkadapt.sim import Simulator  # noqa: E402
from linkadapt.sim.envs import LinkAdaptVectorEnv  # noqa: E402

SIZES = (1_000, 10_000, 100_000)
SCENARIOS = ("bursty", "mimo")
TARGET_PER_CORE = 5e6  # UE-slots per CPU-second at 10k UEs
ENV_UES = 256  # the trainer's default num_envs
SUBBANDS = 4


def per_cpu_second(slot: Callable[[], None], seconds: float, warmup: int = 5) -> float:
    """Calls of ``slot`` per CPU-second of this process (after ``warmup`` calls)."""
    for _ in range(warmup):
        slot()
    calls, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        slot()
        calls += 1
    return calls / (time.process_time() - start)


def simulator_rate(scenario: str, n_ues: int, seconds: float) -> float:
    """UE-slots per CPU-second of the simulator with OLLA and the feature encoder."""
    sim = Simulator(scenario, n_ues, seed=0)
    policy = OllaPolicy(n_ues)

    def slot() -> None:
        batch = sim.observe()
        if batch.attached is not None and batch.attached.any():
            policy.reset(batch.rows[batch.attached])
        sim.step(policy.act(batch))

    return n_ues * per_cpu_second(slot, seconds)


def toy_rate(n_ues: int, seconds: float) -> float:
    """UE-slots per CPU-second of the yardstick: a bare numpy AR(1) + OLLA loop.

    Per slot: complex AR(1) fading of ``SUBBANDS`` subbands (numpy's float32 normals),
    mean power to an SINR in dB, ILLA(SINR − Δ) and an OLLA update on a Bernoulli
    ACK. What any vectorized numpy link-adaptation loop pays at the least.
    """
    gen = np.random.default_rng(0)
    rho = np.float32(0.98)
    innov = np.float32(np.sqrt((1.0 - 0.98**2) / 2.0))
    h = gen.standard_normal((2, n_ues, SUBBANDS), dtype=np.float32)
    noise = np.empty_like(h)
    snr_db = gen.uniform(-5.0, 25.0, n_ues)
    loop = OuterLoop(n_ues)
    rows = np.arange(n_ues)

    def slot() -> None:
        gen.standard_normal(h.shape, dtype=np.float32, out=noise)
        h[...] = rho * h + innov * noise
        power = (h[0] * h[0] + h[1] * h[1]).mean(axis=1)
        sinr_db = snr_db + 10.0 * np.log10(np.maximum(power, 1e-6))
        link_map.illa_mcs(sinr_db - loop.offset_db)
        loop.update(rows, (gen.random(n_ues) < 0.9).astype(np.int8))

    return n_ues * per_cpu_second(slot, seconds)


def env_rates(seconds: float) -> tuple[float, float]:
    """The batched env as the trainer steps it: (UE-slots, new-transmission decisions)
    per CPU-second, ``randomized`` with ``ENV_UES`` UEs and random actions."""
    env = LinkAdaptVectorEnv("randomized", num_envs=ENV_UES, seed=0)
    env.reset(seed=0)
    gen = np.random.default_rng(0)
    n_actions = int(env.single_action_space.n)
    decisions = [0]

    def step() -> None:
        _, _, _, _, info = env.step(gen.integers(0, n_actions, ENV_UES))
        decisions[0] += int(info["new_tx"].sum())

    for _ in range(5):
        step()
    decisions[0] = 0
    calls, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        step()
        calls += 1
    cpu = time.process_time() - start
    return ENV_UES * calls / cpu, decisions[0] / cpu


def teacher_wall_per_million(transitions: int) -> tuple[float, float, int]:
    """A short DQN teacher run (defaults: ``randomized``, 256 UEs, mlp-7x128, replay
    ratio 2): (wall seconds, CPU seconds) per million decisions between the first and
    the last log row (the final evaluation excluded), and the decisions measured."""
    from training.dqn.config import DQNConfig
    from training.dqn.trainer import train

    cfg = DQNConfig(
        total_transitions=transitions,
        learning_starts=transitions // 5,
        eval_interval=10 * transitions,
        eval_steps=5,
        eval_num_envs=8,
        eval_kpi_seeds=1,
        checkpoint_interval=10 * transitions,
    )
    cpu_start = time.process_time()
    with tempfile.TemporaryDirectory() as out:
        result = train(cfg, out, progress=False, log_interval=transitions // 10)
    cpu = time.process_time() - cpu_start
    rows = result.curve[:-1]  # the last row's clock includes the final evaluation
    first, last = rows[0], rows[-1]
    done = last["transitions"] - first["transitions"]
    wall = last["wall_s"] - first["wall_s"]
    cpu_share = cpu / max(result.wall_s, 1e-9)  # CPU per wall second over the run
    return 1e6 * wall / done, 1e6 * wall * cpu_share / done, int(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU time per measurement")
    parser.add_argument("--train-decisions", type=int, default=60_000, help="teacher budget")
    parser.add_argument("--skip-train", action="store_true", help="no teacher run")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = []
    for n in SIZES:
        toy = toy_rate(n, args.seconds)
        for scenario in SCENARIOS:
            full = simulator_rate(scenario, n, args.seconds)
            rows.append((n, scenario, full, toy))
            print(
                f"{n:>7} UEs {scenario:>6}: {full / 1e6:6.2f} M UE-slots/CPU-s "
                f"(toy loop {toy / 1e6:6.2f} M, ratio {full / toy:.2f})",
                flush=True,
            )
    env_slots, env_decisions = env_rates(args.seconds)
    print(
        f"vector env ({ENV_UES} UEs, randomized): {env_slots / 1e6:.2f} M UE-slots/CPU-s, "
        f"{env_decisions / 1e3:.1f} k decisions/CPU-s",
        flush=True,
    )
    teacher = None
    if not args.skip_train:
        teacher = teacher_wall_per_million(args.train_decisions)
        print(
            f"teacher: {teacher[0]:.0f} s wall ({teacher[1]:.0f} s CPU) per million "
            f"decisions (measured over {teacher[2]:,} decisions)",
            flush=True,
        )
    load_after = os.getloadavg()
    at_10k = {s: full for n, s, full, _ in rows if n == 10_000}
    lines = [
        "Command: `python benchmarks/sim_throughput.py --write` (`make bench-sim`).",
        f"Machine: {machine_description()}. One process, numpy and numba single-threaded; "
        "UE-slots per CPU-second of the process (per core). 1-min load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (other jobs on the box: "
        "compare the ratio to the toy loop, measured in the same run, across runs).",
        "Everything on: 7 cells, interference, fading, CQI delay/noise, 16 HARQ processes "
        "with chase combining, PF; `bursty` mixes full-buffer and bursty traffic, `mimo` is "
        "full buffer; the feature encoder and OLLA every slot. Toy loop: numpy AR(1) "
        f"fading of {SUBBANDS} subbands + ILLA + OLLA update, nothing else.",
        "",
        "| UEs | scenario | UE-slots/CPU-s | toy loop | ratio to toy | target |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for n, scenario, full, toy in rows:
        lines.append(
            f"| {n:,} | {scenario} | {full / 1e6:.2f} M | {toy / 1e6:.2f} M | "
            f"{full / toy:.2f} | {TARGET_PER_CORE / 1e6:.0f} M at 10k |"
        )
    lines += [
        "",
        f"Batched env (`LinkAdaptVectorEnv`, `randomized`, {ENV_UES} UEs, random actions, "
        f"what the DQN trainer steps): {env_slots / 1e6:.2f} M UE-slots/CPU-s, "
        f"{env_decisions / 1e3:.1f} k new-transmission decisions/CPU-s.",
    ]
    if teacher is not None:
        lines.append(
            f"Teacher training (`training.dqn` defaults, {teacher[2]:,} decisions measured "
            f"after warm-up): {teacher[0]:.0f} s wall, {teacher[1]:.0f} s CPU per million "
            "decisions."
        )
    met = {s: v >= TARGET_PER_CORE for s, v in at_10k.items()}
    lines += [
        "",
        "Target (5 M UE-slots per CPU-second at 10k UEs): "
        + ", ".join(
            f"`{s}` {'met' if ok else 'not met'} ({at_10k[s] / TARGET_PER_CORE:.0%})"
            for s, ok in met.items()
        )
        + ".",
    ]
    if args.write:
        replace_section("Simulator", "\n".join(lines))
        print("BENCHMARKS.md updated")


if __name__ == "__main__":
    main()
