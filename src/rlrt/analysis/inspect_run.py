"""``rlrt inspect``: which tokens would RLRT reinforce, and why.

Samples a group of rollouts per problem, verifies them, and runs the training step on them -- the same
``rlrt.step.rlrt_step`` the trainer calls, with an ``RLRTConfig`` built from the flags -- so the contexts, ``log P_T``
and multipliers shown are the ones training would compute at step 0 with these weights (live teacher). Every token
is also scored under student and teacher over the full vocabulary (top candidates, KL) for the page. Writes
``inspect.json`` and a self-contained ``inspect.html``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..algorithms import VARIANTS, group_advantages, log_ratio
from ..config import CPU_RUN_DEFAULTS, SDPO, RLRTConfig, config_field
from ..data.tasks import DEFAULT_EVAL_DATASET
from ..io import refuse_other_arguments, write_json
from ..models import DEFAULT_MODEL
from ..step import Rollouts, StepResult, rlrt_step, teacher_batch_size
from ..teacher import model_logps_fn, render_prompt, score_teacher, tokenize_teacher_prompts
from ..text import did_you_mean
from .asymmetry import token_asymmetry
from .html import render_inspect_html


@dataclass
class InspectArguments:
    """``rlrt inspect`` flags. The shaping and teacher flags are ``RLRTConfig`` fields with training's defaults;
    the sampling ones match ``rlrt train``'s (``num_samples`` is ``num_generations``)."""

    model: str = field(default=DEFAULT_MODEL, metadata={"help": f"Model path or hub id; {DEFAULT_MODEL!r} = embedded."})
    dataset: str = field(default=DEFAULT_EVAL_DATASET, metadata={"help": "Dataset spec, as for `rlrt eval`."})
    limit: int = field(default=2, metadata={"help": "Problems sampled (one group each)."})
    num_samples: int = field(default=CPU_RUN_DEFAULTS["num_generations"],
                             metadata={"help": "Rollouts per problem: the group (training's num_generations)."})
    max_new_tokens: int = field(default=CPU_RUN_DEFAULTS["max_completion_length"],
                                metadata={"help": "Completion length bound (training's max_completion_length)."})
    temperature: float = field(default=CPU_RUN_DEFAULTS["temperature"], metadata={"help": "Sampling temperature."})
    seed: int = field(default=0, metadata={"help": "Sampling seed."})
    shaping: str = config_field("shaping", f"Shaping variant to show: one of {list(VARIANTS)} (not sdpo).")
    shaping_lambda: float = config_field("shaping_lambda")
    shaping_eps_w: float = config_field("shaping_eps_w")
    log_ratio_clamp: float = config_field("log_ratio_clamp")
    teacher_context: str | None = config_field("teacher_context")
    teacher_context_fallback: str | None = config_field("teacher_context_fallback")
    sibling_selection: str = config_field("sibling_selection")
    teacher_prompt_template: str = config_field("teacher_prompt_template")
    max_teacher_prompt_length: int = config_field("max_teacher_prompt_length")
    top_k: int = field(default=5, metadata={"help": "Top candidates of student and teacher shown per position."})
    critical_positions: int = field(default=3, metadata={"help": "Positions of largest KL shown per rollout."})
    output_dir: str = field(default="inspect", metadata={"help": "Where inspect.json and inspect.html go."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow a checkpoint's own model code."})

    def __post_init__(self):
        lowest = {"limit": 1, "num_samples": 2, "max_new_tokens": 1, "top_k": 1, "critical_positions": 0}
        for name, low in lowest.items():
            if getattr(self, name) < low:
                raise ValueError(f"--{name} must be >= {low}; got {getattr(self, name)}.")


def inspect_config(args: InspectArguments) -> RLRTConfig:
    """The ``RLRTConfig`` a training run with these flags would use (one group of ``num_samples`` per problem)."""
    if args.shaping == SDPO:
        raise ValueError(
            "rlrt inspect shows RLRT's token shaping, which --shaping sdpo does not use: choose one of "
            f"{list(VARIANTS)}."
        )
    if args.shaping not in VARIANTS:  # only what inspect accepts (not sdpo, which training also takes)
        raise ValueError(f"Unknown shaping mode {args.shaping!r}{did_you_mean(args.shaping, VARIANTS)}; "
                         f"rlrt inspect takes one of {list(VARIANTS)}.")
    return RLRTConfig(
        output_dir=args.output_dir,
        report_to="none",
        bf16=False,
        seed=args.seed,
        temperature=args.temperature,
        num_generations=args.num_samples,
        per_device_train_batch_size=args.num_samples,
        max_completion_length=args.max_new_tokens,
        shaping=args.shaping,
        shaping_lambda=args.shaping_lambda,
        shaping_eps_w=args.shaping_eps_w,
        log_ratio_clamp=args.log_ratio_clamp,
        teacher_context=args.teacher_context,
        teacher_context_fallback=args.teacher_context_fallback,
        sibling_selection=args.sibling_selection,
        teacher_prompt_template=args.teacher_prompt_template,
        max_teacher_prompt_length=args.max_teacher_prompt_length,
    )


@torch.no_grad()
def response_logits(model, prompt_ids: list[int], completion_ids: list[int], temperature: float = 1.0) -> torch.Tensor:
    """``(T, V)`` float32 logits predicting each completion token after ``prompt_ids``, divided by ``temperature``."""
    ids = torch.tensor([prompt_ids + completion_ids], device=next(model.parameters()).device)
    logits = model(input_ids=ids, logits_to_keep=len(completion_ids) + 1).logits[0]
    return logits[:-1].float() / temperature


def build_rollouts(tokenizer, prompts: list[Any], completion_ids: list[list[int]], rewards: list[float],
                   group_size: int, advantages: torch.Tensor | None = None, references: list[Any] | None = None,
                   answers: list[Any] | None = None) -> Rollouts:
    """A one-process [`Rollouts`] from per-row token lists (right-padded here); GRPO group advantages from
    ``rewards`` unless ``advantages`` is given."""
    width = max((len(c) for c in completion_ids), default=0)
    ids = torch.full((len(completion_ids), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(completion_ids), width), dtype=torch.long)
    for i, c in enumerate(completion_ids):
        ids[i, : len(c)] = torch.tensor(c, dtype=torch.long)
        mask[i, : len(c)] = 1
    reward_tensor = torch.tensor(rewards, dtype=torch.float32)
    if advantages is None:
        advantages = group_advantages(torch.nan_to_num(reward_tensor, nan=0.0), group_size)
    texts = [tokenizer.decode(c, skip_special_tokens=True) for c in completion_ids]
    return Rollouts(prompts=prompts, completion_ids=ids, completion_mask=mask, advantages=advantages,
                    rewards=reward_tensor, completion_texts=texts, group_size=group_size, references=references,
                    answers=answers)


@torch.no_grad()
def inspect_rollouts(model, tokenizer, rollouts: Rollouts, config: RLRTConfig, top_k: int = 5,
                     critical_positions: int = 3) -> tuple[StepResult, list[dict[str, Any]]]:
    """Run the training step on ``rollouts`` and describe every rollout token by token.

    Returns the step's [`StepResult`] and one dict per row: text, verdict, advantage, context, whether it was
    shaped, and per token ``logp_student``, ``logp_teacher``, ``d`` (clamped ``D``), ``kl``, ``multiplier`` (the
    step's) and, at the ``critical_positions`` of largest KL, the top candidates of both models.
    """
    logps_fn = model_logps_fn(model, config.temperature)
    result = rlrt_step(rollouts, config, tokenizer, logps_fn)
    teacher = result.teacher
    # Rows with a context that training does not score (gate, A = 0): scored here for the page only.
    display_rows = teacher.has_context & ~teacher.rows
    display_ids = tokenize_teacher_prompts(
        tokenizer, [rollouts.prompts[i] for i in display_rows.nonzero(as_tuple=True)[0].tolist()],
        [teacher.contexts[i] for i in display_rows.nonzero(as_tuple=True)[0].tolist()],
        config.teacher_prompt_template, config.max_teacher_prompt_length,
    )
    teacher_logps = result.teacher_logps + score_teacher(
        logps_fn, display_ids, rollouts.completion_ids, rollouts.completion_mask, display_rows,
        tokenizer.pad_token_id, teacher_batch_size(config),
    )
    prompt_of = dict(zip(teacher.rows.nonzero(as_tuple=True)[0].tolist(), result.teacher_prompt_ids))
    prompt_of.update(zip(display_rows.nonzero(as_tuple=True)[0].tolist(), display_ids))
    mask = rollouts.completion_mask
    d = log_ratio(result.student_logps, teacher_logps, mask, config.log_ratio_clamp)
    described = []
    for k in range(len(rollouts.prompts)):
        ids = rollouts.completion_ids[k][mask[k].bool()].tolist()
        context = teacher.contexts[k]
        row = {"text": rollouts.completion_texts[rollouts.offset + k], "correct": bool(teacher.correct[k]),
               "advantage": float(rollouts.advantages[k]), "context": context, "has_teacher": context is not None,
               "shaped": bool(result.shaping.shaped[k]), "tokens": []}
        if not ids:
            described.append(row)
            continue
        student_logits = response_logits(model, render_prompt(tokenizer, rollouts.prompts[k]), ids, config.temperature)
        teacher_logits = (response_logits(model, prompt_of[k], ids, config.temperature) if context is not None
                          else student_logits)
        stats = token_asymmetry(student_logits, teacher_logits, torch.tensor(ids), top_k)
        critical = set()
        if context is not None:
            critical = set(stats["kl"].topk(min(critical_positions, len(ids))).indices.tolist())
        for t, token_id in enumerate(ids):
            token = {
                "id": token_id,
                "text": tokenizer.decode([token_id]),
                "logp_student": float(result.student_logps[k, t]),
                "logp_teacher": float(teacher_logps[k, t]) if context is not None else None,
                "d": float(d[k, t]) if context is not None else None,
                "kl": float(stats["kl"][t]) if context is not None else None,
                "multiplier": float(result.shaping.multiplier[k, t]),
                "critical": t in critical,
            }
            if t in critical:
                token["top_student"] = [[tokenizer.decode([int(i)]), float(p)] for i, p in
                                        zip(stats["top_student_ids"][t], stats["top_student_probs"][t])]
                token["top_teacher"] = [[tokenizer.decode([int(i)]), float(p)] for i, p in
                                        zip(stats["top_teacher_ids"][t], stats["top_teacher_probs"][t])]
            row["tokens"].append(token)
        described.append(row)
    return result, described


def write_inspection(args: InspectArguments) -> tuple[Path, Path]:
    """Sample, verify, run the step and write ``inspect.json`` + ``inspect.html`` into ``args.output_dir``."""
    from ..data.registry import load_task, split_spec
    from ..evaluation.sampling import SamplingConfig, sample_completion_ids
    from ..models import load_model, load_tokenizer, resolve_model
    from ..rewards.grading import grade_batch, grading_columns
    from ..rewards.math import MathVerifier

    config = inspect_config(args)
    refuse_other_arguments(Path(args.output_dir) / "inspect.json", asdict(args))  # before any sampling
    path = resolve_model(args.model)
    model, tokenizer = load_model(path, args.trust_remote_code), load_tokenizer(path, args.trust_remote_code)
    name, split = split_spec(args.dataset)
    dataset = load_task(name, split=split, limit=args.limit)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed,
                              batch_size=max(args.num_samples, 8))
    ids = sample_completion_ids(model, tokenizer, dataset["prompt"], args.num_samples, sampling)
    group = args.num_samples
    rows = list(dataset)

    def repeat(values):  # one entry per rollout
        return [v for v in values for _ in range(group)]

    prompts, answers = repeat(dataset["prompt"]), repeat(dataset["answer"])
    references = repeat([row.get("solution") for row in rows])
    completions = [sample for samples in ids for sample in samples]
    # Graded as the accuracy reward grades (reasoning-gym rows by their own scorer): the reward gate's input.
    grades = grade_batch([tokenizer.decode(c, skip_special_tokens=True) for c in completions], answers,
                         verifier=MathVerifier(),
                         **{column: repeat(values) for column, values in grading_columns(dataset).items()})
    rewards = [float(bool(g)) for g in grades]
    rollouts = build_rollouts(tokenizer, prompts, completions, rewards, group, references=references, answers=answers)
    _, described = inspect_rollouts(model, tokenizer, rollouts, config, args.top_k, args.critical_positions)
    problems = [
        {"prompt": row["prompt"], "answer": str(row["answer"]), "rollouts": described[i * group : (i + 1) * group]}
        for i, row in enumerate(rows)
    ]
    payload = {"arguments": asdict(args), "model_path": str(path), "problems": problems}
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "inspect.json", out / "inspect.html"
    write_json(json_path, payload, indent=1)
    html_path.write_text(render_inspect_html(payload))
    return json_path, html_path


COMMAND_ARGUMENTS = (InspectArguments,)


def run_inspect(args: InspectArguments) -> int:
    """``rlrt inspect``: write the page and print where it is; the exit code."""
    json_path, html_path = write_inspection(args)
    print(f"inspector: {html_path}  (data: {json_path})")
    return 0
