"""The built-in ``chain`` task: several chained integer operations, sized not to saturate the embedded model.

A problem is ``What is 4 + 5 - 3?`` (``steps`` operations on ``steps + 1`` operands in ``[1, max_operand]``,
evaluated left to right; a ``*`` after ``+``/``-`` gets parentheses, so the written order is the evaluation
order), the reference solution does one operation per sentence (``4 + 5 = 9. 9 - 3 = 6. The answer is
\\boxed{6}.``), and every intermediate result stays >= 0. The prompt is the built-in task's format (system prompt
plus one worked example, itself a chain of the same length, never drawn into a split).

Calibration (``benchmarks/chain_task_accuracy.py``, ``benchmarks/results/chain_task_accuracy.json``; embedded
SmolLM2-135M, temperature 1.0, 48 new tokens, graded as ``rlrt eval`` grades): sampled accuracy on 16 training
problems x 4 samples was 15.6 % at the default ``steps=3, max_operand=4`` and 10.9 % at ``steps=2,
max_operand=5``; ``steps=2, max_operand=9`` gave 4.2 % (24 x 4, 64 tokens) and 3.1 % with ``+`` only (16 x 4).
Graded as after the grading audit, the default's 64 samples score 9.4 % (cut-off completions no longer count).
Held-out, the first 16 of 128 problems x 32 samples (the second experiment's start evaluation): avg@32 9.0 %,
strata never 2, <60 % 14, >=60 % 0, at most 8 of 32 correct per problem: the ``>=60%`` stratum is likely to stay
nearly empty at this difficulty (docs/performance.md).
Answers are small (0-14 on the held-out split, 0 the most frequent at 15.6 %), so a fixed guess scores about as
much as the starting model and pass@k at large k partly measures guessing; a harder setting (``max_operand``
9 or more) narrows that at the price of a lower starting accuracy. That GRPO stays under 70 % held-out in a
40-60-step run is an expectation, not a measurement: on the addition task GRPO rose from 25.8 % to 77.1 % held-out
avg@4 in 60 steps (docs/reproduction.md); here it starts near 9 %, with three operations to get right, not one.

Splits: problems are drawn with a fixed seed derived from the options, de-duplicated, and the first
``HELD_OUT_SIZE`` form the held-out split (fixed order), the next up to ``TRAIN_SIZE`` the training split
(shuffled by ``seed``), so the two never overlap. reasoning-gym's ``chain_sum`` (``rg:chain_sum``) asks a similar
question, but has no worked solution (needed by ``teacher_context="reference"``) and no fixed held-out split.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from datasets import Dataset

from ..text import check_option_keys
from .formatting import PromptFormat
from .loaders import build_dataset

CHAIN_TASK = "chain"
SPLIT_SEED = 20261130
HELD_OUT_SIZE = 128
TRAIN_SIZE = 2000
SYSTEM_PROMPT = "You are a careful math assistant. Finish every reply with: The answer is \\boxed{N}."
OPERATIONS = "+-*"


@dataclass(frozen=True)
class ChainOptions:
    """The difficulty knob of the ``chain`` task (``--dataset_options '{"steps": 3}'``).

    Attributes:
        steps: operations per problem, 1-8 (``steps + 1`` operands); with ``min_steps`` the most a problem has.
        min_steps: when set below ``steps``, each problem draws its number of operations uniformly from
            ``[min_steps, steps]``: a held-out set of mixed difficulty, so every difficulty stratum has problems.
        max_operand: operands are drawn from ``[1, max_operand]``, 2-999.
        operations: which of ``+``, ``-``, ``*`` may appear, e.g. ``"+-"``; only these appear. ``"-"`` alone is
            refused: a chain that reaches 0 cannot go on (operands are at least 1 and no result goes below 0).
    """

    steps: int = 3
    max_operand: int = 4
    operations: str = "+-"
    min_steps: int | None = None

    def __post_init__(self):
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 1 <= self.steps <= 8:
            raise ValueError(f"chain task option 'steps' must be an integer from 1 to 8; got {self.steps!r}.")
        if self.min_steps is not None and (isinstance(self.min_steps, bool) or not isinstance(self.min_steps, int)
                                           or not 1 <= self.min_steps <= self.steps):
            raise ValueError(f"chain task option 'min_steps' must be an integer from 1 to steps ({self.steps}); got "
                             f"{self.min_steps!r}.")
        if (isinstance(self.max_operand, bool) or not isinstance(self.max_operand, int)
                or not 2 <= self.max_operand <= 999):
            raise ValueError(
                f"chain task option 'max_operand' must be an integer from 2 to 999; got {self.max_operand!r}.")
        if (not isinstance(self.operations, str) or not self.operations
                or set(self.operations) - set(OPERATIONS) or len(set(self.operations)) != len(self.operations)):
            raise ValueError(
                f"chain task option 'operations' must be a non-empty string of distinct characters from "
                f"{OPERATIONS!r} (e.g. '+-'); got {self.operations!r}.")
        if self.operations == "-":
            raise ValueError("chain task option 'operations' cannot be '-' alone: a chain that reaches 0 cannot go on "
                             "(operands are at least 1, no result goes below 0); add '+' or '*' (e.g. '+-').")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> ChainOptions:
        """Options from ``load_task`` kwargs; an unknown name raises ``ValueError`` listing the known ones."""
        check_option_keys(options, [f.name for f in dataclasses.fields(cls)], "chain task (--dataset_options)")
        return cls(**options)


@dataclass(frozen=True)
class ChainProblem:
    """``operands[0] ops[0] operands[1] ...`` evaluated left to right."""

    operands: tuple[int, ...]
    ops: tuple[str, ...]

    def question(self) -> str:
        text = str(self.operands[0])
        for index, (op, operand) in enumerate(zip(self.ops, self.operands[1:])):
            if op == "*" and index > 0 and self.ops[index - 1] != "*":
                text = f"({text})"
            text = f"{text} {op} {operand}"
        return f"What is {text}?"

    def intermediates(self) -> list[int]:
        """The running value after each operation (the last one is the answer)."""
        values, current = [], self.operands[0]
        for op, operand in zip(self.ops, self.operands[1:]):
            current = current + operand if op == "+" else current - operand if op == "-" else current * operand
            values.append(current)
        return values

    def answer(self) -> int:
        return self.intermediates()[-1]

    def solution(self) -> str:
        sentences, current = [], self.operands[0]
        for op, operand, value in zip(self.ops, self.operands[1:], self.intermediates()):
            sentences.append(f"{current} {op} {operand} = {value}.")
            current = value
        return " ".join(sentences) + f" The answer is \\boxed{{{current}}}."


def _draw(rng: random.Random, options: ChainOptions, steps: int | None = None) -> ChainProblem:
    """One problem of ``steps`` operations (``options.steps`` by default, or drawn from ``[min_steps, steps]``);
    a ``-`` that would go below zero takes an operand no larger than the running value, and a ``-`` at 0 becomes
    ``+`` (or ``*`` where ``+`` is not among the operations; ``ChainOptions`` refuses ``-`` alone)."""
    if steps is None:
        mixed = options.min_steps is not None and options.min_steps < options.steps
        steps = rng.randint(options.min_steps, options.steps) if mixed else options.steps
    operands, ops = [rng.randint(1, options.max_operand)], []
    current = operands[0]
    for _ in range(steps):
        op = rng.choice(options.operations)
        if op == "-" and current == 0:
            op = "+" if "+" in options.operations else "*"
        high = min(options.max_operand, current) if op == "-" else options.max_operand
        operand = rng.randint(1, high)
        current = current + operand if op == "+" else current - operand if op == "-" else current * operand
        operands.append(operand)
        ops.append(op)
    return ChainProblem(tuple(operands), tuple(ops))


Problems = tuple[ChainProblem, tuple[ChainProblem, ...], tuple[ChainProblem, ...]]  # example, held-out, train


@lru_cache(maxsize=8)
def chain_problems(options: ChainOptions) -> Problems:
    """``(worked example, held-out problems, training problems)``, all distinct, fixed for ``options``.

    Raises ``ValueError`` when the options allow too few distinct problems for a held-out split and a training
    split at least as large.
    """
    seed = f"{SPLIT_SEED}:{options.steps}:{options.max_operand}:{options.operations}"
    if options.min_steps is not None and options.min_steps < options.steps:
        seed += f":{options.min_steps}"  # fixed-length sets keep the problems they had before min_steps existed
    rng = random.Random(seed)
    wanted = 1 + HELD_OUT_SIZE + TRAIN_SIZE
    seen: dict[str, ChainProblem] = {}
    example = _draw(rng, options, steps=options.steps)  # the worked example shows the longest chain
    seen[example.question()] = example
    for _ in range(20 * wanted):
        problem = _draw(rng, options)
        seen.setdefault(problem.question(), problem)
        if len(seen) == wanted:
            break
    problems = list(seen.values())
    if len(problems) < 1 + 2 * HELD_OUT_SIZE:
        raise ValueError(
            f"chain task options {options} give only {len(problems)} distinct problems (need at least "
            f"{1 + 2 * HELD_OUT_SIZE}); raise 'steps' or 'max_operand'.")
    return problems[0], tuple(problems[1 : 1 + HELD_OUT_SIZE]), tuple(problems[1 + HELD_OUT_SIZE :])


def chain_format(example: ChainProblem) -> PromptFormat:
    """The built-in prompt format with ``example`` as the worked example."""
    return PromptFormat(instruction="", system_prompt=SYSTEM_PROMPT,
                        examples=((example.question(), example.solution()),))


def chain_task(split: str = "train", limit: int | None = None, seed: int = 0, **options: Any) -> Dataset:
    """The ``chain`` task: ``split`` ``"train"`` (up to 2000 problems) or ``"test"`` (128 held-out problems).

    ``options`` are ``ChainOptions`` fields (``steps``, ``max_operand``, ``operations``). ``seed`` shuffles the
    training split only (the held-out split is fixed). Raises ``ValueError`` on an unknown split or a bad option.
    """
    parsed = ChainOptions.from_options(options)
    if split not in ("train", "test"):
        raise ValueError(f"Unknown split {split!r} of the chain task; use 'train' or 'test'.")
    example, held_out, train = chain_problems(parsed)
    chosen = list(held_out if split == "test" else train)
    if split == "train":
        random.Random(seed).shuffle(chosen)
    if limit is not None:
        chosen = chosen[:limit]
    records = [{"question": p.question(), "answer": str(p.answer()), "solution": p.solution()} for p in chosen]
    dataset, _ = build_dataset(records, fmt=chain_format(example), source=f"{CHAIN_TASK}:{split}")
    return dataset
