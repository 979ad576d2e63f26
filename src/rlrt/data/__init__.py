"""Task data: a ``prompt`` column (chat format) plus ``answer`` and, where known, ``solution``."""

from .chain import CHAIN_TASK, ChainOptions, chain_task
from .formatting import DEFAULT_INSTRUCTION, PromptFormat, format_prompt
from .loaders import (
    HUB_PRESETS,
    BadRowError,
    answer_problem,
    build_dataset,
    load_hub,
    load_local,
    load_reasoning_gym,
)
from .registry import load_task, split_spec
from .tasks import DEFAULT_EVAL_DATASET, DEFAULT_TASK, DEFAULT_TASK_FORMAT, addition_task

__all__ = [
    "DEFAULT_EVAL_DATASET",
    "DEFAULT_INSTRUCTION",
    "DEFAULT_TASK",
    "DEFAULT_TASK_FORMAT",
    "HUB_PRESETS",
    "BadRowError",
    "CHAIN_TASK",
    "ChainOptions",
    "answer_problem",
    "PromptFormat",
    "addition_task",
    "build_dataset",
    "chain_task",
    "format_prompt",
    "load_hub",
    "load_local",
    "load_reasoning_gym",
    "load_task",
    "split_spec",
]
