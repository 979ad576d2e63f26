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
        """Raises ``ValueError`` in one line naming the option of a wrong type (``instruction``: a string,
        ``system_prompt``: a string or null, ``chat``: true or false, ``examples``: (question, answer) string
        pairs), or for ``system_prompt``/``examples`` without ``chat``."""
        _check_type("instruction", self.instruction, str, "a string (\"\" for none)")
        _check_type("system_prompt", self.system_prompt, (str, type(None)), "a string or null")
        _check_type("chat", self.chat, bool, "true or false (a JSON boolean, not a string)")
        pairs = isinstance(self.examples, (list, tuple)) and all(
            isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(t, str) for t in pair)
            for pair in self.examples)
        if not pairs:
            raise ValueError(f"prompt format option 'examples' must be a list of (question, answer) string pairs; got "
                             f"{self.examples!r:.80}.")
        if (self.system_prompt is not None or self.examples) and not self.chat:
            raise ValueError("system_prompt and examples need chat=True (a plain-text prompt has no turns).")


def _check_type(name: str, value: Any, types: type | tuple[type, ...], expected: str) -> None:
    """Raises ``ValueError`` ``prompt format option 'name' must be <expected>; got <type> (<value>).``"""
    if not isinstance(value, types):
        raise ValueError(f"prompt format option {name!r} must be {expected}; got {type(value).__name__} "
                         f"({value!r:.60}).")


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
