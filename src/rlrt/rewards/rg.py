"""reasoning-gym tasks graded by reasoning-gym's own scorer (each task's ``score_answer(answer, entry)``).

A dataset row built by ``rlrt.data.load_reasoning_gym`` carries ``rg_task`` (the task name), ``rg_config`` (JSON
of the ``create_dataset`` arguments, seed and size included) and ``rg_index`` (the row's index in that dataset);
the entry the scorer needs (answer and metadata) is regenerated from them exactly, so nothing is lost to a
JSON round trip (some tasks keep tuples and grids in their metadata).

The answer is read the way the prompts ask for it: the last ``<answer>...</answer>`` (reasoning-gym's format,
``reasoning_gym.utils.extract_answer``), else the last ``\\boxed{}`` (rlrt's default instruction), after the last
``</think>``. No math comparison is involved: math-verify reads letters as symbols and comma lists as sets, which
accepts e.g. an unreversed word or a list in the wrong order.

The scorer runs in the ``MathVerifier`` worker process under the same time bound as a math item: some
reasoning-gym scorers ``eval()`` the model's answer, which must neither hang nor run inside the training process.
"""

from __future__ import annotations

import re

from .math import MathRewardConfig, MathVerifier, answer_region, extract_boxed, verifier_for

RG_COLUMNS = ("rg_task", "rg_config", "rg_index")
FULL_MARKS = 1.0 - 1e-9
_TEXT_WRAPPED = re.compile(r"^\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}$")
_ANSWER_TAG = re.compile(r"<answer>\s?(.*?)\s?</answer>", re.DOTALL)


def extract_rg_answer(text: str, config: MathRewardConfig | None = None) -> str | None:
    """The answer of a completion to a reasoning-gym prompt: last ``<answer>`` tag (as
    ``reasoning_gym.utils.extract_answer`` reads it), else last ``\\boxed{}`` (a ``\\text{...}`` around the whole box
    content is removed), searched in the completion's last ``max_completion_chars`` characters (``answer_region``);
    ``None`` when there is neither."""
    config = config or MathRewardConfig()
    region = answer_region(text, config)
    tags = _ANSWER_TAG.findall(region)
    answer = tags[-1].strip() if tags else extract_boxed(region)
    if answer is not None and not tags:
        wrapped = _TEXT_WRAPPED.match(answer)
        answer = wrapped.group(1).strip() if wrapped else answer
    return answer


def score_rg(completion_text: str, task: str, config_json: str, index: int, gold: str | None = None,
             config: MathRewardConfig | None = None, verifier: MathVerifier | None = None) -> float:
    """reasoning-gym's own score in ``[0, 1]`` of the answer in ``completion_text`` for the row's entry (0.0 when
    the scorer fails or exceeds the time bound).

    Raises ``ValueError`` when reasoning-gym cannot build the task, or when the row's ``gold`` answer is not the
    regenerated entry's (a different reasoning-gym version or a hand-edited column: no faithful score).
    """
    config = config or MathRewardConfig()
    verifier = verifier or verifier_for(config)
    result = verifier.score_rg(task, config_json, index, extract_rg_answer(completion_text, config))
    expected = result["entry_answer"]
    if gold is not None and expected is not None and expected.strip() != str(gold).strip():
        raise ValueError(
            f"rg:{task} row {index}: its answer column {str(gold)[:60]!r} is not reasoning-gym's {expected[:60]!r} "
            "for that row (another reasoning-gym version?). Rebuild the dataset."
        )
    return result["score"]


def grade_rg(completion_text: str, task: str, config_json: str, index: int, gold: str | None = None,
             config: MathRewardConfig | None = None, partial_credit: bool = False,
             verifier: MathVerifier | None = None) -> float:
    """1.0 when reasoning-gym's scorer gives the answer full marks, else 0.0; its raw score with
    ``partial_credit`` (reasoning-gym gives part marks, e.g. 0.43 for "element" against "tnemele")."""
    score = score_rg(completion_text, task, config_json, index, gold, config, verifier)
    return score if partial_credit else float(score >= FULL_MARKS)
