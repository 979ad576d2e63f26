"""Small text helpers shared by the teacher, rewards and evaluation."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

# Abbreviations common in other trainers' flags, for names whose initials are ambiguous (``lr``: also ``lora_r``).
ABBREVIATIONS = {"lr": "learning_rate", "bs": "per_device_train_batch_size",
                 "batch_size": "per_device_train_batch_size", "epochs": "num_train_epochs", "steps": "max_steps",
                 "wd": "weight_decay"}


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely meant, or ``None``: the same name in another case (``RLRT`` for ``rlrt``), a
    common abbreviation (``lr`` for ``learning_rate``), the one name whose words' initials ``word`` is (``ng`` for
    ``num_generations``), else the closest spelling (difflib)."""
    word, choices = str(word), [str(c) for c in choices]
    same_case = [c for c in choices if c.lower() == word.lower()]
    if same_case:
        return same_case[0]
    if ABBREVIATIONS.get(word.lower()) in choices:
        return ABBREVIATIONS[word.lower()]
    if len(word) >= 2 and "_" not in word:
        initials = [c for c in choices if "_" in c and "".join(p[:1] for p in c.split("_")).lower() == word.lower()]
        if len(initials) == 1:
            return initials[0]
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return match[0] if match else None


def did_you_mean(word: str, choices: Iterable[str], prefix: str = "", quote: bool = True) -> str:
    """`` (did you mean 'x'?)`` for the choice ``closest`` to ``word``, or ``""`` when none is close."""
    match = closest(word, choices)
    if match is None or match == str(word):
        return ""
    return f" (did you mean {match!r}?)" if quote else f" (did you mean {prefix}{match}?)"


def check_option_keys(options: Mapping[str, Any], known: Iterable[str], what: str) -> None:
    """Raises ``ValueError`` for the first key of ``options`` (a dict of options: ``--reward_options``,
    ``sdpo_options``, a dataset's options) that is not in ``known``, in one line: ``{what}: unknown option 'x'
    (did you mean 'y'?); the options are [...]``."""
    known = list(known)
    for key in options:
        if key not in known:
            raise ValueError(f"{what}: unknown option {key!r}{did_you_mean(key, known)}; the options are {known}.")


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
