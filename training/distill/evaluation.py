"""How good a student is where it counts: paired simulator KPIs, or episode returns.

Simulator tasks: on each evaluation scenario and the first ``eval_seeds`` evaluation seeds
(:func:`linkadapt.seeds.evaluation_seeds`), the student, its teacher (the scenario's own in
multi-policy runs; none for a privileged teacher, whose columns the evaluation simulator
does not emit), OLLA, the tuned OLLA, the genie and any extra policies run on identical
channels (:func:`linkadapt.sim.evaluation.evaluate`); the student's paired changes against
the teacher (mean throughput %, 5th-percentile throughput %, BLER in percentage points)
come with 95 % CIs over the seeds. Gymnasium tasks: greedy episode returns of student and
teacher, one batch of episodes per seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from training.distill.teachers import Teacher

EPISODES_PER_SEED = 8
GYM_MAX_STEPS = 10_000


def teacher_policy_factory(teacher: Teacher) -> Any:
    """A ``n_ues -> Policy`` factory running ``teacher`` greedily (torch or ONNX)."""
    from training.policies import OnnxQPolicy, TorchQPolicy

    if teacher.net is not None:
        return lambda n: TorchQPolicy(teacher.net, "teacher")
    return lambda n: OnnxQPolicy(teacher.onnx_path, "teacher")


def evaluate_simulator(
    student: Any,
    teachers: Mapping[str, Teacher],
    scenarios: list[str],
    n_seeds: int,
    n_ues: int,
    n_slots: int,
    *,
    trace: str | None = None,
    extra: Mapping[str, Any] | None = None,
    pairs: tuple[tuple[str, str], ...] = (),
    baselines: tuple[str, ...] = ("olla", "olla-tuned", "genie"),
) -> dict[str, Any]:
    """Paired evaluation (module doc); ``teachers`` maps a scenario to its teacher (key
    ``"*"``: any other scenario); ``extra`` adds policies (name -> factory) and ``pairs``
    asks for more paired changes ``(policy, reference)`` under ``"paired"``."""
    from linkadapt.seeds import evaluation_seeds
    from linkadapt.sim import load_scenario
    from linkadapt.sim.evaluation import baseline_factory, evaluate
    from linkadapt.sim.trace import with_trace
    from training.policies import TorchQPolicy

    out: dict[str, Any] = {}
    for scenario in scenarios:
        teacher = teachers.get(scenario, teachers.get("*"))
        factories: dict[str, Any] = {"student": lambda n: TorchQPolicy(student, "student")}
        if teacher is not None and not teacher.privileged:
            factories["teacher"] = teacher_policy_factory(teacher)
        for name in baselines:
            factories[name] = baseline_factory(name)
        factories.update(extra or {})
        cfg = load_scenario(scenario)
        if trace is not None:
            cfg = with_trace(cfg, trace)
        result = evaluate(factories, cfg, evaluation_seeds(n_seeds), n_ues, n_slots)
        entry: dict[str, Any] = {
            "seeds": result.seeds,
            "summary": {
                p: {k: {"mean": m, "ci95": c} for k, (m, c) in row.items()}
                for p, row in result.summary().items()
            },
            "mcs_histograms": {
                p: np.sum([h for h in hists.values()], axis=0).astype(int).tolist()
                for p, hists in result.mcs_histograms.items()
            },
        }
        if "teacher" in factories:
            entry["student_vs_teacher_pct"] = result.paired_gain_pct("student", "teacher")
            entry["vs_teacher"] = vs_reference(result, "student", "teacher")
        entry["paired"] = {f"{p}_vs_{r}": vs_reference(result, p, r) for p, r in pairs}
        out[scenario] = entry
    return out


def vs_reference(result: Any, policy: str, reference: str) -> dict[str, list[float]]:
    """Paired changes of ``policy`` against ``reference``: [mean, ci95] each."""
    p5 = "throughput_p5_mbps"
    row = {
        "throughput_pct": list(result.paired_gain_pct(policy, reference)),
        "bler_pp": [100.0 * v for v in result.paired_diff(policy, reference, "bler")],
        "throughput_p5_mbps": list(result.paired_diff(policy, reference, p5)),
    }
    if np.all(result.values(reference, p5) > 0):
        row["throughput_p5_pct"] = list(result.paired_gain_pct(policy, reference, p5))
    if np.all(result.values(reference, "bler") > 0):
        # the paper's "BLER deviation" is relative: (BLER_student / BLER_teacher − 1) in %
        row["bler_pct"] = list(result.paired_gain_pct(policy, reference, "bler"))
    return row


def evaluate_gym(
    policies: Mapping[str, Any], env_name: str, n_seeds: int
) -> dict[str, dict[str, Any]]:
    """Greedy episode returns of torch Q-networks (or teachers) on a Gymnasium task:
    ``{name: {"mean", "ci95", "seeds", "returns"}}``."""
    from linkadapt.seeds import evaluation_seeds
    from linkadapt.sim.evaluation import mean_ci95

    seeds = evaluation_seeds(n_seeds)
    out = {}
    for name, policy in policies.items():
        per_seed = [float(np.mean(episode_returns(policy, env_name, s))) for s in seeds]
        mean, ci = mean_ci95(per_seed)
        out[name] = {"mean": mean, "ci95": ci, "seeds": seeds, "returns": per_seed}
    return out


def episode_returns(policy: Any, env_name: str, seed: int) -> list[float]:
    """The first episode's return of each of :data:`EPISODES_PER_SEED` sub-envs, acting
    greedily with ``policy`` (a torch Q-network or a :class:`Teacher`)."""
    from training.acting import act_q_network, advance_hidden
    from training.vector_envs import make_vector_env

    env = make_vector_env(env_name, EPISODES_PER_SEED, seed)
    obs, _ = env.reset(seed=seed)
    n = EPISODES_PER_SEED
    hidden = policy.initial_state(n) if getattr(policy, "recurrent", False) else None
    ret, first = np.zeros(n), np.full(n, np.nan)
    for _ in range(GYM_MAX_STEPS):
        x = np.asarray(obs, np.float32)
        if isinstance(policy, Teacher):
            actions = policy.q_values(x)[0].argmax(1)
        else:
            actions, h_next = act_q_network(policy, x, None, hidden=hidden)
        obs, reward, term, trunc, _ = env.step(actions)
        done = np.asarray(term, bool) | np.asarray(trunc, bool)
        if hidden is not None and not isinstance(policy, Teacher):
            advance_hidden(hidden, h_next, np.ones(n, bool), done)
        ret += np.asarray(reward, np.float64)
        newly = done & np.isnan(first)
        first[newly] = ret[newly]
        ret[done] = 0.0
        if not np.isnan(first).any():
            break
    env.close()
    return [float(r) for r in first if not np.isnan(r)]
