"""Small text helpers shared by the teacher, rewards and evaluation."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


def did_you_mean(word: str, choices: Iterable[str], prefix: str = "", quote: bool = True) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to ``word`` (difflib), or ``""`` when none is close."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    if not match:
        return ""
    return f" (did you mean {match[0]!r}?)" if quote else f" (did you mean {prefix}{match[0]}?)"


def completion_text(completion: str | list[dict[str, Any]]) -> str:
    """Plain text of a TRL completion (a string, or a list of assistant messages)."""
    if isinstance(completion, str):
        return completion
    parts = []
    for message in completion:
        content = message.get("content", "") if isinstance(message, dict) else str(message)
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        parts.append(content or "")
    return "".join(parts)
