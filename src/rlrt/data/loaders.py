"""Datasets with a ``prompt`` column (chat format) plus ``answer`` and, where known, ``solution``.

Sources: local JSONL/Parquet/CSV files with a column mapping, Hugging Face hub presets (need network; not
used by tests), and reasoning-gym procedural tasks (offline). Bad rows raise an error naming the row and the
column, or are skipped and counted when ``on_bad_rows="skip"``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset

from ..text import check_option_keys, closest, did_you_mean
from .formatting import PromptFormat, format_prompt

logger = logging.getLogger(__name__)

LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
OUTPUT_COLUMNS = ("prompt", "question", "answer", "solution")
# Keyword arguments that TRL's GRPOTrainer (trl 1.16, ``_calculate_rewards``) gives reward functions itself: a dataset
# column of one of these names clashes with them ("got multiple values for keyword argument") or is replaced or
# dropped without a word, so it never reaches a reward function as itself.
TRL_REWARD_KWARGS = ("prompts", "completions", "completion", "completion_ids", "trainer_state", "log_extra",
                     "log_metric", "environments")
MAP_HINT = ("; or, if it holds the question, answer or solution, map it with question_column, answer_column or "
            "solution_column (rlrt: --dataset_options)")


@dataclass
class HubPreset:
    """Where a known dataset lives, its splits (the first is the default) and which of its columns hold the
    question, answer and solution."""

    path: str
    splits: tuple[str, ...]
    question: str
    answer: str
    solution: str | None = None
    name: str | None = None
    answer_transform: str | None = None  # "gsm8k": the answer after "####"


HUB_PRESETS: dict[str, HubPreset] = {
    "gsm8k": HubPreset("openai/gsm8k", ("test", "train"), "question", "answer", "answer", name="main",
                       answer_transform="gsm8k"),
    "math500": HubPreset("HuggingFaceH4/MATH-500", ("test",), "problem", "answer", "solution"),
    "aime24": HubPreset("HuggingFaceH4/aime_2024", ("train",), "problem", "answer", "solution"),
    "aime25": HubPreset("yentinglin/aime_2025", ("train",), "problem", "answer", "solution"),
    "dapo-math-17k": HubPreset("BytedTsinghua-SIA/DAPO-Math-17k", ("train",), "prompt", "reward_model"),
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
    extra_columns: Iterable[str] | None = None,
) -> tuple[Dataset, RowReport]:
    """Normalise records into ``prompt``/``question``/``answer``/``solution`` columns.

    Every other column is kept as it is (``extra_columns=None``, the default: the union over all rows, ``None``
    where a row lacks it), so reward functions receive it as a keyword argument, as in TRL; pass a list to keep
    only those. The mapped source columns are kept too (except one named like a TRL reward keyword, below); a
    source column named like an output column (``prompt``, ``question``, ``answer``, ``solution``) is replaced by it.

    Raises ``BadRowError`` (``on_bad_rows="error"``) on an empty question, a missing or empty answer, or a
    non-string field; ``on_bad_rows="skip"`` drops such rows and counts them in the report (and the log). Raises
    ``ValueError`` for a kept column named like a keyword argument TRL gives reward functions itself
    (``TRL_REWARD_KWARGS``: ``prompts``, ``completions``, ``trainer_state``...).
    """
    if on_bad_rows not in ("error", "skip"):
        raise ValueError(f"on_bad_rows must be 'error' or 'skip'; got {on_bad_rows!r}.")
    fmt = fmt or PromptFormat()
    report = RowReport()
    rows, kept_records = [], []
    index = -1
    for index, record in enumerate(records):
        try:
            row = _normalise_row(record, index, question_column, answer_column, solution_column, source)
        except BadRowError as err:
            if on_bad_rows == "error":
                raise BadRowError(f"{err} (rows count from 0). Fix the row, map the right column, or skip bad rows "
                                  "with on_bad_rows='skip' "
                                  """(rlrt: --dataset_options '{"on_bad_rows": "skip"}').""") from None
            report.skipped += 1
            reason = str(err).split(": ", 1)[-1]
            report.reasons[reason] = report.reasons.get(reason, 0) + 1
            continue
        row["prompt"] = format_prompt(row["question"], fmt)
        rows.append(row)
        kept_records.append(record)
    if extra_columns is None:
        extra_columns = list(dict.fromkeys(k for record in kept_records for k in record))
    mapped = {question_column, answer_column, solution_column}
    extra_columns = [c for c in extra_columns
                     if c not in OUTPUT_COLUMNS and not (c in mapped and c in TRL_REWARD_KWARGS)]
    check_column_names(extra_columns, source, MAP_HINT)
    for row, record in zip(rows, kept_records):
        for column in extra_columns:
            row[column] = record.get(column)
    report.kept = len(rows)
    if report.skipped:
        logger.warning("%s: skipped %d bad rows of %d: %s", source, report.skipped, index + 1, report.reasons)
    if any(isinstance(row["answer"], list) for row in rows):  # one Arrow type per column: all lists then
        for row in rows:
            row["answer"] = row["answer"] if isinstance(row["answer"], list) else [row["answer"]]
    if not rows:
        raise ValueError(f"{source} has no usable rows (skipped {report.skipped}): check the file and column names.")
    return Dataset.from_list(rows), report


def check_column_names(columns: Iterable[str], source: str, fix: str = "") -> None:
    """Raises ``ValueError`` for the first of ``columns`` named like a keyword argument that TRL's GRPOTrainer gives
    reward functions itself (``TRL_REWARD_KWARGS``), saying to rename it (``fix``: another way out)."""
    for column in columns:
        if column in TRL_REWARD_KWARGS:
            raise ValueError(
                f"{source} has a column {column!r}, a name TRL's GRPOTrainer gives reward functions itself "
                f"({', '.join(TRL_REWARD_KWARGS)}): rename that column (every other column reaches reward functions "
                f"as a keyword argument of its own name){fix}."
            )


def answer_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a gold answer, or ``None`` when it can.

    A gold answer is a non-empty string, a finite number, or a non-empty list of those, meaning "any of these is
    right" (graded so by ``rlrt.rewards``); it is never turned into the text of a list or of ``None``.
    """
    if isinstance(value, (list, tuple)):
        if not value:
            return "an empty list (a list answer means 'any of these is right' and needs at least one)"
        for j, item in enumerate(value):
            problem = answer_problem(item) if not isinstance(item, (list, tuple)) else "a nested list"
            if problem:
                return f"a list whose item {j} is {problem}"
        return None
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return f"missing ({value})"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return (f"a {type(value).__name__} ({value!r:.60}); a gold answer is a string, a number, or a list of them "
                "(any of which is right)")
    if not str(value).strip():
        return "empty"
    return None


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
    problem = answer_problem(answer)
    if problem:
        raise BadRowError(f"{where}: column {answer_column!r} is {problem}")
    answer = [str(a).strip() for a in answer] if isinstance(answer, (list, tuple)) else str(answer).strip()
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
    """A local JSONL, JSON, Parquet or CSV file; the ``*_column`` arguments map its columns, and every other
    column is kept (reward functions receive it).

    Text files are read as UTF-8, with or without a byte-order mark. A ``.json`` file holds a list of row objects,
    an object of equal-length column lists, or one row object per line (as ``.jsonl``). CSV cells are read as
    text, as written (``007``, ``True`` and ``NA`` stay strings; an empty cell is ``""``).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (naming the file, and the line of a JSON
    Lines file) for a folder, an unreadable, empty or malformed file, a file with no rows or no columns, or missing
    question/answer columns (suggesting the closest column), a ``solution_column`` it does not have
    (other than the default, which is optional), a non-string column option, or bytes that are not UTF-8.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"Dataset path {path} is a folder; pass the .jsonl/.json/.parquet/.csv file inside it.")
    if not path.is_file():
        raise FileNotFoundError(f"Dataset file {path} does not exist.")
    kind = LOCAL_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"Unsupported dataset file type {path.suffix!r}; use one of {sorted(LOCAL_FORMATS)}.")
    if not os.access(path, os.R_OK):
        raise ValueError(f"cannot read dataset file {path} (permission denied): fix its permissions or copy it.")
    text = None if kind == "parquet" else _text(path)  # read once: the checks below and the parse use it
    if path.stat().st_size == 0 or (text is not None and not text.strip()):
        raise ValueError(f"Dataset file {path} is empty: add rows (one JSON object per line for .jsonl).")
    if kind == "csv" and sum(1 for line in text.splitlines() if line.strip()) < 2:
        raise ValueError(f"Dataset file {path} has a header line but no rows: add rows below it.")
    for option, value in (("question_column", question_column), ("answer_column", answer_column),
                          ("solution_column", solution_column)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{option} must be a column name (a string); got {value!r}.")
    records, columns = _read_records(path, kind, text)
    _check_columns(path, records, columns, question_column, answer_column, solution_column)
    if solution_column not in (None, "solution") and solution_column not in columns:  # asked for, not the default
        hint = did_you_mean(solution_column, columns)
        raise ValueError(f"{path} has no column {solution_column!r} (solution_column){hint}; its columns are "
                         f"{columns}.")
    if limit is not None:
        records = records[:limit]
    solution = solution_column if solution_column in columns else None
    dataset, _ = build_dataset(records, question_column, answer_column, solution, fmt, on_bad_rows, source=str(path))
    return dataset


def _text(path: Path) -> str:
    """The text of a local file: UTF-8, a leading byte-order mark dropped. Raises ``ValueError`` naming the first
    byte that is not UTF-8 (a replaced character would change a gold answer without a word)."""
    try:
        return path.read_bytes().decode("utf-8-sig")  # no newline translation: a quoted CSV cell keeps its \r\n
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}): save it "
                         "as UTF-8.") from None


def _check_columns(path: Path, records: list[dict[str, Any]], columns: list[str], question_column: str,
                   answer_column: str, solution_column: str | None = None) -> None:
    """Raises ``ValueError`` when the file holds no rows or no columns, or lacks the question or answer column;
    the message gives the ``--dataset_options`` mapping with the closest column names (``rlrt.text.closest``),
    never proposing the worked-solution column (``solution_column``) as the gold answer."""
    if not records:
        raise ValueError(f"{path} holds no rows (its columns: {columns}): add rows with a question and an answer.")
    if not columns:
        raise ValueError(f"{path} holds no columns (every row is an empty object): give each row a question and an "
                         'answer, e.g. {"question": "What is 2 + 2?", "answer": "4"}.')
    missing = [name for name in (question_column, answer_column) if name not in columns]
    if not missing:
        return
    candidates = [c for c in columns if c != solution_column]
    hints = "".join(f"; no column {name!r}{did_you_mean(name, candidates)}" for name in missing)
    unused = [c for c in candidates if c not in (question_column, answer_column)]
    question = _column_guess(question_column, candidates, unused)
    answer = _column_guess(answer_column, candidates, [c for c in unused if c != question])
    raise ValueError(
        f"{path} has columns {columns}{hints}: map the question and answer columns with question_column=... and "
        f"answer_column=... (now {question_column!r}, {answer_column!r}); on the command line: "
        f"""--dataset_options '{{"question_column": "{question}", "answer_column": "{answer}"}}'."""
    )


def _column_guess(name: str, columns: list[str], unused: list[str]) -> str:
    """``name`` when the file has it, else the column closest to it, else the only column not otherwise used,
    else ``...``."""
    if name in columns:
        return name
    return closest(name, columns) or (unused[0] if len(unused) == 1 else "...")


JSON_SHAPES = ('a .json file holds a list of row objects ([{"question": ..., "answer": ...}, ...]), an object of '
               'equal-length column lists ({"question": [...], "answer": [...]}), or one row object per line')


def _read_records(path: Path, kind: str, text: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of a local file as dicts, and its columns (in the order first seen; a Parquet or CSV file's
    header, even without rows); ``text``: a JSON or CSV file's text when already read (``_text``). Raises
    ``ValueError`` naming the file (and the line or item) when it cannot be read or a row is not an object."""
    if kind != "parquet" and text is None:
        text = _text(path)
    if kind == "json":
        records = _read_json(path, text)
        return records, list(dict.fromkeys(k for r in records for k in r))
    try:
        if kind == "csv":  # every cell as the text written: no guessed bools, numbers or missing values
            import io

            import pandas as pd

            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
            return frame.to_dict("records"), [str(c) for c in frame.columns]
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return table.to_pylist(), list(table.column_names)
    except Exception as err:  # noqa: BLE001 -- pyarrow/pandas raise many types; one line names the file
        raise ValueError(f"cannot read {path} as {kind}: {type(err).__name__}: {err}".splitlines()[0]) from None


def _read_json(path: Path, text: str) -> list[dict[str, Any]]:
    """The rows of a ``.json`` or ``.jsonl`` file of text ``text``; raises ``ValueError`` naming the line or item
    at fault."""
    numbered, where = None, "line"
    if path.suffix.lower() == ".json":
        numbered = _read_json_document(path, text)
        where = "item"
    if numbered is None:
        numbered, where = _read_json_lines(path, text), "line"
    for number, record in numbered:
        if not isinstance(record, dict):
            raise ValueError(
                f"{path} {where} {number} is a {type(record).__name__}, not a JSON object: each row must be an "
                'object such as {"question": ..., "answer": ...}.'
            )
    return [record for _, record in numbered]


def _read_json_document(path: Path, text: str) -> list[tuple[int, Any]] | None:
    """A ``.json`` file read as one JSON document: numbered rows, or ``None`` when it is JSON Lines instead (its
    first line is a JSON object of its own). Raises ``ValueError`` for invalid JSON or another shape."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        if _first_line_is_object(text):
            return None
        raise ValueError(f"{path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
                         f"{JSON_SHAPES}.") from None
    if isinstance(document, list):
        return list(enumerate(document, start=1))
    if isinstance(document, dict) and document and all(isinstance(v, list) for v in document.values()):
        lengths = {key: len(value) for key, value in document.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"{path} holds column lists of different lengths {lengths}: give every column one value "
                             f"per row ({JSON_SHAPES}).")
        return [(n, dict(zip(document, values))) for n, values in enumerate(zip(*document.values()), start=1)]
    if isinstance(document, dict):  # one row (a .jsonl file of one line, or the same object pretty-printed)
        return [(1, document)]
    raise ValueError(f"{path} holds a JSON {type(document).__name__}, not rows: {JSON_SHAPES}.")


def _first_line_is_object(text: str) -> bool:
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def _read_json_lines(path: Path, text: str) -> list[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line; raises ``ValueError`` naming the first invalid line."""
    numbered = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            numbered.append((number, json.loads(line)))
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{path} line {number} is not valid JSON ({err.msg}, column {err.colno}): fix or remove that "
                f"line ({_json_lines_hint(path, text)})."
            ) from None
    return numbered


def _json_lines_hint(path: Path, text: str) -> str:
    """What a file read as JSON Lines must hold, and the fix when the whole file is one JSON document."""
    if path.suffix.lower() == ".json":
        return JSON_SHAPES
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return "a .jsonl file holds one JSON object per line"
    return "a .jsonl file holds one JSON object per line; this file is one JSON document: name it .json"


def load_hub(name: str, split: str | None = None, fmt: PromptFormat | None = None, limit: int | None = None) -> Dataset:
    """A hub preset (``gsm8k``, ``math500``, ``aime24``, ``aime25``, ``dapo-math-17k``); needs network access.

    ``split`` must be one of the preset's ``splits`` (``None``: its first); raises ``ValueError`` listing them
    before anything is downloaded. Columns other than question/answer/solution are kept.
    """
    if name not in HUB_PRESETS:
        raise ValueError(f"Unknown hub preset {name!r}; choose one of {sorted(HUB_PRESETS)} or pass a local file.")
    preset = HUB_PRESETS[name]
    split = split or preset.splits[0]
    if split not in preset.splits:
        raise ValueError(
            f"{name} has no {split!r} split; its splits are {list(preset.splits)}: ask for one of them "
            f"(e.g. {name}:{preset.splits[0]})."
        )
    import logging

    import datasets

    hub_logger = logging.getLogger("huggingface_hub")  # its per-retry warnings: the one line below says it all
    hub_level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)
    try:
        raw = datasets.load_dataset(preset.path, preset.name, split=split)
    except (ConnectionError, OSError) as err:  # offline, or the hub unreachable (huggingface_hub's errors are these)
        raise ValueError(
            f"{name}:{split} ({preset.path}) could not be downloaded and is not in the local cache "
            f"({type(err).__name__}): with no network, pass a local .jsonl/.parquet/.csv file as --dataset, or "
            "download it once where the hub is reachable (the cache is reused offline)."
        ) from None
    finally:
        hub_logger.setLevel(hub_level)
    if limit is not None:
        raw = raw.select(range(min(limit, len(raw))))
    records = (_preset_record(preset, r) for r in raw)
    dataset, _ = build_dataset(records, fmt=fmt, source=f"{name}:{split}")
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
    used = {preset.question, preset.answer, preset.solution}
    extra = {k: v for k, v in record.items() if k not in used and k not in OUTPUT_COLUMNS}
    return {"question": question, "answer": answer, "solution": solution, **extra}


def load_reasoning_gym(
    task: str, size: int, seed: int, fmt: PromptFormat | None = None, **params: Any
) -> Dataset:
    """A reasoning-gym task; ``gsm_symbolic``'s ``answer_cot`` becomes the reference ``solution``.

    Each row also carries ``rg_task``, ``rg_config`` (JSON of the ``create_dataset`` arguments) and ``rg_index``:
    with them the rewards regenerate the row's reasoning-gym entry and grade it with the task's own scorer
    (``rlrt.rewards.rg``).

    Raises ``ValueError`` for a ``size`` that is not a positive integer, an unknown task or option, or options
    reasoning-gym refuses (the message names them, ``size`` included).
    """
    import dataclasses
    import json

    import reasoning_gym
    from reasoning_gym.factory import DATASETS

    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"reasoning-gym task {task}'s option 'size' (how many problems to draw) must be a positive "
                         f"integer; got {size!r}: change it in --dataset_options.")
    if task in DATASETS and dataclasses.is_dataclass(DATASETS[task][1]):
        fields = [f.name for f in dataclasses.fields(DATASETS[task][1]) if f.name not in ("size", "seed")]
        check_option_keys(params, fields, f"reasoning-gym task {task}'s --dataset_options")
    shown = {"size": size, **params}  # load_task takes size out of the options: name it with them
    try:
        generator = reasoning_gym.create_dataset(task, size=size, seed=seed, **params)
    except AssertionError as err:  # reasoning-gym validates its configs with assert
        reason = str(err) or "one of its checks failed"
        raise ValueError(f"reasoning-gym refused the options {shown} of task {task!r}: {reason}; "
                         "change --dataset_options.") from None
    except (KeyError, ValueError, TypeError) as err:
        hint = did_you_mean(task, DATASETS) if task not in DATASETS else ""
        raise ValueError(f"reasoning-gym could not build task {task!r}{hint} with {shown}: "
                         f"{err}") from None
    config = json.dumps({"size": size, "seed": seed, **params}, sort_keys=True)
    records = [
        {
            "question": item["question"],
            "answer": item["answer"],
            "solution": item["metadata"].get("answer_cot") or "",
            "rg_task": task,
            "rg_config": config,
            "rg_index": index,
        }
        for index, item in enumerate(generator)
    ]
    dataset, _ = build_dataset(records, fmt=fmt, source=f"reasoning-gym:{task}",
                               extra_columns=("rg_task", "rg_config", "rg_index"))
    return dataset
