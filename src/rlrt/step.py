"""One RLRT step, from a batch of rollouts to shaped token advantages (``docs/method.md``).

This is the single implementation of the step: ``RLRTTrainer``'s TRL hooks call it, and so do ``rlrt inspect``
and the analysis tools, so what they show is what training computes. Given the rollouts of a batch, an
[`RLRTConfig`] and a log-prob function::

    result = rlrt_step(rollouts, config, tokenizer, logps_fn)     # everything below, in one call
    result.teacher.contexts        # each row's privileged text, or None
    result.teacher.rows            # (B,) rows sent to the teacher
    result.teacher_logps           # (B, T) log P_T of the student's own tokens (0 where not scored)
    result.shaping.multiplier      # (B, T) m_t applied to A_k (exactly 1 where nothing is shaped)
    result.shaping.token_advantages, result.shaping.stats

Training splits the same call in two, because ``log P_S`` may only exist at loss time (TRL's loss forward):

* at rollout time, ``score_with_teacher`` -- the reward gate, the contexts, the rows that need the teacher,
  their teacher prompts and ``log P_T``;
* at loss time, for each micro-batch, ``shape_rollouts`` -- ``D``, ``w``, ``m``, the token advantages and the
  shaping statistics, each computed once.

Everything here is model-agnostic: the model enters only through ``logps_fn`` (``teacher.LogpsFn``), whose
parameters (live, frozen or EMA teacher) are the caller's business.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .algorithms.shaping import Shaping, lambda_at_step, rows_needing_teacher, shape
from .config import RLRTConfig
from .teacher import LogpsFn, Prompt, choose_contexts, left_pad, render_prompt, score_teacher, tokenize_teacher_prompts


@dataclass
class Rollouts:
    """The rollouts of one batch in TRL's layout: ``G = group_size`` consecutive rows share a prompt.

    ``B`` rows are served by this call. On several processes each serves a slice of the global batch of ``N``
    rows starting at ``offset``; a sibling may live on another process, so ``rewards`` and
    ``completion_texts`` cover the *global* batch. On one process ``N = B`` and ``offset = 0``.

    Attributes:
        prompts: ``B`` prompts, one per row (a group repeats its prompt), chat messages or text.
        completion_ids: ``(B, T)`` long, the sampled tokens, right-padded.
        completion_mask: ``(B, T)``, 1 on the tokens the loss reads (TRL's ``completion_mask``, times its
            ``tool_mask`` where there is one; a truncated completion under ``mask_truncated_completions`` is all 0).
        advantages: ``(B,)`` GRPO sequence advantages ``A_k``.
        rewards: ``(N,)`` the correctness reward of every rollout of the global batch (``NaN`` = not applicable).
        completion_texts: ``N`` completion texts of the global batch (the sibling contexts).
        group_size: ``G``.
        offset: global index of this call's first row.
        references: ``B`` values of the dataset's ``solution`` column (``None`` where absent).
        answers: ``B`` values of the dataset's ``answer`` column (``None`` where absent).
    """

    prompts: Sequence[Prompt]
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    advantages: torch.Tensor
    rewards: torch.Tensor
    completion_texts: Sequence[str]
    group_size: int
    offset: int = 0
    references: Sequence[Any] | None = None
    answers: Sequence[Any] | None = None

    def __post_init__(self):
        rows = len(self.prompts)
        if self.completion_ids.shape != self.completion_mask.shape or self.completion_ids.shape[0] != rows:
            raise ValueError(
                f"Rollouts: {rows} prompts, completion_ids {tuple(self.completion_ids.shape)} and completion_mask "
                f"{tuple(self.completion_mask.shape)} must agree on (B, T)."
            )
        if self.advantages.shape != (rows,):
            raise ValueError(f"Rollouts: advantages must be ({rows},); got {tuple(self.advantages.shape)}.")
        if len(self.rewards) != len(self.completion_texts) or not 0 <= self.offset <= len(self.rewards) - rows:
            raise ValueError(
                f"Rollouts: rewards ({len(self.rewards)}) and completion_texts ({len(self.completion_texts)}) cover "
                f"the global batch, which must hold rows {self.offset}..{self.offset + rows - 1}."
            )


@dataclass
class TeacherRows:
    """Which rows the teacher scores, and with what context.

    Attributes:
        correct: ``(B,)`` bool, the reward gate's verdict (correctness reward ``>= correctness_threshold``).
        contexts: ``B`` privileged texts, ``None`` where the row has none.
        has_context: ``(B,)`` bool, ``contexts[i] is not None``.
        rows: ``(B,)`` bool, rows sent to the teacher: the variant shapes, the gate passes, ``A != 0``, a context
            exists and the loss reads at least one of the row's tokens.
    """

    correct: torch.Tensor
    contexts: list[str | None]
    has_context: torch.Tensor
    rows: torch.Tensor


@dataclass
class StepResult:
    """Everything one RLRT step computes for a batch (``rlrt_step``).

    Attributes:
        teacher: the gate, the contexts and the rows scored.
        teacher_prompt_ids: token ids of each scored row's teacher prompt, in row order.
        teacher_logps: ``(B, T)`` float32 ``log P_T``, 0 on rows not scored and on padding.
        student_logps: ``(B, T)`` ``log P_S`` used for ``D``.
        lam: the mixing weight at this step (after the optional decay).
        shaping: ``D``, ``w``, ``m``, the token advantages and the statistics.
    """

    teacher: TeacherRows
    teacher_prompt_ids: list[list[int]]
    teacher_logps: torch.Tensor
    student_logps: torch.Tensor
    lam: float
    shaping: Shaping


def correct_rollouts(rewards: torch.Tensor, threshold: float) -> torch.Tensor:
    """The reward gate: ``(N,)`` bool, ``reward >= threshold``; a ``NaN`` reward (not applicable) is not correct."""
    return torch.nan_to_num(rewards.to(torch.float64), nan=-math.inf) >= threshold


def choose_teacher_rows(rollouts: Rollouts, config: RLRTConfig, step: int = 0) -> TeacherRows:
    """The gate, each row's context (``teacher.choose_contexts`` with the config's options) and the rows to score.

    ``step`` is the optimizer step, which seeds the random sibling choice together with ``config.seed``.
    """
    local = len(rollouts.prompts)
    correct_all = correct_rollouts(torch.as_tensor(rollouts.rewards).cpu(), config.correctness_threshold)
    contexts = choose_contexts(
        range(rollouts.offset, rollouts.offset + local),
        rollouts.group_size,
        correct_all.tolist(),
        rollouts.completion_texts,
        source=config.teacher_context,
        references=rollouts.references,
        answers=rollouts.answers,
        fallback=config.teacher_context_fallback,
        selection=config.sibling_selection,
        seed=config.seed,
        step=step,
    )
    device = rollouts.advantages.device
    correct = correct_all[rollouts.offset : rollouts.offset + local].to(device)
    has_context = torch.tensor([c is not None for c in contexts], dtype=torch.bool, device=device)
    has_tokens = rollouts.completion_mask.bool().any(dim=1).to(device)
    rows = rows_needing_teacher(rollouts.advantages, correct, has_context & has_tokens, config.shaping)
    return TeacherRows(correct=correct, contexts=contexts, has_context=has_context, rows=rows)


def teacher_prompt_ids(
    tokenizer, rollouts: Rollouts, teacher: TeacherRows, config: RLRTConfig, chat_template_kwargs: dict | None = None
) -> list[list[int]]:
    """Token ids of the teacher prompt of every row in ``teacher.rows``, in row order (template and length bound
    from the config)."""
    selected = teacher.rows.nonzero(as_tuple=True)[0].tolist()
    return tokenize_teacher_prompts(
        tokenizer,
        [rollouts.prompts[i] for i in selected],
        [teacher.contexts[i] for i in selected],
        config.teacher_prompt_template,
        config.max_teacher_prompt_length,
        chat_template_kwargs,
    )


def teacher_batch_size(config: RLRTConfig) -> int:
    """Rows per teacher forward chunk: ``teacher_batch_size``, else ``per_device_train_batch_size``."""
    return config.teacher_batch_size or config.per_device_train_batch_size


def score_with_teacher(
    rollouts: Rollouts,
    config: RLRTConfig,
    tokenizer,
    teacher_logps_fn: LogpsFn,
    step: int = 0,
    chat_template_kwargs: dict | None = None,
    pad_id: int | None = None,
) -> tuple[TeacherRows, list[list[int]], torch.Tensor]:
    """The rollout-time half of the step: ``(teacher rows, their prompt ids, log P_T (B, T) float32)``.

    Only ``teacher.rows`` are scored (no forward pass at all when there are none); ``teacher_logps_fn`` must
    run under the teacher's parameters. ``pad_id`` defaults to ``tokenizer.pad_token_id``.
    """
    teacher = choose_teacher_rows(rollouts, config, step)
    prompt_ids = teacher_prompt_ids(tokenizer, rollouts, teacher, config, chat_template_kwargs)
    teacher_logps = score_teacher(
        teacher_logps_fn,
        prompt_ids,
        rollouts.completion_ids,
        rollouts.completion_mask,
        teacher.rows,
        tokenizer.pad_token_id if pad_id is None else pad_id,
        teacher_batch_size(config),
    )
    return teacher, prompt_ids, teacher_logps


def shape_rollouts(
    advantages: torch.Tensor,
    student_logps: torch.Tensor,
    teacher_logps: torch.Tensor,
    correct: torch.Tensor,
    has_teacher: torch.Tensor,
    mask: torch.Tensor,
    config: RLRTConfig,
    step: int = 0,
) -> tuple[Shaping, float]:
    """The loss-time half: ``(shaping, lam)`` with the config's variant, ``lam`` at ``step``, ``eps_w`` and clamp.

    Shapes are those of ``algorithms.shape``: ``advantages``, ``correct``, ``has_teacher`` ``(B,)``; the rest
    ``(B, T)``; ``mask`` is the mask the loss reads.
    """
    lam = lambda_at_step(config.shaping_lambda, step, config.shaping_lambda_decay_steps)
    shaping = shape(
        advantages=advantages,
        student_logps=student_logps,
        teacher_logps=teacher_logps,
        correct=correct,
        has_teacher=has_teacher,
        mask=mask,
        mode=config.shaping,
        lam=lam,
        eps_w=config.shaping_eps_w,
        clamp=config.log_ratio_clamp,
    )
    return shaping, lam


@torch.no_grad()
def student_logps_of(
    logps_fn: LogpsFn, tokenizer, rollouts: Rollouts, batch_size: int, chat_template_kwargs: dict | None = None
) -> torch.Tensor:
    """``(B, T)`` float32 ``log P_S`` of the rollouts under their own prompts, laid out as GRPO does (prompt
    left-padded, completion right-padded), 0 on padding. For callers without rollout-time log-probs."""
    prompt_ids, prompt_mask = left_pad(
        [render_prompt(tokenizer, p, chat_template_kwargs) for p in rollouts.prompts],
        tokenizer.pad_token_id,
        device=rollouts.completion_ids.device,
    )
    input_ids = torch.cat([prompt_ids, rollouts.completion_ids], dim=1)
    attention_mask = torch.cat([prompt_mask, rollouts.completion_mask.to(prompt_mask.dtype)], dim=1)
    logps = logps_fn(input_ids, attention_mask, rollouts.completion_ids.shape[1], batch_size).float()
    return logps * rollouts.completion_mask.to(logps.dtype)


def rlrt_step(
    rollouts: Rollouts,
    config: RLRTConfig,
    tokenizer,
    logps_fn: LogpsFn,
    student_logps: torch.Tensor | None = None,
    step: int = 0,
    teacher_logps_fn: LogpsFn | None = None,
    chat_template_kwargs: dict | None = None,
) -> StepResult:
    """The whole RLRT step for one batch, each quantity computed once (module docstring).

    Args:
        rollouts: the batch.
        config: the variant, teacher and shaping options (``shaping``, ``teacher_context``,
            ``teacher_context_fallback``, ``sibling_selection``, ``seed``, ``teacher_prompt_template``,
            ``max_teacher_prompt_length``, ``correctness_threshold``, ``shaping_lambda`` and its decay,
            ``shaping_eps_w``, ``log_ratio_clamp``; ``temperature`` is the caller's ``logps_fn``'s business).
        tokenizer: renders the student and teacher prompts (chat template, pad id).
        logps_fn: ``(input_ids, attention_mask, logits_to_keep, batch_size) -> (N, logits_to_keep)`` per-token
            log-probs under the policy, temperature-scaled as in training (``teacher.model_logps_fn(model,
            config.temperature)`` for a plain model).
        student_logps: ``(B, T)`` ``log P_S`` if the caller has it (rollout-time log-probs); otherwise computed
            with ``logps_fn``.
        step: optimizer step (the sibling seed and the ``lam`` decay).
        teacher_logps_fn: the teacher's log-prob function when its parameters differ (frozen/EMA);
            ``logps_fn`` otherwise.

    Returns:
        A [`StepResult`].

    Raises:
        ValueError: inconsistent ``rollouts``, an unknown variant or context source, or a teacher prompt that
            cannot fit ``max_teacher_prompt_length``.
    """
    teacher, prompt_ids, teacher_logps = score_with_teacher(
        rollouts, config, tokenizer, teacher_logps_fn or logps_fn, step, chat_template_kwargs
    )
    if student_logps is None:
        student_logps = student_logps_of(
            logps_fn, tokenizer, rollouts, teacher_batch_size(config), chat_template_kwargs
        )
    shaping, lam = shape_rollouts(
        rollouts.advantages, student_logps, teacher_logps, teacher.correct, teacher.rows, rollouts.completion_mask,
        config, step,
    )
    return StepResult(teacher, prompt_ids, teacher_logps, student_logps, lam, shaping)
