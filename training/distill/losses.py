"""Offline distillation losses: a student's outputs against its teacher's Q-values.

- ``kl``: KL(softmax(q_T / τ) ‖ softmax(q_S)) (Rusu et al. 2016, "Policy Distillation":
  a small τ sharpens the teacher's preferences; they found it beats MSE and NLL);
- ``reverse-kl``: KL(softmax(q_S) ‖ softmax(q_T / τ)), mode-seeking: the student puts its
  mass where the teacher's is, and pays nothing for actions it ignores;
- ``mse``: mean squared error on the Q-values (regression of the value scale too);
- ``nll``: cross-entropy on the teacher's argmax (the hard label only);
- ``feature``: ``kl`` plus ``w`` · mean ‖P h_S − h_T‖² where ``h`` are the last hidden
  layers and ``P`` a learned linear projection (Romero et al. 2015, "FitNets": the student
  is free to have a narrower layer).

The online loss (the DQN loss plus a decaying KD term) is not here: it needs an RL loop
(``training.dqn.kd``). Every function takes ``[N, A]`` rows (sequences flattened).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812


def kl_teacher_student(
    student_q: torch.Tensor, teacher_q: torch.Tensor, tau: float
) -> torch.Tensor:
    """KL(softmax(q_T/τ) ‖ softmax(q_S)), mean over rows."""
    target = F.softmax(teacher_q / tau, dim=1)
    return F.kl_div(F.log_softmax(student_q, dim=1), target, reduction="batchmean")


def kl_student_teacher(
    student_q: torch.Tensor, teacher_q: torch.Tensor, tau: float
) -> torch.Tensor:
    """KL(softmax(q_S) ‖ softmax(q_T/τ)), mean over rows."""
    log_t = F.log_softmax(teacher_q / tau, dim=1)
    log_s = F.log_softmax(student_q, dim=1)
    return (log_s.exp() * (log_s - log_t)).sum(dim=1).mean()


def policy_loss(
    name: str, student_q: torch.Tensor, teacher_q: torch.Tensor, tau: float
) -> torch.Tensor:
    """The policy part of loss ``name`` (``feature`` uses ``kl`` for it)."""
    if name in ("kl", "feature"):
        return kl_teacher_student(student_q, teacher_q, tau)
    if name == "reverse-kl":
        return kl_student_teacher(student_q, teacher_q, tau)
    if name == "mse":
        return F.mse_loss(student_q, teacher_q)
    if name == "nll":
        return F.cross_entropy(student_q, teacher_q.argmax(dim=1))
    raise ValueError(f"unknown offline loss {name!r}")


def feature_matching(
    student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, projection: nn.Module
) -> torch.Tensor:
    """mean over rows of ‖P h_S − h_T‖² / width (the L2 hint of FitNets)."""
    return F.mse_loss(projection(student_hidden), teacher_hidden)


def distillation_loss(
    name: str,
    student_q: torch.Tensor,
    teacher_q: torch.Tensor,
    tau: float,
    *,
    student_hidden: torch.Tensor | None = None,
    teacher_hidden: torch.Tensor | None = None,
    projection: nn.Module | None = None,
    feature_weight: float = 1.0,
) -> torch.Tensor:
    """Loss ``name`` (:data:`training.distill.config.OFFLINE_LOSSES`) of ``[N, A]`` rows.

    ``feature`` needs the hidden layers and the projection; the others ignore them.
    """
    loss = policy_loss(name, student_q, teacher_q, tau)
    if name == "feature":
        if student_hidden is None or teacher_hidden is None or projection is None:
            raise ValueError("feature loss needs student and teacher hidden layers and P")
        loss = loss + feature_weight * feature_matching(student_hidden, teacher_hidden, projection)
    return loss


def softened_kl(student_q: torch.Tensor, teacher_q: torch.Tensor, tau: float) -> torch.Tensor:
    """Per-row KL(softmax(q_T/τ) ‖ softmax(q_S)) ``[N]`` (validation reports its mean)."""
    target = F.softmax(teacher_q / tau, dim=1)
    log_target = F.log_softmax(teacher_q / tau, dim=1)
    return (target * (log_target - F.log_softmax(student_q, dim=1))).sum(dim=1)
