"""Task data: a ``prompt`` column (chat format) plus ``answer`` and, where known, ``solution``."""

from .formatting import DEFAULT_INSTRUCTION, PromptFormat, format_prompt
from .loaders import (
    HUB_PRESETS,
    BadRowError,
    build_dataset,
    load_hub,
    load_local,
    load_reasoning_gym,
)
from .tasks import DEFAULT_TASK, DEFAULT_TASK_FORMAT, addition_task
from .registry import load_task

__all__ = [
    "DEFAULT_INSTRUCTION",
    "DEFAULT_TASK",
    "DEFAULT_TASK_FORMAT",
    "HUB_PRESETS",
    "BadRowError",
    "PromptFormat",
    "addition_task",
    "build_dataset",
    "format_prompt",
    "load_hub",
    "load_local",
    "load_reasoning_gym",
    "load_task",
]
