"""Verifiable rewards with TRL's reward-function contract (``prompts, completions, **columns -> list[float | None]``).

``grade`` / ``grade_batch`` grade a completion against its dataset row (math-verify for math answers,
reasoning-gym's own scorer for reasoning-gym rows); the rewards, ``rlrt eval`` and ``rlrt inspect`` use them.
"""

from .grading import (
    accuracy_reward,
    combine_rewards,
    format_reward,
    grade,
    grade_batch,
    grading_columns,
    make_accuracy_reward,
    make_reasoning_gym_reward,
    reasoning_gym_reward,
)
from .math import MathRewardConfig, MathVerifier, extract_boxed, extract_final_answer
from .rg import extract_rg_answer
from .synthetic import parity_reward

__all__ = [
    "MathRewardConfig",
    "MathVerifier",
    "accuracy_reward",
    "combine_rewards",
    "extract_boxed",
    "extract_final_answer",
    "extract_rg_answer",
    "format_reward",
    "grade",
    "grade_batch",
    "grading_columns",
    "make_accuracy_reward",
    "make_reasoning_gym_reward",
    "parity_reward",
    "reasoning_gym_reward",
]
