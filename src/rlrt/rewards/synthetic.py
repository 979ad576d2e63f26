"""A verifier-free reward for pipeline checks and timing on random-weight models (not a task reward)."""

from __future__ import annotations

from ..text import completion_text


def parity_reward(prompts=None, completions=None, **columns) -> list[float]:
    """1.0 when the completion's text has an even number of characters, else 0.0.

    A random model earns it about half the time, so GRPO groups mix correct and incorrect rollouts and every
    RLRT code path runs; it costs nothing, so step times measure the trainer and not a verifier.
    """
    return [float(len(completion_text(c)) % 2 == 0) for c in completions]
