"""Datasets with a ``prompt`` column (chat format) plus ``answer`` and, where known, ``solution``.

Sources: local JSONL/Parquet/CSV files with a column mapping, Hugging Face hub presets (need network; not
used by tests), and reasoning-gym procedural tasks (offline). Bad rows raise an error naming the row and the
column, or are skipped and counted when ``on_bad_rows="skip"``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset

from .formatting import PromptFormat, format_prompt

logger = logging.getLogger(__name__)

LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


@dataclass
class HubPreset:
    """Where a known dataset lives and which of its columns hold the question, answer and solution."""

    path: str
    split: str
    question: str
    answer: str
    solution: str | None = None
    name: str | None = None
    answer_transform: str | None = None  # "gsm8k": the answer after "####"


HUB_PRESETS: dict[str, HubPreset] = {
    "gsm8k": HubPreset("openai/gsm8k", "test", "question", "answer", "answer", name="main", answer_transform="gsm8k"),
    "math500": HubPreset("HuggingFaceH4/MATH-500", "test", "problem", "answer", "solution"),
    "aime24": HubPreset("HuggingFaceH4/aime_2024", "train", "problem", "answer", "solution"),
    "aime25": HubPreset("yentinglin/aime_2025", "train", "problem", "answer", "solution"),
    "dapo-math-17k": HubPreset("BytedTsinghua-SIA/DAPO-Math-17k", "train", "prompt", "reward_model"),
}


class BadRowError(ValueError):
    """A dataset row that cannot be used; the message names the row and the column."""


@dataclass
class RowReport:
    """What building a dataset kept and skipped."""

    kept: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def build_dataset(
    records: Iterable[Mapping[str, Any]],
    question_column: str = "question",
    answer_column: str = "answer",
    solution_column: str | None = "solution",
    fmt: PromptFormat | None = None,
    on_bad_rows: str = "error",
    source: str = "dataset",
    extra_columns: Iterable[str] = (),
) -> tuple[Dataset, RowReport]:
    """Normalise records into ``prompt``/``question``/``answer``/``solution`` columns.

    Raises ``BadRowError`` (``on_bad_rows="error"``) on an empty question, a missing or empty answer, or a
    non-string field; ``on_bad_rows="skip"`` drops such rows and counts them in the report (and the log).
    """
    if on_bad_rows not in ("error", "skip"):
        raise ValueError(f"on_bad_rows must be 'error' or 'skip'; got {on_bad_rows!r}.")
    fmt = fmt or PromptFormat()
    report = RowReport()
    rows = []
    for index, record in enumerate(records):
        try:
            row = _normalise_row(record, index, question_column, answer_column, solution_column, source)
        except BadRowError as err:
            if on_bad_rows == "error":
                raise BadRowError(f"{err} Fix the row, map the right column, or pass on_bad_rows='skip'.") from None
            report.skipped += 1
            reason = str(err).split(": ", 1)[-1]
            report.reasons[reason] = report.reasons.get(reason, 0) + 1
            continue
        row["prompt"] = format_prompt(row["question"], fmt)
        for column in extra_columns:
            row[column] = record.get(column)
        rows.append(row)
    report.kept = len(rows)
    if report.skipped:
        logger.warning("%s: skipped %d bad rows of %d: %s", source, report.skipped, index + 1, report.reasons)
    if not rows:
        raise ValueError(f"{source} has no usable rows (skipped {report.skipped}): check the file and column names.")
    return Dataset.from_list(rows), report


def _normalise_row(record, index, question_column, answer_column, solution_column, source) -> dict[str, Any]:
    where = f"{source} row {index}"
    for column in (question_column, answer_column):
        if column not in record:
            raise BadRowError(f"{where}: missing column {column!r} (row has {sorted(record)})")
    question, answer = record[question_column], record[answer_column]
    if not isinstance(question, str):
        raise BadRowError(f"{where}: column {question_column!r} must be a string, got {type(question).__name__}")
    if not question.strip():
        raise BadRowError(f"{where}: column {question_column!r} is empty")
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
        raise BadRowError(f"{where}: column {answer_column!r} must be a string or number, got {type(answer).__name__}")
    answer = str(answer).strip()
    if not answer:
        raise BadRowError(f"{where}: column {answer_column!r} is empty")
    solution = record.get(solution_column) if solution_column else None
    if solution is not None and not isinstance(solution, str):
        raise BadRowError(f"{where}: column {solution_column!r} must be a string, got {type(solution).__name__}")
    return {"question": question, "answer": answer, "solution": solution or ""}


def load_local(
    path: str | Path,
    question_column: str = "question",
    answer_column: str = "answer",
    solution_column: str | None = "solution",
    fmt: PromptFormat | None = None,
    on_bad_rows: str = "error",
    limit: int | None = None,
) -> Dataset:
    """A local JSONL, JSON, Parquet or CSV file; the ``*_column`` arguments map its columns."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Dataset file {path} does not exist.")
    kind = LOCAL_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"Unsupported dataset file type {path.suffix!r}; use one of {sorted(LOCAL_FORMATS)}.")
    import datasets

    raw = datasets.load_dataset(kind, data_files=str(path), split="train")
    if limit is not None:
        raw = raw.select(range(min(limit, len(raw))))
    if question_column not in raw.column_names or answer_column not in raw.column_names:
        raise ValueError(
            f"{path} has columns {raw.column_names}; map the question and answer columns with "
            f"question_column=... and answer_column=... (now {question_column!r}, {answer_column!r})."
        )
    solution = solution_column if solution_column in raw.column_names else None
    dataset, _ = build_dataset(raw, question_column, answer_column, solution, fmt, on_bad_rows, source=str(path))
    return dataset


def load_hub(name: str, split: str | None = None, fmt: PromptFormat | None = None, limit: int | None = None) -> Dataset:
    """A hub preset (``gsm8k``, ``math500``, ``aime24``, ``aime25``, ``dapo-math-17k``); needs network access."""
    if name not in HUB_PRESETS:
        raise ValueError(f"Unknown hub preset {name!r}; choose one of {sorted(HUB_PRESETS)} or pass a local file.")
    preset = HUB_PRESETS[name]
    import datasets

    raw = datasets.load_dataset(preset.path, preset.name, split=split or preset.split)
    if limit is not None:
        raw = raw.select(range(min(limit, len(raw))))
    records = (_preset_record(preset, r) for r in raw)
    dataset, _ = build_dataset(records, fmt=fmt, source=name)
    return dataset


def _preset_record(preset: HubPreset, record: Mapping[str, Any]) -> dict[str, Any]:
    question, answer = record[preset.question], record[preset.answer]
    if isinstance(question, list):  # DAPO-Math-17k stores chat messages and a reward_model dict
        question = question[-1]["content"]
    if isinstance(answer, dict):
        answer = answer.get("ground_truth", "")
    solution = record.get(preset.solution) if preset.solution else None
    if preset.answer_transform == "gsm8k":
        answer = str(answer).split("####")[-1].strip().replace(",", "")
    return {"question": question, "answer": answer, "solution": solution}


def load_reasoning_gym(
    task: str, size: int, seed: int, fmt: PromptFormat | None = None, **params: Any
) -> Dataset:
    """A reasoning-gym task; ``gsm_symbolic``'s ``answer_cot`` becomes the reference ``solution``."""
    import reasoning_gym

    try:
        generator = reasoning_gym.create_dataset(task, size=size, seed=seed, **params)
    except (KeyError, ValueError, TypeError) as err:
        raise ValueError(f"reasoning-gym could not build task {task!r} with {params}: {err}") from None
    records = [
        {
            "question": item["question"],
            "answer": item["answer"],
            "solution": item["metadata"].get("answer_cot") or "",
        }
        for item in generator
    ]
    dataset, _ = build_dataset(records, fmt=fmt, source=f"reasoning-gym:{task}")
    return dataset
