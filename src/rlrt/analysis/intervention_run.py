"""``rlrt interventions``: does ``KL(P_S || P_T)`` mark the positions where the outcome is decided?

Samples a group of rollouts per problem, grades them with the run's reward, builds each rollout's teacher context as
training does, scores the per-position ``KL(P_S || P_T)`` (full vocabulary), then probes the top-KL position and
``random_positions`` random ones of every rollout that has a context: ``continuations`` resampled continuations per
position, of the prefix as is and with ``reflection`` appended, each graded. Writes ``interventions.json``,
``interventions.md``, ``influence_vs_kl.png`` and ``interventions.html`` (the inspector's page with the probed
positions marked). Definitions and statistics: ``rlrt.analysis.interventions``.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..config import CPU_RUN_DEFAULTS, RLRTConfig, config_default, config_field
from ..data.registry import parse_dataset_options
from ..data.tasks import DEFAULT_EVAL_DATASET
from ..io import refuse_other_arguments, write_json
from ..models import DEFAULT_MODEL
from ..reliability import guard_reward_function
from ..step import choose_teacher_rows, correct_rollouts, teacher_prompt_ids
from ..teacher import render_prompt
from .asymmetry import token_asymmetry
from .html import render_inspect_html
from .inspect_run import build_rollouts
from .interventions import (
    ARMS,
    choose_positions,
    eligible_positions,
    final_answer_start,
    flip_fraction,
    markdown_table,
    plot_influence,
    rollout_rng,
    summarize,
)

# sampler(sequences, num_samples, seed) -> [sequence][sample] token ids; grader(completion ids) -> correct?
Sampler = Callable[[Sequence[Sequence[int]], int, int], list[list[list[int]]]]
Grader = Callable[[Sequence[Sequence[int]]], list[bool]]


DATASET_OPTION_FLAGS = {"seed": "--seed", "limit": "--limit", "size": "--limit"}


@dataclass
class InterventionArguments:
    """``rlrt interventions`` flags."""

    model: str = field(default=DEFAULT_MODEL, metadata={"help": f"Model path or hub id; {DEFAULT_MODEL!r} = embedded."})
    dataset: str = field(default=DEFAULT_EVAL_DATASET, metadata={"help": "Dataset spec, as for `rlrt eval`."})
    dataset_options: str | None = field(default=None, metadata={"help": "JSON options for the dataset."})
    limit: int = field(default=4, metadata={"help": "Problems sampled."})
    num_samples: int = field(default=CPU_RUN_DEFAULTS["num_generations"],
                             metadata={"help": "Rollouts per problem (the group siblings come from)."})
    max_new_tokens: int = field(default=CPU_RUN_DEFAULTS["max_completion_length"],
                                metadata={"help": "Length bound of the original rollouts."})
    temperature: float = field(default=CPU_RUN_DEFAULTS["temperature"],
                               metadata={"help": "Sampling temperature of rollouts and continuations."})
    seed: int = field(default=0, metadata={"help": "Seeds sampling, position choice and the bootstrap."})
    reward_func: str = field(default="accuracy", metadata={
        "help": "The run's reward deciding correctness: 'accuracy', 'format', or 'module:function' / "
                "'file.py:function'."})
    reward_options: str | None = field(default=None, metadata={
        "help": "JSON MathRewardConfig fields for 'accuracy', as `rlrt train --reward_options` "
                "(e.g. '{\"answer_format\": \"boxed\"}')."})
    correctness_threshold: float = field(default=config_default("correctness_threshold"),
                                         metadata={"help": "Correct when the reward >= this."})
    teacher_context: str = field(default="sibling",
                                 metadata={"help": "'sibling', 'reference' or 'answer'."})
    teacher_context_fallback: str | None = config_field("teacher_context_fallback")
    sibling_selection: str = config_field("sibling_selection")
    teacher_prompt_template: str = config_field("teacher_prompt_template")
    max_teacher_prompt_length: int = config_field("max_teacher_prompt_length")
    random_positions: int = field(default=3, metadata={"help": "R: random positions probed per rollout."})
    continuations: int = field(default=4, metadata={"help": "M: continuations per position and intervention."})
    reflection: str = field(default=" Wait, let me check that again.",
                            metadata={"help": "Text appended to the prefix in the 'reflect' intervention."})
    continuation_max_new_tokens: int | None = field(default=None, metadata={
        "help": "Length bound of each continuation (new tokens after the prefix); default max_new_tokens."})
    max_rollouts: int | None = field(default=None, metadata={"help": "Probe at most this many rollouts."})
    full_probe_rollouts: int = field(default=2, metadata={
        "help": "Rollouts (chosen at random) whose every eligible position is probed, for the rank correlation."})
    batch_size: int = field(default=32, metadata={"help": "Sequences generated together."})
    confidence: float = field(default=0.95, metadata={"help": "Confidence level of the bootstrap intervals."})
    n_resamples: int = field(default=9999, metadata={"help": "Bootstrap resamples."})
    output_dir: str = field(default="interventions", metadata={"help": "Where the results and the page go."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow a checkpoint's own model code."})

    def __post_init__(self):
        if self.random_positions < 1 or self.continuations < 1:
            raise ValueError("random_positions and continuations must be >= 1.")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1); got {self.confidence}.")
        if self.full_probe_rollouts < 0:
            raise ValueError("full_probe_rollouts must be >= 0.")
        parse_dataset_options(self.dataset_options, DATASET_OPTION_FLAGS)


# --------------------------------------------------------------------------------------------- probing


def continuation_prefixes(completion_ids: Sequence[int], positions: Sequence[int],
                          reflection_ids: Sequence[int]) -> list[tuple[int, str, list[int]]]:
    """``(position, arm, prefix)`` for every probed position and intervention: ``y_<t`` (``resample``) and
    ``y_<t + reflection`` (``reflect``)."""
    out = []
    for t in positions:
        prefix = list(completion_ids[:t])
        out.append((t, "resample", prefix))
        out.append((t, "reflect", prefix + list(reflection_ids)))
    return out


def probe_rollout(completion_ids: Sequence[int], original_correct: bool, positions: Sequence[int],
                  reflection_ids: Sequence[int], num_continuations: int, sampler: Callable, grader: Grader,
                  seed: int) -> dict[int, dict[str, Any]]:
    """Influence of each of ``positions`` under both interventions.

    Args:
        completion_ids: ``(T,)`` the original rollout's completion tokens.
        sampler: ``(prefixes, num_samples, seed) -> [prefix][sample]`` continuation ids; a prefix is completion
            tokens only (the caller's sampler puts the prompt in front).
        grader: ``(completions) -> [correct]`` for whole completions (prefix, reflection, continuation).

    Returns:
        ``{t: {"resample": influence, "reflect": influence, "flips": {arm: count}, "continuations": M}}``.
    """
    requests = continuation_prefixes(completion_ids, positions, reflection_ids)
    samples = sampler([prefix for _, _, prefix in requests], num_continuations, seed)
    completions = [prefix + list(c) for (_, _, prefix), conts in zip(requests, samples, strict=True) for c in conts]
    verdicts = grader(completions)
    if len(verdicts) != len(completions):
        raise ValueError(f"The grader returned {len(verdicts)} verdicts for {len(completions)} completions.")
    out: dict[int, dict[str, Any]] = {}
    for i, (t, arm, _) in enumerate(requests):
        chunk = verdicts[i * num_continuations : (i + 1) * num_continuations]
        entry = out.setdefault(t, {"flips": {}, "continuations": num_continuations})
        entry[arm] = flip_fraction(original_correct, chunk)
        entry["flips"][arm] = sum(bool(c) != bool(original_correct) for c in chunk)
    return out


def plan_rollout(kl: Sequence[float], prefix_chars: Sequence[int], text: str, num_random: int, full: bool,
                 rng: random.Random) -> dict[str, Any] | None:
    """Eligible positions, the top-KL and random ones, and the positions to probe (all eligible ones if ``full``);
    ``None`` when the rollout has fewer than two eligible positions."""
    eligible = eligible_positions(prefix_chars, final_answer_start(text))
    chosen = choose_positions(kl, eligible, num_random, rng)
    if chosen is None:
        return None
    top, randoms = chosen
    probed = sorted(eligible) if full else sorted({top, *randoms})
    return {"eligible": eligible, "top": top, "random": randoms, "probed": probed, "full": full}


# ------------------------------------------------------------------------------------------- the model side


def load_reward_function(spec: str, options: str | None = None):
    """The reward named by ``spec`` (``rlrt.rewards.load_reward_funcs``): a built-in (``accuracy``, configured by
    ``options``, JSON ``MathRewardConfig`` fields; ``format``) or ``module:function`` / ``file.py:function``."""
    from ..rewards import MathRewardConfig
    from ..rewards.loading import load_reward_funcs

    config = None if options is None else MathRewardConfig.from_options(options)
    return load_reward_funcs([spec], reward_config=config, flag="--reward_func")[0]


def reward_values(reward_func, tokenizer, row: dict[str, Any], completions: Sequence[Sequence[int]]) -> list:
    """The reward of each completion (token ids) of ``row``'s prompt, called as TRL does: chat completions for a
    chat prompt, the row's other columns as keyword arguments. ``None`` where the reward gives none. Give a
    ``reliability.guard_reward_function``-wrapped function (as ``write_interventions`` does) for training's checks:
    a wrong length, a non-numeric or non-finite value, or an error, each named with the function."""
    prompt = row["prompt"]
    columns = {k: v for k, v in row.items() if k != "prompt"}
    texts = [tokenizer.decode(c, skip_special_tokens=True) for c in completions]
    wrapped = [[{"role": "assistant", "content": t}] if not isinstance(prompt, str) else t for t in texts]
    n = len(texts)
    return list(reward_func(prompts=[prompt] * n, completions=wrapped, **{k: [v] * n for k, v in columns.items()}))


def make_grader(reward_func, threshold: float, tokenizer, row: dict[str, Any]) -> Grader:
    """Correctness of completions of ``row``'s prompt as the training step's gate decides it:
    ``reward >= threshold``, a ``None``/NaN reward is incorrect."""

    def grade(completions: Sequence[Sequence[int]]) -> list[bool]:
        rewards = [math.nan if r is None else float(r) for r in reward_values(reward_func, tokenizer, row, completions)]
        return correct_rollouts(torch.tensor(rewards), threshold).tolist()

    return grade


def analysis_config(args: InterventionArguments) -> RLRTConfig:
    """The ``RLRTConfig`` whose teacher settings the step functions read (contexts, template, gate)."""
    return RLRTConfig(
        output_dir=args.output_dir, report_to="none", bf16=False, seed=args.seed, temperature=args.temperature,
        num_generations=args.num_samples, per_device_train_batch_size=args.num_samples,
        max_completion_length=args.max_new_tokens, correctness_threshold=args.correctness_threshold,
        teacher_context=args.teacher_context, teacher_context_fallback=args.teacher_context_fallback,
        sibling_selection=args.sibling_selection, teacher_prompt_template=args.teacher_prompt_template,
        max_teacher_prompt_length=args.max_teacher_prompt_length,
    )


@torch.no_grad()
def position_kl(model, student_prompt_ids: list[int], teacher_prompt_ids: list[int],
                completion_ids: list[int]) -> torch.Tensor:
    """``(T,)`` ``KL(P_S || P_T)`` over the full vocabulary at each completion position, nats. One rollout at a
    time, so memory is bounded by two ``(T, V)`` logit blocks."""
    device = next(model.parameters()).device

    def logits(prompt_ids):
        ids = torch.tensor([prompt_ids + completion_ids], device=device)
        return model(input_ids=ids, logits_to_keep=len(completion_ids) + 1).logits[0, :-1].float()

    ids = torch.tensor(completion_ids)
    return token_asymmetry(logits(student_prompt_ids), logits(teacher_prompt_ids), ids, top_k=1)["kl"].cpu()


def write_interventions(args: InterventionArguments) -> dict[str, Path]:
    """Run the analysis and write its files into ``args.output_dir``; returns their paths."""
    from tqdm.auto import tqdm

    from ..data.registry import load_task, split_spec
    from ..evaluation.sampling import SamplingConfig, sample_completion_ids, sample_continuation_ids
    from ..models import load_model, load_tokenizer, resolve_model

    refuse_other_arguments(Path(args.output_dir) / "interventions.json", asdict(args))  # before any sampling
    loaded = load_reward_function(args.reward_func, args.reward_options)
    if callable(getattr(loaded, "start", None)):
        loaded.start()
    reward_func = guard_reward_function(loaded, "raise", Counter())  # training's checks, each error one line
    path = resolve_model(args.model)
    model, tokenizer = load_model(path, args.trust_remote_code), load_tokenizer(path, args.trust_remote_code)
    model.eval()
    name, split = split_spec(args.dataset)
    options = parse_dataset_options(args.dataset_options, DATASET_OPTION_FLAGS)
    dataset = load_task(name, split=split, limit=args.limit, seed=args.seed, **options)
    rows = [dict(row) for row in dataset]
    group = args.num_samples
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed,
                              batch_size=args.batch_size)
    print(f"sampling {len(rows)} x {group} rollouts", flush=True)
    ids = sample_completion_ids(model, tokenizer, [r["prompt"] for r in rows], group, sampling)
    flat = [c for per in ids for c in per]
    rewards = [reward for p, row in enumerate(rows) for reward in reward_values(reward_func, tokenizer, row, ids[p])]
    # The contexts and teacher prompts of the training step (rlrt.step), for every rollout that has a context:
    # the analysis probes incorrect rollouts too, which the reward gate keeps from the teacher in training.
    config = analysis_config(args)
    rollouts = build_rollouts(tokenizer, [rows[i // group]["prompt"] for i in range(len(flat))], flat,
                              [math.nan if r is None else float(r) for r in rewards], group,
                              references=[rows[i // group].get("solution") for i in range(len(flat))],
                              answers=[rows[i // group].get("answer") for i in range(len(flat))])
    teacher = choose_teacher_rows(rollouts, config)
    correct, contexts, texts = teacher.correct.tolist(), teacher.contexts, list(rollouts.completion_texts)
    candidates = [i for i in range(len(flat)) if contexts[i] is not None and flat[i]]
    if args.max_rollouts is not None:
        candidates = candidates[: args.max_rollouts]
    selected = torch.zeros(len(flat), dtype=torch.bool)
    selected[candidates] = True
    teacher_prompts = dict(zip(candidates, teacher_prompt_ids(tokenizer, rollouts, replace(teacher, rows=selected),
                                                              config)))
    graders = [make_grader(reward_func, args.correctness_threshold, tokenizer, row) for row in rows]
    full = set(random.Random(args.seed).sample(candidates, min(args.full_probe_rollouts, len(candidates))))
    reflection_ids = tokenizer(args.reflection, add_special_tokens=False)["input_ids"]
    continuation_sampling = SamplingConfig(
        max_new_tokens=args.continuation_max_new_tokens or args.max_new_tokens, temperature=args.temperature,
        seed=args.seed, batch_size=args.batch_size)
    student_prompts = [render_prompt(tokenizer, row["prompt"]) for row in rows]

    results, skipped = [], []
    bar = tqdm(candidates, desc="probing rollouts", unit="rollout")
    for i in bar:
        p, k = divmod(i, group)
        completion = ids[p][k]
        kl = position_kl(model, student_prompts[p], teacher_prompts[i], completion).tolist()
        prefix_chars = [len(tokenizer.decode(completion[:t], skip_special_tokens=True)) for t in range(len(completion))]
        plan = plan_rollout(kl, prefix_chars, texts[i], args.random_positions, i in full, rollout_rng(args.seed, p, k))
        if plan is None:
            skipped.append({"problem": p, "rollout": k, "reason": "fewer than two eligible positions"})
            continue

        def sampler(prefixes, num_samples, seed, _prompt=student_prompts[p]):
            cfg = SamplingConfig(**{**continuation_sampling.to_dict(), "seed": seed})
            return sample_continuation_ids(model, tokenizer, [_prompt + x for x in prefixes], num_samples, cfg)

        probes = probe_rollout(completion, correct[i], plan["probed"], reflection_ids, args.continuations, sampler,
                               graders[p], seed=(args.seed * 1_000_003 + i) % (2**31))
        for t, entry in probes.items():
            entry["kl"] = kl[t]
        results.append({"problem": p, "rollout": k, "correct": correct[i], "text": texts[i], "context": contexts[i],
                        "completion_ids": completion, "kl": kl, **plan, "probes": probes})
        bar.set_postfix(probed=len(results))
    if not results:
        raise ValueError("No rollout could be probed (none had a teacher context and two eligible positions): "
                         "raise --limit or --num_samples, or use --teacher_context answer.")
    summary = summarize(results, args.confidence, args.n_resamples, args.seed)
    payload = {"arguments": asdict(args), "model_path": str(path), "reflection_ids": reflection_ids,
               "rollouts_sampled": len(texts), "rollouts_with_context": sum(c is not None for c in contexts),
               "skipped": skipped, "summary": summary, "rollouts": results}
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "interventions.json", "markdown": out / "interventions.md",
             "plot": out / "influence_vs_kl.png", "html": out / "interventions.html"}
    write_json(paths["json"], payload, indent=1)
    paths["markdown"].write_text(f"# Interventions: {args.model} on {args.dataset}\n\n" + markdown_table(summary))
    plot_influence(results, paths["plot"])
    paths["html"].write_text(render_inspect_html(inspector_payload(payload, rows, tokenizer)))
    return paths


def inspector_payload(payload: dict[str, Any], rows: list[dict[str, Any]], tokenizer) -> dict[str, Any]:
    """The probed rollouts in the inspector page's format, each token with its KL and, where probed, its
    influence under both interventions (``probe``), plus the summary table."""
    problems: dict[int, dict[str, Any]] = {}
    for r in payload["rollouts"]:
        problem = problems.setdefault(r["problem"], {"prompt": rows[r["problem"]]["prompt"],
                                                     "answer": str(rows[r["problem"]].get("answer", "")),
                                                     "rollouts": []})
        tokens = []
        for t, token_id in enumerate(r["completion_ids"]):
            token = {"id": token_id, "text": tokenizer.decode([token_id]), "kl": r["kl"][t], "d": None,
                     "critical": False, "eligible": t in r["eligible"]}
            if t in r["probes"]:
                probe = r["probes"][t]
                token["probe"] = {"role": "top" if t == r["top"] else ("random" if t in r["random"] else "other"),
                                  **{arm: probe[arm] for arm in ARMS}}
            tokens.append(token)
        note = (f"top-KL position {r['top']}, random {r['random']}"
                + (", every eligible position probed" if r["full"] else "") + "; underlined: probed")
        problem["rollouts"].append({"text": r["text"], "correct": r["correct"], "context": r["context"],
                                    "has_teacher": True, "note": note, "tokens": tokens})
    args = payload["arguments"]
    settings = (f"context={args['teacher_context']}  R={args['random_positions']}  M={args['continuations']}  "
                f"reflection={args['reflection']!r}  samples={args['num_samples']}  temperature={args['temperature']}  "
                f"reward={args['reward_func']} {args['reward_options'] or ''}  seed={args['seed']}")
    return {"arguments": args, "title": f"rlrt interventions: {args['model']} on {args['dataset']}",
            "settings": settings, "problems": [problems[p] for p in sorted(problems)],
            "interventions": {"table": markdown_table(payload["summary"])}}


COMMAND_ARGUMENTS = (InterventionArguments,)


def run_interventions(args: InterventionArguments) -> int:
    """``rlrt interventions``: run the analysis, print the table and where the files are; the exit code."""
    paths = write_interventions(args)
    print(paths["markdown"].read_text())
    print("files: " + "  ".join(str(p) for p in paths.values()))
    return 0
