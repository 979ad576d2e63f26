"""The built-in default task, sized for the embedded SmolLM2-135M-Instruct.

Two-number addition, ``a + b`` with ``a, b`` in ``[2, 19]``, asked with a system prompt and one worked example
so that the small model answers in the ``\\boxed{}`` format. At temperature 1.0 and 48 new tokens the embedded
model starts at 19.5-28.1 % sampled accuracy (``benchmarks/default_task_accuracy.py``: 19.5 % on 32 x 4 training
samples; 28.1 % held-out avg@2 at step 0 of the default run): inside the 15-60 % band where GRPO groups mix
correct and wrong rollouts. All 324 problems are shuffled once with a fixed seed;
the first ``HELD_OUT_SIZE`` form the held-out split, the rest the training split, so the two never overlap.
"""

from __future__ import annotations

import random

from datasets import Dataset

from .formatting import PromptFormat
from .loaders import build_dataset

DEFAULT_TASK = "addition"
DEFAULT_EVAL_DATASET = f"{DEFAULT_TASK}:test"  # the held-out split: `rlrt train`, `eval`, `inspect`, `report`
SPLIT_SEED = 20260528
HELD_OUT_SIZE = 64
OPERAND_RANGE = (2, 19)

DEFAULT_TASK_FORMAT = PromptFormat(
    instruction="",
    system_prompt="You are a careful math assistant. Finish every reply with: The answer is \\boxed{N}.",
    examples=(("What is 3 + 5?", "3 + 5 = 8. The answer is \\boxed{8}."),),
)


def _problems() -> list[tuple[int, int]]:
    low, high = OPERAND_RANGE
    pairs = [(a, b) for a in range(low, high + 1) for b in range(low, high + 1)]
    random.Random(SPLIT_SEED).shuffle(pairs)
    return pairs


def addition_task(split: str = "train", limit: int | None = None, seed: int = 0) -> Dataset:
    """The default task: ``split`` is ``"train"`` (260 problems) or ``"test"`` (64 held-out problems).

    ``seed`` shuffles the order of the training split only (the held-out split is fixed).
    """
    pairs = _problems()
    if split == "test":
        chosen = pairs[:HELD_OUT_SIZE]
    elif split == "train":
        chosen = pairs[HELD_OUT_SIZE:]
        random.Random(seed).shuffle(chosen)
    else:
        raise ValueError(f"Unknown split {split!r} of the default task; use 'train' or 'test'.")
    if limit is not None:
        chosen = chosen[:limit]
    records = [
        {"question": f"What is {a} + {b}?", "answer": str(a + b),
         "solution": f"{a} + {b} = {a + b}. The answer is \\boxed{{{a + b}}}."}
        for a, b in chosen
    ]
    dataset, _ = build_dataset(records, fmt=DEFAULT_TASK_FORMAT, source=f"{DEFAULT_TASK}:{split}")
    return dataset
