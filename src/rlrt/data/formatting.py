"""Prompt formatting, in one place: instruction suffix, optional system prompt, chat messages or plain text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass
class PromptFormat:
    """How a question becomes a ``prompt``.

    Attributes:
        instruction: appended after the question on its own line ("" for none). Default: the paper's suffix.
        system_prompt: an optional system message (chat format only).
        chat: ``True`` gives TRL's conversational format (a list of messages; the trainer applies the chat
            template), ``False`` a plain string.
        examples: few-shot ``(question, answer)`` pairs placed before the question as earlier chat turns.
    """

    instruction: str = DEFAULT_INSTRUCTION
    system_prompt: str | None = None
    chat: bool = True
    examples: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        if (self.system_prompt is not None or self.examples) and not self.chat:
            raise ValueError("system_prompt and examples need chat=True (a plain-text prompt has no turns).")


def format_prompt(question: str, fmt: PromptFormat | None = None) -> list[dict[str, Any]] | str:
    """``question`` plus the instruction, as chat messages or plain text (concatenation, never ``str.format``)."""
    fmt = fmt or PromptFormat()
    text = question.strip()
    if fmt.instruction:
        text = text + "\n" + fmt.instruction
    if not fmt.chat:
        return text
    messages = [{"role": "system", "content": fmt.system_prompt}] if fmt.system_prompt else []
    for example_question, example_answer in fmt.examples:
        messages += [{"role": "user", "content": example_question}, {"role": "assistant", "content": example_answer}]
    return messages + [{"role": "user", "content": text}]
