"""Verifiable rewards with TRL's reward-function contract (``prompts, completions, **columns -> list[float | None]``)."""

from .math import (
    MathRewardConfig,
    MathVerifier,
    accuracy_reward,
    combine_rewards,
    extract_boxed,
    extract_final_answer,
    format_reward,
    make_accuracy_reward,
)
from .synthetic import parity_reward

__all__ = [
    "MathRewardConfig",
    "MathVerifier",
    "accuracy_reward",
    "combine_rewards",
    "extract_boxed",
    "extract_final_answer",
    "format_reward",
    "make_accuracy_reward",
    "parity_reward",
]
