"""``rlrt inspect``: which tokens would RLRT reinforce, and why. Samples a group of rollouts per problem,
verifies them, builds each rollout's teacher context exactly as training does, and scores every token under
student and teacher. Writes ``inspect.json`` and a self-contained ``inspect.html``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..algorithms import group_advantages, rows_needing_teacher, token_multiplier, token_weights
from ..algorithms.shaping import get_variant
from ..config import CPU_RUN_DEFAULTS, config_default
from ..data.tasks import DEFAULT_EVAL_DATASET
from ..models import DEFAULT_MODEL
from ..teacher import choose_contexts, render_prompt, tokenize_teacher_prompts
from .asymmetry import token_asymmetry
from .html import render_inspect_html


@dataclass
class InspectArguments:
    """``rlrt inspect`` flags. The shaping and teacher flags are ``RLRTConfig`` fields with training's defaults;
    the sampling ones match ``rlrt train``'s (``num_samples`` is ``num_generations``)."""

    model: str = DEFAULT_MODEL
    dataset: str = DEFAULT_EVAL_DATASET
    limit: int = 2
    num_samples: int = CPU_RUN_DEFAULTS["num_generations"]
    max_new_tokens: int = CPU_RUN_DEFAULTS["max_completion_length"]
    temperature: float = CPU_RUN_DEFAULTS["temperature"]
    seed: int = 0
    shaping: str = config_default("shaping")
    shaping_lambda: float = config_default("shaping_lambda")
    shaping_eps_w: float = config_default("shaping_eps_w")
    teacher_context: str = "sibling"
    teacher_prompt_template: str = config_default("teacher_prompt_template")
    max_teacher_prompt_length: int = config_default("max_teacher_prompt_length")
    top_k: int = 5
    critical_positions: int = 3
    output_dir: str = "inspect"
    trust_remote_code: bool = False


@torch.no_grad()
def response_logits(model, prompt_ids: list[int], completion_ids: list[int]) -> torch.Tensor:
    """``(T, V)`` logits predicting each completion token after ``prompt_ids``."""
    ids = torch.tensor([prompt_ids + completion_ids], device=next(model.parameters()).device)
    logits = model(input_ids=ids, logits_to_keep=len(completion_ids) + 1).logits[0]
    return logits[:-1].float()


def inspect_group(model, tokenizer, prompt, answer, solution, completion_ids: list[list[int]],
                  args: InspectArguments, verifier, columns: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the page shows for one problem's group of rollouts; ``columns`` are the row's other grading
    columns (``rlrt.rewards.grading_columns``), so a row is graded as the accuracy reward grades it."""
    from ..rewards.grading import grade_batch

    texts = [tokenizer.decode(c, skip_special_tokens=True) for c in completion_ids]
    verdicts = grade_batch(texts, [answer] * len(texts), verifier=verifier,
                           **{name: [value] * len(texts) for name, value in (columns or {}).items()})
    correct = [bool(v) for v in verdicts]
    group = len(texts)
    advantages = group_advantages(torch.tensor([float(c) for c in correct]), group)
    contexts = choose_contexts(range(group), group, correct, texts, args.teacher_context,
                               references=[solution] * group, answers=[answer] * group, seed=args.seed, step=0)
    has_context = torch.tensor([c is not None for c in contexts])
    applies = rows_needing_teacher(advantages, torch.tensor(correct), has_context, args.shaping)
    direction = get_variant(args.shaping).direction
    student_prompt = render_prompt(tokenizer, prompt)
    rollouts = []
    for k, (ids, text) in enumerate(zip(completion_ids, texts)):
        rollout = {"text": text, "correct": correct[k], "advantage": float(advantages[k]), "context": contexts[k],
                   "has_teacher": contexts[k] is not None, "shaped": bool(applies[k]), "tokens": []}
        if not ids:
            rollouts.append(rollout)
            continue
        student_logits = response_logits(model, student_prompt, ids)
        if contexts[k] is None:
            teacher_logits = student_logits
        else:
            teacher_prompt = tokenize_teacher_prompts(tokenizer, [prompt], [contexts[k]], args.teacher_prompt_template,
                                                      args.max_teacher_prompt_length)[0]
            teacher_logits = response_logits(model, teacher_prompt, ids)
        stats = token_asymmetry(student_logits, teacher_logits, torch.tensor(ids), args.top_k)
        weights = token_weights(stats["log_ratio"].unsqueeze(0), advantages[k : k + 1], direction or 1)[0]
        multiplier = token_multiplier(weights, args.shaping_lambda, args.shaping_eps_w)
        if not applies[k]:
            multiplier = torch.ones_like(multiplier)
        critical = set()
        if contexts[k] is not None:
            critical = set(stats["kl"].topk(min(args.critical_positions, len(ids))).indices.tolist())
        for t, token_id in enumerate(ids):
            token = {
                "id": token_id,
                "text": tokenizer.decode([token_id]),
                "logp_student": float(stats["logp_student"][t]),
                "logp_teacher": float(stats["logp_teacher"][t]) if contexts[k] is not None else None,
                "d": float(stats["log_ratio"][t]) if contexts[k] is not None else None,
                "kl": float(stats["kl"][t]) if contexts[k] is not None else None,
                "multiplier": float(multiplier[t]),
                "critical": t in critical,
            }
            if t in critical:
                token["top_student"] = [[tokenizer.decode([int(i)]), float(p)] for i, p in
                                        zip(stats["top_student_ids"][t], stats["top_student_probs"][t])]
                token["top_teacher"] = [[tokenizer.decode([int(i)]), float(p)] for i, p in
                                        zip(stats["top_teacher_ids"][t], stats["top_teacher_probs"][t])]
            rollout["tokens"].append(token)
        rollouts.append(rollout)
    return {"prompt": prompt, "answer": str(answer), "rollouts": rollouts}


def write_inspection(args: InspectArguments) -> tuple[Path, Path]:
    """Sample, verify, score and write ``inspect.json`` + ``inspect.html`` into ``args.output_dir``."""
    from ..data.registry import load_task
    from ..evaluation.sampling import SamplingConfig, sample_completion_ids
    from ..models import load_model, load_tokenizer, resolve_model
    from ..rewards.grading import grading_columns
    from ..rewards.math import MathVerifier
    from ..data.registry import split_spec

    get_variant(args.shaping)
    path = resolve_model(args.model)
    model, tokenizer = load_model(path, args.trust_remote_code), load_tokenizer(path, args.trust_remote_code)
    name, split = split_spec(args.dataset)
    dataset = load_task(name, split=split, limit=args.limit)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed,
                              batch_size=max(args.num_samples, 8))
    ids = sample_completion_ids(model, tokenizer, dataset["prompt"], args.num_samples, sampling)
    verifier = MathVerifier()
    columns = grading_columns(dataset)
    problems = [inspect_group(model, tokenizer, row["prompt"], row["answer"], row.get("solution") or "", ids[i], args,
                              verifier, {name: values[i] for name, values in columns.items()})
                for i, row in enumerate(dataset)]
    payload = {"arguments": asdict(args), "model_path": str(path), "problems": problems}
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "inspect.json", out / "inspect.html"
    json_path.write_text(json.dumps(payload, indent=1))
    html_path.write_text(render_inspect_html(payload))
    return json_path, html_path


COMMAND_ARGUMENTS = (InspectArguments,)


def run_inspect(args: InspectArguments) -> int:
    """``rlrt inspect``: write the page and print where it is; the exit code."""
    json_path, html_path = write_inspection(args)
    print(f"inspector: {html_path}  (data: {json_path})")
    return 0
