"""Reward functions named on a command line: a built-in name, ``file.py:function`` or ``module:function``.

One loader for ``rlrt train --reward_funcs`` and ``rlrt interventions --reward_func``; every failure (unknown name,
missing file, syntax error or failing import in the user's module, missing function) is one line that names the
entry and what to change.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..text import did_you_mean
from .grading import accuracy_reward, format_reward, make_accuracy_reward, reasoning_gym_reward

BUILTIN_REWARDS = ("accuracy", "format", "reasoning_gym")


def load_reward_funcs(names: list[str], task: str | None = None, reward_config=None,
                      flag: str = "--reward_funcs") -> list[Callable[..., Any]]:
    """The reward functions named by ``names``, in order.

    Args:
        names: ``accuracy``, ``format``, ``reasoning_gym``, ``path/to/file.py:function`` or ``module:function``
            (nothing else is imported).
        task: the dataset's name without its split (``"rg:spell_backward"``, ``"chain"``), if known: it checks the
            choice (``reasoning_gym`` needs an ``rg:`` task) and, on an ``rg:`` task, ``accuracy`` says that it grades
            with the task's own reasoning-gym scorer.
        reward_config: a ``MathRewardConfig`` for ``accuracy`` (default: the built-in one).
        flag: the option the names came from, quoted in errors.

    Raises:
        ValueError: an unknown name, ``reasoning_gym`` on a non-``rg:`` task, a module that fails to import (syntax
            error or an exception, with the line) or has no such function.
        FileNotFoundError: ``file.py`` does not exist.
    """
    is_rg = bool(task) and task.startswith("rg:")
    funcs = []
    for name in names:
        if name == "accuracy":
            funcs.append(accuracy_reward if reward_config is None else make_accuracy_reward(reward_config))
            if is_rg:
                print(f"accuracy on {task}: graded by reasoning-gym's own scorer for {task[3:]} (1.0 = full marks), "
                      "not by math-verify.", flush=True)
        elif name == "reasoning_gym":
            if task and not is_rg:
                raise ValueError(f"{flag} reasoning_gym grades rg:<task> datasets; {task} is not one. "
                                 f"Use {flag} accuracy.")
            funcs.append(reasoning_gym_reward)
        elif name == "format":
            funcs.append(format_reward)
        elif ":" in name:
            funcs.append(_user_function(name, flag))
        else:
            raise ValueError(f"Unknown reward function {name!r}{did_you_mean(name, BUILTIN_REWARDS)}: use one of "
                             f"{list(BUILTIN_REWARDS)}, 'file.py:function' or 'module:function'.")
    return funcs


def _user_function(name: str, flag: str) -> Callable[..., Any]:
    target, _, attr = name.rpartition(":")
    path = None
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise FileNotFoundError(f"Reward file {path} does not exist (from {flag} {name}).")
    module = _import_module(name, target, path, flag)
    if not callable(getattr(module, attr, None)):
        functions = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        raise ValueError(f"{target} has no function {attr!r}{did_you_mean(attr, functions)} (from {flag} {name}).")
    return getattr(module, attr)


def _import_module(name: str, target: str, path: Path | None, flag: str):
    """The module of a reward entry; an error in it (syntax, a failing import) becomes one line naming the file or
    module, the line where Python saw it, and the error."""
    try:
        if path is None:
            return importlib.import_module(target)
        spec = importlib.util.spec_from_file_location(f"rlrt_user_reward_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        # registered as Python's own import does: @dataclass and pickling look the module up by name
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(spec.name, None)
            raise
        return module
    except SystemExit as err:  # e.g. argparse at module level: its usage line would read as rlrt's own
        raise ValueError(f"importing {target} called sys.exit({err.code!r}) (from {flag} {name}): a reward file must "
                         "not parse the command line or exit when imported; guard that with "
                         "`if __name__ == \"__main__\":`.") from None
    except SyntaxError as err:
        raise ValueError(f"{err.filename or target} line {err.lineno} has a syntax error ({err.msg}); fix it "
                         f"(from {flag} {name}).") from None
    except Exception as err:  # noqa: BLE001 -- user code; any failure to import it gets one line
        frames = [f for f in traceback.extract_tb(err.__traceback__) if path is None or f.filename == str(path)]
        where = f" line {frames[-1].lineno}" if frames and path is not None else ""
        raise ValueError(f"importing {target}{where} failed: {type(err).__name__}: {err} "
                         f"(from {flag} {name}).") from None
