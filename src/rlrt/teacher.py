"""The privileged teacher: the same model with a correct solution in its prompt (``docs/method.md`` section 4).

Four separable jobs, each testable on its own (``rlrt.step`` strings them together for a batch):

* **context** -- ``choose_contexts`` picks, for each rollout, the privileged text: a *different* correct rollout
  of the same prompt (``sibling``), the dataset's reference solution (``reference``) or the gold answer
  (``answer``);
* **prompt** -- ``build_teacher_prompt`` puts it in the user turn through the template, by literal
  substitution (LaTeX is full of ``{}``), and ``tokenize_teacher_prompts`` applies the chat template and the
  length bound;
* **weights** -- ``TeacherWeights`` makes the forward pass run under the live, frozen or EMA parameters;
* **scoring** -- ``score_teacher`` runs the no-grad forward over the student's own tokens, in chunks, for the
  rows that need it only.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from .text import completion_text  # noqa: F401  (re-exported: part of the teacher's API)

Prompt = str | list[dict[str, Any]]
LogpsFn = Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor]

DEFAULT_TEACHER_TEMPLATE = (
    "{prompt}\nCorrect solution:\n\n{solution}\n\nCorrectly solve the original question.\n"
)
"""The teacher's user turn (SDPO's form); ``{prompt}`` and ``{solution}`` are filled by ``fill_template``."""

_PLACEHOLDER = re.compile(r"\{(prompt|solution)\}")


# ----------------------------------------------------------------------------------------------- context


def answer_as_solution(answer: Any) -> str:
    """The context text used when only the gold final answer is given to the teacher; of a list answer ("any of
    these is right"), the first."""
    if isinstance(answer, (list, tuple)):
        answer = answer[0]
    return "The final answer is \\boxed{" + str(answer) + "}."


def _row_rng(seed: int, step: int, row: int) -> random.Random:
    # One generator per (seed, step, global row): the choice does not depend on how rows are split over processes.
    return random.Random((seed * 1_000_003 + step) * 1_000_003 + row)


def choose_contexts(
    rows: Sequence[int],
    group_size: int,
    correct: Sequence[bool],
    completions: Sequence[str],
    source: str,
    references: Sequence[str | None] | None = None,
    answers: Sequence[Any] | None = None,
    fallback: str | None = None,
    selection: str = "random",
    seed: int = 0,
    step: int = 0,
) -> list[str | None]:
    """Privileged context for each of ``rows``, or ``None`` where there is none.

    Args:
        rows: global indices of the rollouts to serve (a process passes its own slice).
        group_size: ``G``; rollouts ``g*G .. g*G+G-1`` share a prompt.
        correct, completions: for *every* rollout of the global batch (siblings may live on other processes).
        source: ``"sibling"``, ``"reference"`` or ``"answer"``.
        references, answers: aligned with ``rows`` (the rows' own dataset columns); needed by those sources.
        fallback: for ``"sibling"``, what a rollout without a correct sibling uses (``"reference"``,
            ``"answer"`` or ``None``).
        selection: among several correct siblings, ``"random"`` (seeded per row and step), ``"first"``,
            ``"shortest"``.

    A sibling is never the rollout itself.
    """
    contexts: list[str | None] = []
    for position, row in enumerate(rows):
        context = None
        if source == "sibling":
            start = (row // group_size) * group_size
            siblings = [j for j in range(start, start + group_size) if j != row and correct[j]]
            if siblings:
                if selection == "first":
                    chosen = siblings[0]
                elif selection == "shortest":
                    chosen = min(siblings, key=lambda j: (len(completions[j]), j))
                else:
                    chosen = _row_rng(seed, step, row).choice(siblings)
                context = completions[chosen]
            elif fallback is not None:
                context = _dataset_context(fallback, references, answers, position)
        else:
            context = _dataset_context(source, references, answers, position)
        contexts.append(context if context else None)
    return contexts


def _dataset_context(source: str, references, answers, position: int) -> str | None:
    if source == "reference":
        value = references[position] if references is not None else None
        return str(value) if value not in (None, "") else None
    if source == "answer":
        value = answers[position] if answers is not None else None
        return answer_as_solution(value) if value not in (None, "") else None
    raise ValueError(f"Unknown teacher context source {source!r}; choose 'sibling', 'reference' or 'answer'.")


# ------------------------------------------------------------------------------------------------ prompt


def fill_template(template: str, prompt: str, solution: str) -> str:
    """Substitute ``{prompt}`` and ``{solution}`` in ``template`` literally, in one pass.

    Unlike ``str.format``, braces in the inserted text (``\\frac{1}{2}``) or other braces in the template are
    left alone, and a ``{solution}`` inside the prompt text is never substituted again.
    """
    values = {"prompt": prompt, "solution": solution}
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def build_teacher_prompt(prompt: Prompt, solution: str, template: str) -> Prompt:
    """The student's prompt with its last user turn rewritten through ``template``.

    Conversational prompts keep their system and earlier turns; a plain-text prompt becomes the filled text.
    """
    if isinstance(prompt, str):
        return fill_template(template, prompt, solution)
    last_user = max((i for i, m in enumerate(prompt) if m.get("role") == "user"), default=None)
    if last_user is None:
        raise ValueError("A conversational prompt needs a user message to build the teacher prompt from.")
    content = prompt[last_user]["content"]
    if not isinstance(content, str):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    rewritten = dict(prompt[last_user], content=fill_template(template, content, solution))
    return [*prompt[:last_user], rewritten, *prompt[last_user + 1 :]]


def render_prompt(tokenizer, prompt: Prompt, chat_template_kwargs: dict | None = None) -> list[int]:
    """Token ids of a prompt as GRPO feeds it: chat template with the generation prompt, or plain text."""
    if isinstance(prompt, str):
        return tokenizer(prompt, add_special_tokens=False)["input_ids"]
    text = tokenizer.apply_chat_template(
        prompt, tokenize=False, add_generation_prompt=True, **(chat_template_kwargs or {})
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def tokenize_teacher_prompts(
    tokenizer,
    prompts: Sequence[Prompt],
    solutions: Sequence[str],
    template: str,
    max_length: int,
    chat_template_kwargs: dict | None = None,
) -> list[list[int]]:
    """Token ids of each teacher prompt, at most ``max_length`` long.

    Over-long prompts are fitted by cutting the *solution* text (keeping its beginning), so the question, the
    instruction and the chat markup stay intact. A prompt that does not fit even with an empty solution is a
    configuration error.
    """
    token_ids = []
    for prompt, solution in zip(prompts, solutions, strict=True):
        ids = render_prompt(tokenizer, build_teacher_prompt(prompt, solution, template), chat_template_kwargs)
        if len(ids) > max_length:
            solution_ids = tokenizer(solution, add_special_tokens=False)["input_ids"]
            budget = len(solution_ids) - (len(ids) - max_length)
            for _ in range(4):  # re-tokenising at the cut can shift a token or two; shrink until it fits
                cut = tokenizer.decode(solution_ids[: max(budget, 0)], skip_special_tokens=True)
                ids = render_prompt(tokenizer, build_teacher_prompt(prompt, cut, template), chat_template_kwargs)
                if len(ids) <= max_length or budget <= 0:
                    break
                budget -= len(ids) - max_length + 1
            if len(ids) > max_length:
                raise ValueError(
                    f"The teacher prompt needs {len(ids)} tokens without its context, more than "
                    f"max_teacher_prompt_length={max_length}. Raise max_teacher_prompt_length or shorten the prompt."
                )
        token_ids.append(ids)
    return token_ids


# ----------------------------------------------------------------------------------------------- weights


class TeacherWeights:
    """Which parameters the teacher's forward pass runs under.

    * ``live``: the current policy, nothing kept.
    * ``frozen``: the initial model. With a PEFT model the adapters are disabled; otherwise a snapshot of the
      trainable parameters is swapped in for the forward pass (no second model object).
    * ``ema``: a snapshot of the trainable parameters updated after each optimizer step as
      ``theta_T <- (1 - tau) * theta_T + tau * theta``, swapped in for the forward pass.

    Swapping only the *trainable* parameters keeps the cost of LoRA small: the base weights are shared.
    """

    def __init__(self, model: torch.nn.Module, mode: str = "live", ema_rate: float = 0.05):
        self.mode = mode
        self.ema_rate = ema_rate
        self.uses_adapters = mode == "frozen" and hasattr(model, "disable_adapter") and hasattr(model, "peft_config")
        self.snapshot: dict[str, torch.Tensor] = {}
        if mode in ("frozen", "ema") and not self.uses_adapters:
            self.snapshot = {
                name: param.detach().clone() for name, param in model.named_parameters() if param.requires_grad
            }

    @contextlib.contextmanager
    def apply(self, model: torch.nn.Module) -> Iterator[None]:
        """Run the body with the teacher's parameters in ``model``; the policy's are restored afterwards."""
        if self.mode == "live":
            yield
            return
        if self.uses_adapters:
            with model.disable_adapter():
                yield
            return
        saved = {}
        try:
            for name, param in model.named_parameters():
                if name in self.snapshot:
                    saved[name] = param.data
                    param.data = self.snapshot[name]
            yield
        finally:
            for name, param in model.named_parameters():
                if name in saved:
                    param.data = saved[name]

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """After an optimizer step: ``theta_T <- (1 - tau) * theta_T + tau * theta`` (EMA only)."""
        if self.mode != "ema":
            return
        for name, param in model.named_parameters():
            if name in self.snapshot:
                self.snapshot[name].lerp_(param.detach().to(self.snapshot[name].dtype), self.ema_rate)

    def state_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "ema_rate": self.ema_rate, "snapshot": self.snapshot}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("mode") != self.mode:
            raise ValueError(
                f"The checkpoint's teacher_weights={state.get('mode')!r} differs from this run's {self.mode!r}; "
                "resume with the same teacher_weights."
            )
        for name, tensor in state["snapshot"].items():
            if name in self.snapshot:
                self.snapshot[name].copy_(tensor)


# ----------------------------------------------------------------------------------------------- scoring


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, mask)``, both ``(N, max_len)``, sequences right-aligned (GRPO's prompt layout)."""
    width = max((len(s) for s in sequences), default=0)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        if seq:
            ids[i, width - len(seq) :] = torch.as_tensor(seq, dtype=torch.long)
            mask[i, width - len(seq) :] = 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def score_teacher(
    logps_fn: LogpsFn,
    teacher_prompt_ids: Sequence[Sequence[int]],
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    rows: torch.Tensor,
    pad_id: int,
    batch_size: int,
) -> torch.Tensor:
    """``log P_T`` of the student's tokens under the teacher prompts, for ``rows`` only.

    Args:
        logps_fn: ``(input_ids, attention_mask, logits_to_keep, batch_size) -> (N, logits_to_keep)`` per-token
            log-probs of the last ``logits_to_keep`` tokens, chunked by ``batch_size`` rows (TRL's
            ``_get_per_token_logps_and_entropies`` fits).
        teacher_prompt_ids: one token list per selected row, in the order of ``rows.nonzero()``.
        completion_ids, completion_mask: ``(B, T)`` the student's completion, right-padded.
        rows: ``(B,)`` bool, rows to score.

    Returns:
        ``(B, T)`` float32, zeros on rows not scored and on padding.
    """
    batch, width = completion_ids.shape
    out = torch.zeros((batch, width), dtype=torch.float32, device=completion_ids.device)
    index = rows.nonzero(as_tuple=True)[0]
    if index.numel() == 0:
        return out
    if len(teacher_prompt_ids) != index.numel():
        raise ValueError(f"{len(teacher_prompt_ids)} teacher prompts for {index.numel()} selected rows")
    prompt_ids, prompt_mask = left_pad(teacher_prompt_ids, pad_id, device=completion_ids.device)
    input_ids = torch.cat([prompt_ids, completion_ids[index]], dim=1)
    attention_mask = torch.cat([prompt_mask, completion_mask[index].to(prompt_mask.dtype)], dim=1)
    logps = logps_fn(input_ids, attention_mask, width, batch_size).float()
    out[index] = logps * completion_mask[index].to(logps.dtype)
    return out


def model_logps_fn(model: torch.nn.Module, temperature: float = 1.0) -> LogpsFn:
    """A ``LogpsFn`` for a plain causal LM (outside a trainer): chunked, full logits for the kept positions only."""
    from trl.trainer.utils import selective_log_softmax

    def logps_fn(input_ids, attention_mask, logits_to_keep, batch_size):
        chunks = []
        for start in range(0, input_ids.size(0), batch_size):
            ids, mask = input_ids[start : start + batch_size], attention_mask[start : start + batch_size]
            logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=logits_to_keep + 1).logits
            logits = logits[:, :-1, :].float() / temperature
            chunks.append(selective_log_softmax(logits, ids[:, -logits_to_keep:]))
        return torch.cat(chunks, dim=0)

    return logps_fn
