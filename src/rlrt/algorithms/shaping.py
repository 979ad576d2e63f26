"""Token-level advantage shaping for RLRT and its variants (``docs/method.md`` sections 3 and 5).

For response token ``t`` of rollout ``k`` with sequence advantage ``A_k``::

    D_t   = log P_S(y_t) - log P_T(y_t)                      (>= float32, clamped to [-c, c], 0 on padding)
    w_t   = exp(direction * sign(A_k) * D_t)                 (direction +1: self-driven up, -1: teacher-predicted up)
    m_t   = (1 - lam) + lam * clip(w_t, 1 - eps_w, 1 + eps_w)
    A_k,t = A_k * m_t    on rows that pass the variant's gate, have a teacher context and A_k != 0
    A_k,t = A_k          elsewhere (plain GRPO)

Everything here runs without gradient: the weights are constants in the surrogate loss. Arithmetic is in float32
(bf16/fp16 inputs are upcast, as the method asks), or in float64 when an input is float64 (the reference-match test
compares with a float64 per-token loop).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import torch

LOG_RATIO_CLAMP = 20.0


@dataclass(frozen=True)
class ShapingVariant:
    """One row of the variants table.

    Attributes:
        name: the ``shaping`` value that selects it.
        direction: ``+1`` up-weights self-driven tokens (``w = (P_S/P_T)^sign(A)``), ``-1`` up-weights
            teacher-predicted tokens (``w = (P_T/P_S)^sign(A)``), ``0`` leaves GRPO unchanged.
        gated: reweight only correct rollouts (the reward gate); ungated variants reweight every rollout.
        default_context: the teacher context used when ``teacher_context`` is not set.
    """

    name: str
    direction: int
    gated: bool
    default_context: str | None
    description: str


VARIANTS: dict[str, ShapingVariant] = {
    v.name: v
    for v in (
        ShapingVariant("grpo", 0, False, None, "plain GRPO/DAPO baseline; no teacher"),
        ShapingVariant("rlrt", +1, True, "sibling", "RLRT: up-weight self-driven tokens of correct rollouts"),
        ShapingVariant("rlrt_all", +1, False, "sibling", "ablation: RLRT without the reward gate"),
        ShapingVariant("teacher_up", -1, True, "sibling", "contrast: up-weight teacher-predicted tokens"),
        ShapingVariant("rlsd", -1, False, "reference", "RLSD baseline (arXiv 2604.03128)"),
    )
}


def get_variant(mode: str) -> ShapingVariant:
    """The variant called ``mode``; a ``ValueError`` naming the valid choices otherwise."""
    try:
        return VARIANTS[mode]
    except KeyError:
        close = difflib.get_close_matches(str(mode), list(VARIANTS), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"Unknown shaping mode {mode!r}{hint}; choose one of {sorted(VARIANTS)}.") from None


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 if any of ``tensors`` is float64, else float32: never below float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def log_ratio(
    student_logps: torch.Tensor, teacher_logps: torch.Tensor, mask: torch.Tensor, clamp: float = LOG_RATIO_CLAMP
) -> torch.Tensor:
    """``D = clamp(log P_S - log P_T, -clamp, clamp)`` in float32 (float64 if an input is), ``0`` where ``mask == 0``.

    Args:
        student_logps, teacher_logps: ``(B, T)`` log-probabilities of the sampled tokens.
        mask: ``(B, T)``, 1 on response tokens, 0 on padding.
    """
    dtype = compute_dtype(student_logps, teacher_logps)
    diff = student_logps.detach().to(dtype) - teacher_logps.detach().to(dtype)
    diff = torch.nan_to_num(diff, nan=0.0).clamp(-clamp, clamp)
    return diff * mask.to(diff.dtype)


def token_weights(log_ratio_: torch.Tensor, advantages: torch.Tensor, direction: int) -> torch.Tensor:
    """``w = exp(direction * sign(A) * D)``: ``(B, T)`` from ``D (B, T)`` and ``A (B,)``; 1 where ``A = 0``."""
    exponent = direction * torch.sign(advantages.to(log_ratio_.dtype)).unsqueeze(1) * log_ratio_
    return torch.exp(exponent)


def token_multiplier(weights: torch.Tensor, lam: float, eps_w: float) -> torch.Tensor:
    """``m = (1 - lam) + lam * clip(w, 1 - eps_w, 1 + eps_w)``, elementwise; never negative, so no sign flips."""
    return (1.0 - lam) + lam * weights.clamp(min=1.0 - eps_w, max=1.0 + eps_w)


def rows_needing_teacher(
    advantages: torch.Tensor, correct: torch.Tensor, has_context: torch.Tensor, mode: str
) -> torch.Tensor:
    """``(B,)`` bool: rows whose weight can change, the only ones that need a teacher forward pass.

    A row needs the teacher when the variant shapes at all, it passes the gate (``correct`` for gated
    variants), its advantage is non-zero, and a teacher context exists for it.
    """
    variant = get_variant(mode)
    if variant.direction == 0:
        return torch.zeros_like(has_context, dtype=torch.bool)
    rows = has_context.bool() & (advantages != 0)
    if variant.gated:
        rows = rows & correct.bool()
    return rows


TOKEN_STATS = ("log_ratio_mean", "self_driven_frac", "weight_mean", "weight_min", "weight_max", "multiplier_mean",
               "multiplier_min", "multiplier_max", "clip_low_frac", "clip_high_frac")


@dataclass
class Shaping:
    """Everything one shaping call computes, each quantity once.

    Attributes:
        token_advantages: ``(B, T)`` ``A_k,t``; padding positions carry ``A_k`` (the loss masks them).
        log_ratio: ``(B, T)`` ``D`` (clamped, 0 on padding); zeros for ``grpo``.
        weights: ``(B, T)`` ``w = exp(direction * sign(A) * D)``; ones for ``grpo``.
        multiplier: ``(B, T)`` the factor applied, ``m`` on shaped tokens and exactly 1 elsewhere.
        shaped: ``(B,)`` bool, rows whose advantages were reweighted.
        stats: the diagnostics of ``shaping_metrics`` as ``name -> (sum, count)`` / ``(value, 1)``.
    """

    token_advantages: torch.Tensor
    log_ratio: torch.Tensor
    weights: torch.Tensor
    multiplier: torch.Tensor
    shaped: torch.Tensor
    stats: dict[str, tuple[float, float]]


def shape(
    advantages: torch.Tensor,
    student_logps: torch.Tensor,
    teacher_logps: torch.Tensor,
    correct: torch.Tensor,
    has_teacher: torch.Tensor,
    mask: torch.Tensor,
    mode: str = "rlrt",
    lam: float = 0.5,
    eps_w: float = 1.0,
    clamp: float = LOG_RATIO_CLAMP,
) -> Shaping:
    """Token advantages ``A_k,t`` for one variant and their diagnostics, in one pass (module docstring: formula).

    Args:
        advantages: ``(B,)`` GRPO sequence advantages ``A_k``.
        student_logps: ``(B, T)`` ``log P_S`` of the sampled tokens (rollout-time or loss-time, detached).
        teacher_logps: ``(B, T)`` ``log P_T`` of the same tokens under the privileged prompt; ignored on rows
            where ``has_teacher`` is False.
        correct: ``(B,)`` bool, verifier says the rollout is correct (the reward gate).
        has_teacher: ``(B,)`` bool, a teacher context existed and ``teacher_logps`` holds real values.
        mask: ``(B, T)``, 1 on the response tokens the loss reads (a row of zeros is never shaped).
        mode: one of ``VARIANTS``.
        lam: mixing weight ``lam`` in ``[0, 1]``; ``lam = 0`` is plain GRPO.
        eps_w: clip half-width for ``w``.
        clamp: bound on ``|D|`` before ``exp``.

    Returns:
        A [`Shaping`]; everything detached, float32 (float64 when an input is float64).

    Statistics (``stats``) are over *shaped* tokens only (rows that need the teacher, response positions); the
    key set is always the same (processes must reduce the same tensors), and a statistic with nothing to
    measure has count 0. Returning sums and counts lets the caller reduce exactly across micro-batches and
    processes.
    """
    variant = get_variant(mode)
    adv = advantages.detach().to(compute_dtype(advantages, student_logps, teacher_logps))
    shaped = adv.unsqueeze(1).expand(-1, mask.shape[1]).clone()
    tokens_present = mask.bool().any(dim=1)
    applies = rows_needing_teacher(adv, correct, has_teacher.bool() & tokens_present, mode)
    rows = float(adv.numel())
    gate = correct.bool() if variant.gated else torch.ones_like(correct, dtype=torch.bool)
    stats: dict[str, tuple[float, float]] = {
        "gated_frac": (float(gate.sum()), rows),
        "teacher_frac": (float((has_teacher.bool() & tokens_present).sum()), rows),
        "shaped_frac": (float(applies.sum()), rows),
        **dict.fromkeys(TOKEN_STATS, (0.0, 0.0)),
    }
    if variant.direction == 0:
        ones = torch.ones_like(shaped)
        return Shaping(shaped, torch.zeros_like(shaped), ones, ones, applies, stats)
    d = log_ratio(student_logps, teacher_logps, mask, clamp)
    w = token_weights(d, adv, variant.direction)
    m = token_multiplier(w, lam, eps_w)
    tokens = applies.unsqueeze(1) & mask.bool()
    multiplier = torch.where(tokens, m, torch.ones_like(m))
    token_advantages = shaped * multiplier if lam != 0.0 else shaped
    n = float(tokens.sum())
    if n > 0:
        d_sel, w_sel, m_sel = d[tokens], w[tokens], m[tokens]
        stats.update(
            {
                "log_ratio_mean": (float(d_sel.sum()), n),
                "self_driven_frac": (float((d_sel > 0).sum()), n),
                "weight_mean": (float(w_sel.sum()), n),
                "weight_min": (float(w_sel.min()), 1.0),
                "weight_max": (float(w_sel.max()), 1.0),
                "multiplier_mean": (float(m_sel.sum()), n),
                "multiplier_min": (float(m_sel.min()), 1.0),
                "multiplier_max": (float(m_sel.max()), 1.0),
                "clip_low_frac": (float((w_sel <= 1.0 - eps_w).sum()), n),
                "clip_high_frac": (float((w_sel >= 1.0 + eps_w).sum()), n),
            }
        )
    return Shaping(token_advantages, d, w, multiplier, applies, stats)


def shape_advantages(
    advantages: torch.Tensor,
    student_logps: torch.Tensor,
    teacher_logps: torch.Tensor,
    correct: torch.Tensor,
    has_teacher: torch.Tensor,
    mask: torch.Tensor,
    mode: str = "rlrt",
    lam: float = 0.5,
    eps_w: float = 1.0,
    clamp: float = LOG_RATIO_CLAMP,
) -> torch.Tensor:
    """``(B, T)`` token advantages ``A_k,t``: ``shape(...).token_advantages`` (same arguments)."""
    return shape(advantages, student_logps, teacher_logps, correct, has_teacher, mask, mode, lam, eps_w,
                 clamp).token_advantages


def lambda_at_step(lam: float, step: int, decay_steps: int | None) -> float:
    """``lam`` decayed linearly to 0 over ``decay_steps`` optimizer steps (RLSD's schedule); constant if None/0."""
    if not decay_steps:
        return lam
    return lam * max(0.0, 1.0 - step / decay_steps)


def shaping_metrics(
    advantages: torch.Tensor,
    student_logps: torch.Tensor,
    teacher_logps: torch.Tensor,
    correct: torch.Tensor,
    has_teacher: torch.Tensor,
    mask: torch.Tensor,
    mode: str,
    lam: float,
    eps_w: float,
    clamp: float = LOG_RATIO_CLAMP,
) -> dict[str, tuple[float, float]]:
    """Diagnostics of one shaping call: ``shape(...).stats`` (same arguments; see ``shape``)."""
    return shape(advantages, student_logps, teacher_logps, correct, has_teacher, mask, mode, lam, eps_w, clamp).stats
