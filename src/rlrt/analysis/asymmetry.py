"""Token-level information asymmetry between student and privileged teacher (``docs/method.md`` section 2),
and the candidate-set shift statistic. Pure functions on logits."""

from __future__ import annotations

import torch


def token_asymmetry(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tokens: torch.Tensor,
                    top_k: int = 5) -> dict[str, torch.Tensor]:
    """Per-position statistics of one rollout.

    Args:
        student_logits, teacher_logits: ``(T, V)`` next-token logits at the response positions.
        tokens: ``(T,)`` the sampled response tokens.

    Returns:
        ``logp_student``, ``logp_teacher``, ``log_ratio`` (``D``) and ``kl`` (``KL(P_S || P_T)``, full
        vocabulary), all ``(T,)`` float32; ``top_student_ids``/``top_student_probs`` and the teacher's, ``(T, k)``.
    """
    log_s = torch.log_softmax(student_logits.float(), dim=-1)
    log_t = torch.log_softmax(teacher_logits.float(), dim=-1)
    index = tokens.long().unsqueeze(-1)
    logp_s = log_s.gather(-1, index).squeeze(-1)
    logp_t = log_t.gather(-1, index).squeeze(-1)
    kl = (log_s.exp() * (log_s - log_t)).sum(-1).clamp(min=0.0)
    top_s = log_s.topk(top_k, dim=-1)
    top_t = log_t.topk(top_k, dim=-1)
    return {
        "logp_student": logp_s,
        "logp_teacher": logp_t,
        "log_ratio": logp_s - logp_t,
        "kl": kl,
        "top_student_ids": top_s.indices,
        "top_student_probs": top_s.values.exp(),
        "top_teacher_ids": top_t.indices,
        "top_teacher_probs": top_t.values.exp(),
    }


def candidate_shift(base_logits: torch.Tensor, trained_logits: torch.Tensor, mask: torch.Tensor,
                    threshold: float = 1e-3) -> tuple[int, int]:
    """How often the trained model's top-1 token had probability below ``threshold`` under the base model.

    Args:
        base_logits, trained_logits: ``(N, T, V)`` logits of the two models on the same contexts.
        mask: ``(N, T)``, positions to count.

    Returns:
        ``(promoted, positions)``: positions whose trained top-1 token was a low-probability base candidate, and
        the number of positions counted.
    """
    top1 = trained_logits.argmax(dim=-1, keepdim=True)
    base_prob = torch.softmax(base_logits.float(), dim=-1).gather(-1, top1).squeeze(-1)
    counted = mask.bool()
    return int(((base_prob < threshold) & counted).sum()), int(counted.sum())
