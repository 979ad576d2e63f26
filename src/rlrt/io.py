"""Run-folder files: JSON-lines records and their CSV copy. The lowest layer; imports nothing from rlrt."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``.jsonl`` file, one dict per non-empty line; ``[]`` when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    """``rows`` as CSV with every key seen in any row as a column (first-seen order), replaced atomically."""
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def ensure_output_dir(path: str | Path, flag: str = "--output_dir") -> Path:
    """Create the folder ``path`` (and its parents) or raise ``ValueError`` with one line naming it and the fix:
    a regular file in the way, no permission, or any other reason the system gives."""
    path = Path(path)
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise ValueError(f"{flag} {path} is not writable: choose a folder you can write to.")
        return path
    blocker = next((p for p in [path, *path.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        what = "is a file" if blocker == path else f"is under {blocker}, which is a file"
        raise ValueError(f"{flag} {path} {what}, not a folder: choose another {flag} (or move the file away).")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        reason = "permission denied" if isinstance(err, PermissionError) else (err.strerror or str(err))
        raise ValueError(f"{flag} {path} cannot be created ({reason}): choose a folder you can write to.") from None
    return path


# The files that make a folder the output of a folder-owning command: a run folder of `rlrt train`, a comparison of
# `rlrt compare`, a report of `rlrt report` (eval, inspect and interventions write files of their own names, which may
# sit in any folder).
FOLDER_MARKERS: dict[str, tuple[str, ...]] = {
    "rlrt train": ("metrics.jsonl",),
    "rlrt compare": ("compare_settings.json", "compare.json"),
    "rlrt report": ("report.md",),
}


def refuse_foreign_folder(path: str | Path, command: str, flag: str = "--output_dir") -> None:
    """Raises ``ValueError`` (one line) when folder ``path`` holds the outputs of another folder-owning command
    (``FOLDER_MARKERS``) than ``command``: a run trained into a comparison folder, a report written into a run folder
    (whose ``summary.json`` a resume would then read as the run's) or into a comparison. Nothing is written."""
    path = Path(path)
    if not path.is_dir():
        return
    present = {owner: next((m for m in markers if (path / m).is_file()), None)
               for owner, markers in FOLDER_MARKERS.items()}
    for owner, found in present.items():
        if owner == command or not found:
            continue
        if present.get(command):  # the folder is also this command's own (a run, a comparison): keep it, move theirs
            raise ValueError(f"{flag} {path} also holds the output of `{owner}` ({found}): move that command's files "
                             f"out of it to continue `{command}` there (nothing there is overwritten).")
        raise ValueError(f"{flag} {path} holds the output of `{owner}` ({found}): choose another {flag} for "
                         f"`{command}` (nothing there is overwritten).")


def summary_steps(run_dir: str | Path) -> int | None:
    """The steps a finished run's ``summary.json`` records; ``None`` when the run has not finished. Raises
    ``ValueError`` (one line naming the file) when the file is not a run summary."""
    summary = Path(run_dir) / "summary.json"
    if not summary.is_file():
        return None
    try:
        payload = json.loads(summary.read_text())
        return int(payload.get("steps", 0))
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"{summary} is not a run summary (rlrt writes it when a run finishes): move it away if the "
                         "run did not finish, or restore it.") from None


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every ``inf``/``nan`` float replaced by ``None`` (strict JSON: an empty stratum's score or an
    unbounded ratio is written as ``null``, which ``jq`` and JavaScript read)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def write_json(path: str | Path, payload: Any, indent: int | None = None, default: Any = None) -> Path:
    """``payload`` as strict JSON (``finite_or_none``: no ``NaN``/``Infinity``), replaced atomically (a reader
    never sees half a file, and an interrupted write keeps the old one). Returns ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(finite_or_none(payload), indent=indent, allow_nan=False, default=default))
    tmp.replace(path)
    return path


def differences(theirs: dict[str, Any], mine: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    """``"key <theirs> there, <mine> here"`` for every key (sorted, either side's) whose values differ, less
    ``ignore``: what a refusal to mix a saved result with a new one names."""
    return [f"{k} {theirs.get(k)!r} there, {mine.get(k)!r} here" for k in sorted(set(mine) | set(theirs))
            if theirs.get(k) != mine.get(k) and k not in ignore]


def refuse_other_arguments(path: str | Path, arguments: dict[str, Any]) -> None:
    """Before a command that samples writes ``path`` (a JSON file whose ``"arguments"`` record the command's flags):
    raises ``ValueError`` (one line) when ``path`` exists and holds a result of other arguments, naming what
    differs, so a rerun with other flags never overwrites a result that cost sampling time. The same arguments
    (a rerun) may overwrite it; a file that records none (not this command's) is refused too."""
    path = Path(path)
    if not path.is_file():
        return
    try:
        theirs = json.loads(path.read_text()).get("arguments")
    except (OSError, ValueError, AttributeError):
        theirs = None
    if not isinstance(theirs, dict):
        raise ValueError(f"{path} exists and is not a result of this command: choose another --output_dir, or move "
                         "it away (nothing there is overwritten).")
    mine = json.loads(json.dumps(arguments, default=str))
    differ = differences(theirs, mine, ignore=("output_dir",))
    if differ:
        raise ValueError(f"{path} holds a result of other arguments ({'; '.join(differ)}): choose another "
                         f"--output_dir, or move {path} away (nothing there is overwritten).")
