"""Grading a completion against its dataset row, in one place: the rewards, ``rlrt eval`` and ``rlrt inspect``
all call ``grade_batch`` (or ``grade``), so a row is graded the same way in training, evaluation and inspection.

Which library grades what:

* a reasoning-gym row (columns ``rg_task``, ``rg_config``, ``rg_index``, added by ``load_reasoning_gym``):
  reasoning-gym's own ``score_answer`` for that task (``rlrt.rewards.rg``); correct means full marks;
* any other row: math-verify (extraction and comparison) against the ``answer`` column, in the bounded-time
  worker of ``rlrt.rewards.math``; a list there means "any of these is right" (``grade_math_any``).

The reward functions follow TRL's contract ``f(prompts, completions, **columns) -> list[float | None]``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ..text import completion_text
from .math import (
    MathRewardConfig,
    MathVerifier,
    answer_region,
    extract_boxed,
    grade_math,
    verifier_for,
)
from .rg import RG_COLUMNS, extract_rg_answer, grade_rg

_TRAINER_KWARGS = ("trainer_state", "log_extra", "log_metric")


def is_rg_row(columns: Mapping[str, Any]) -> bool:
    """Whether a row (or a batch's columns) carries the reasoning-gym columns."""
    return all(c in columns for c in RG_COLUMNS)


def grading_columns(dataset) -> dict[str, list]:
    """The columns of a ``datasets.Dataset`` (or a dict of lists) that grading needs besides ``answer``."""
    names = dataset.column_names if hasattr(dataset, "column_names") else list(dataset)
    return {c: list(dataset[c]) for c in RG_COLUMNS if c in names}


def grade_batch(completions: Sequence, golds: Sequence, config: MathRewardConfig | None = None,
                verifier: MathVerifier | None = None, partial_credit: bool = False, counts: Counter | None = None,
                **columns: Sequence) -> list[float | None]:
    """Grades of ``completions`` (strings or chat messages) against their rows: 1.0 / 0.0, ``None`` where the gold
    answer cannot be parsed (math rows). ``columns`` are the rows' other columns (TRL passes them all); rows with
    the reasoning-gym columns are graded by reasoning-gym (its raw score in ``[0, 1]`` with ``partial_credit``).

    ``counts`` (optional) receives ``no_answer`` (completions without a readable answer), ``rg`` and ``math``.
    Raises ``ValueError`` on mismatched lengths (and as ``rlrt.rewards.rg.score_rg`` does).
    """
    config = config or MathRewardConfig()
    counts = counts if counts is not None else Counter()
    if len(completions) != len(golds):
        raise ValueError(f"{len(completions)} completions but {len(golds)} gold answers; give one per completion.")
    rg = is_rg_row(columns)
    grades: list[float | None] = []
    for i, (completion, gold) in enumerate(zip(completions, golds)):
        text = completion_text(completion)
        task = columns["rg_task"][i] if rg else None
        verifier = verifier or verifier_for(config)
        if task:
            counts["rg"] += 1
            counts["no_answer"] += extract_rg_answer(text, config) is None
            grades.append(grade_rg(text, task, columns["rg_config"][i], columns["rg_index"][i], gold, config,
                                   partial_credit, verifier))
            continue
        counts["math"] += 1
        before = verifier.stats["pred_unparseable"]
        verdict = grade_math_any(text, gold, config, verifier)
        counts["no_answer"] += verifier.stats["pred_unparseable"] > before or (
            config.answer_format == "boxed" and extract_boxed(answer_region(text, config)) is None)
        grades.append(None if verdict is None else float(verdict))
    return grades


def grade_math_any(text: str, gold, config: MathRewardConfig, verifier: MathVerifier) -> bool | None:
    """``grade_math`` for one gold answer or a list of them, meaning "any of these is right": ``True`` when one
    matches, ``None`` when none can be parsed, ``False`` otherwise. The text of a list is never compared."""
    if not isinstance(gold, (list, tuple)):
        return grade_math(text, gold, config, verifier)
    verdicts = []
    for item in gold:
        verdict = grade_math(text, item, config, verifier)
        if verdict:
            return True
        verdicts.append(verdict)
    return None if all(v is None for v in verdicts) else False


def grade(completion, gold, config: MathRewardConfig | None = None, verifier: MathVerifier | None = None,
          partial_credit: bool = False, **row: Any) -> float | None:
    """``grade_batch`` for one completion; ``row`` holds that row's other columns (one value each)."""
    return grade_batch([completion], [gold], config, verifier, partial_credit, **{k: [v] for k, v in row.items()})[0]


def _missing_answer_column(name: str, answer_column: str, kwargs: Mapping) -> ValueError:
    return ValueError(
        f"{name} needs the gold answers in a {answer_column!r} dataset column; the batch has "
        f"{sorted(k for k in kwargs if k not in _TRAINER_KWARGS)}. Add or rename the column (see rlrt.data)."
    )


def make_accuracy_reward(config: MathRewardConfig | None = None, verifier: MathVerifier | None = None,
                         answer_column: str = "answer", partial_credit: bool = False):
    """A TRL reward function: each row graded by its own grader (see the module docstring), 1.0/0.0, ``None`` for
    an unparseable gold. Logs ``accuracy/no_answer_frac``, ``accuracy/timeouts`` and ``accuracy/gold_unparseable``
    through TRL's ``log_metric`` when given."""
    config = config or MathRewardConfig()
    own_verifier = verifier

    def accuracy_reward(completions, **kwargs) -> list[float | None]:
        if answer_column not in kwargs:
            raise _missing_answer_column("accuracy_reward", answer_column, kwargs)
        verifier = own_verifier or verifier_for(config)
        before = Counter(verifier.stats)
        counts: Counter = Counter()
        columns = {k: v for k, v in kwargs.items() if k in RG_COLUMNS}
        rewards = grade_batch(completions, kwargs[answer_column], config, verifier, partial_credit, counts, **columns)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and rewards:
            delta = Counter(verifier.stats)
            delta.subtract(before)
            log_metric("accuracy/no_answer_frac", counts["no_answer"] / len(rewards))
            log_metric("accuracy/timeouts", float(delta["timeouts"]))
            log_metric("accuracy/gold_unparseable", float(delta["gold_unparseable"]))
        return rewards

    def start() -> None:  # lets a runner start the verifier's worker while the model loads
        (own_verifier or verifier_for(config)).start()

    accuracy_reward.start = start
    return accuracy_reward


accuracy_reward = make_accuracy_reward()
accuracy_reward.__doc__ = ("Accuracy (1.0/0.0) against the `answer` column: math-verify for math rows, "
                           "reasoning-gym's own scorer for rows of an `rg:` dataset.")


def make_reasoning_gym_reward(config: MathRewardConfig | None = None, partial_credit: bool = False,
                              verifier: MathVerifier | None = None):
    """A TRL reward function for reasoning-gym rows only (raises ``ValueError`` naming the fix on other rows);
    with ``partial_credit`` it returns reasoning-gym's raw score instead of full marks / nothing."""
    config = config or MathRewardConfig()

    def reasoning_gym_reward(completions, **kwargs) -> list[float]:
        if not is_rg_row(kwargs) or any(not t for t in kwargs["rg_task"]):
            raise ValueError(
                f"reasoning_gym_reward needs the {list(RG_COLUMNS)} columns of an 'rg:<task>' dataset "
                "(rlrt.data.load_reasoning_gym); for other datasets use the 'accuracy' reward."
            )
        if "answer" not in kwargs:
            raise _missing_answer_column("reasoning_gym_reward", "answer", kwargs)
        columns = {k: kwargs[k] for k in RG_COLUMNS}
        return grade_batch(completions, kwargs["answer"], config, verifier, partial_credit, **columns)

    return reasoning_gym_reward


reasoning_gym_reward = make_reasoning_gym_reward()


def format_reward(completions, **kwargs) -> list[float]:
    """1.0 when the completion ends with an extractable ``\\boxed{}`` answer (after ``</think>`` if present)."""
    config = MathRewardConfig()
    return [float(extract_boxed(answer_region(completion_text(c), config)) is not None) for c in completions]


def combine_rewards(reward_funcs, weights=None, name: str = "combined_reward"):
    """One reward function returning ``sum_i w_i * r_i``; ``None`` only when every function returned ``None``.

    TRL also accepts several functions with ``reward_weights``; this is for the cases that need a single one.
    """
    weights = list(weights) if weights is not None else [1.0] * len(reward_funcs)
    if len(weights) != len(reward_funcs):
        raise ValueError(f"{len(weights)} weights for {len(reward_funcs)} reward functions; give one weight each.")

    def combined(prompts=None, completions=None, **kwargs):
        outputs = [f(prompts=prompts, completions=completions, **kwargs) for f in reward_funcs]
        result = []
        for values in zip(*outputs, strict=True):
            present = [(w, v) for w, v in zip(weights, values) if v is not None]
            result.append(sum(w * v for w, v in present) if present else None)
        return result

    combined.__name__ = name
    return combined
