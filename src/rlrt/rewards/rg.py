"""reasoning-gym tasks graded by reasoning-gym's own scorer (each task's ``score_answer(answer, entry)``).

A dataset row built by ``rlrt.data.load_reasoning_gym`` carries ``rg_task`` (the task name), ``rg_config`` (JSON
of the ``create_dataset`` arguments, seed and size included) and ``rg_index`` (the row's index in that dataset);
the entry the scorer needs (answer and metadata) is regenerated from them exactly, so nothing is lost to a
JSON round trip (some tasks keep tuples and grids in their metadata).

The answer is read the way the prompts ask for it: the last ``<answer>...</answer>`` (reasoning-gym's format,
``reasoning_gym.utils.extract_answer``), else the last ``\\boxed{}`` (rlrt's default instruction), after the last
``</think>``. No math comparison is involved: math-verify reads letters as symbols and comma lists as sets, which
accepts e.g. an unreversed word or a list in the wrong order.
"""

from __future__ import annotations

import json
import re
import threading
from functools import lru_cache
from typing import Any

from .math import MathRewardConfig, answer_region, extract_boxed

RG_COLUMNS = ("rg_task", "rg_config", "rg_index")
FULL_MARKS = 1.0 - 1e-9
_TEXT_WRAPPED = re.compile(r"^\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}$")
_lock = threading.Lock()


def extract_rg_answer(text: str, config: MathRewardConfig | None = None) -> str | None:
    """The answer of a completion to a reasoning-gym prompt: last ``<answer>`` tag, else last ``\\boxed{}``
    (a ``\\text{...}`` around the whole box content is removed); ``None`` when there is neither."""
    from reasoning_gym.utils import extract_answer

    config = config or MathRewardConfig()
    region = answer_region(text, config)
    answer = extract_answer(region)
    if answer is None:
        answer = extract_boxed(region)
        if answer is not None:
            wrapped = _TEXT_WRAPPED.match(answer)
            answer = wrapped.group(1).strip() if wrapped else answer
    if answer is not None and len(answer) > config.max_completion_chars:
        return None
    return answer


@lru_cache(maxsize=64)
def _dataset(task: str, config_json: str):
    import reasoning_gym

    try:
        return reasoning_gym.create_dataset(task, **json.loads(config_json))
    except (KeyError, ValueError, TypeError) as err:
        raise ValueError(f"reasoning-gym cannot rebuild task {task!r} with {config_json} to score it: {err}. The "
                         "rg_task/rg_config columns must come from rlrt.data.load_reasoning_gym.") from None


@lru_cache(maxsize=4096)
def _entry(task: str, config_json: str, index: int) -> dict[str, Any]:
    return _dataset(task, config_json)[index]


def rg_entry(task: str, config_json: str, index: int) -> dict[str, Any]:
    """The reasoning-gym entry (``question``, ``answer``, ``metadata``) of a dataset row."""
    with _lock:
        return _entry(task, config_json, int(index))


def score_rg(completion_text: str, task: str, config_json: str, index: int, gold: str | None = None,
             config: MathRewardConfig | None = None) -> float:
    """reasoning-gym's own score in ``[0, 1]`` of the answer in ``completion_text`` for the row's entry.

    Raises ``ValueError`` when the row's ``gold`` answer is not the regenerated entry's (a different
    reasoning-gym version or a hand-edited column: the row cannot be scored faithfully).
    """
    entry = rg_entry(task, config_json, index)
    if gold is not None and entry["answer"] is not None and str(entry["answer"]).strip() != str(gold).strip():
        raise ValueError(
            f"rg:{task} row {index}: its answer column {str(gold)[:60]!r} is not reasoning-gym's "
            f"{str(entry['answer'])[:60]!r} for that row (another reasoning-gym version?). Rebuild the dataset."
        )
    answer = extract_rg_answer(completion_text, config)
    with _lock:
        scorer = _dataset(task, config_json).score_answer
    try:
        return float(scorer(answer, entry))
    except Exception:  # noqa: BLE001 -- a scorer that trips on a model's answer gives that answer no credit
        return 0.0


def grade_rg(completion_text: str, task: str, config_json: str, index: int, gold: str | None = None,
             config: MathRewardConfig | None = None, partial_credit: bool = False) -> float:
    """1.0 when reasoning-gym's scorer gives the answer full marks, else 0.0; its raw score with
    ``partial_credit`` (reasoning-gym gives part marks, e.g. 0.43 for "element" against "tnemele")."""
    score = score_rg(completion_text, task, config_json, index, gold, config)
    return score if partial_credit else float(score >= FULL_MARKS)
