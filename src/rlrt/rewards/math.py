"""Math answer verification that never hangs and never crashes a run.

* ``extract_final_answer`` (pure, linear time): the last ``\\boxed{...}`` with brace matching, looked for after
  the last ``</think>`` when the completion has a think block; configurable fallbacks ("The answer is N",
  ``#### N``); bounded input and answer size.
* ``MathVerifier``: compares an extracted answer with the gold one using math-verify (gold parsed first). The
  comparison runs in a persistent worker *subprocess* that is killed and restarted when an item exceeds its
  time bound, so the bound holds on any thread and inside worker processes (math-verify's own timeouts use
  ``signal.alarm``, which does not). Exact and plain-number matches are decided in-process, without the worker.
* ``accuracy_reward`` / ``format_reward``: TRL reward functions (``prompts, completions, **columns``).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import select
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

from ..text import completion_text

FALLBACKS = ("answer_is", "hash")


@dataclass
class MathRewardConfig:
    """Options of the math verifier.

    Attributes:
        timeout_seconds: bound on one comparison (extraction is linear and not counted).
        max_completion_chars: only the last this-many characters of a completion are searched (answers come last).
        max_answer_chars: a longer extracted answer counts as no answer.
        fallbacks: when there is no ``\\boxed{}``: ``"answer_is"`` ("The (final) answer is N"), ``"hash"``
            (GSM8K's ``#### N``); an empty tuple means boxed only.
        think_close_tag: with a think block, only the text after the last such tag is searched.
    """

    timeout_seconds: float = 3.0
    max_completion_chars: int = 100_000
    max_answer_chars: int = 256
    fallbacks: tuple[str, ...] = FALLBACKS
    think_close_tag: str = "</think>"

    def __post_init__(self):
        self.fallbacks = tuple(self.fallbacks)
        unknown = set(self.fallbacks) - set(FALLBACKS)
        if unknown:
            raise ValueError(f"Unknown answer fallbacks {sorted(unknown)}; choose from {list(FALLBACKS)}.")
        if not self.timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be > 0; got {self.timeout_seconds}.")
        if self.max_completion_chars < 16 or self.max_answer_chars < 1:
            raise ValueError("max_completion_chars must be >= 16 and max_answer_chars >= 1.")


# -------------------------------------------------------------------------------------------- extraction

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_IS = re.compile(r"answer\s*(?:is|:)\s*:?\s*\$?\s*([^\n$]{1,200}?)\s*\$?\s*(?:\.\s*$|\.\s|\n|$)", re.IGNORECASE)
_HASH = re.compile(r"####\s*([^\n]{1,200})")


def extract_boxed(text: str, max_tries: int = 8) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) whose braces close; ``None`` if there is none.

    Linear in ``len(text)`` per try; an unclosed last box (a truncated completion) falls back to an earlier one.
    """
    starts = [m.end() for m in _BOX.finditer(text)]
    for start in reversed(starts[-max_tries:]):
        depth = 1
        for i in range(start, len(text)):
            char = text[i]
            if char == "{" and text[i - 1] != "\\":
                depth += 1
            elif char == "}" and text[i - 1] != "\\":
                depth -= 1
                if depth == 0:
                    return text[start:i].strip()
    return None


def answer_region(text: str, config: MathRewardConfig) -> str:
    """The part of a completion an answer is read from: after the last think tag, if any; the tail otherwise."""
    tag = config.think_close_tag
    if tag and tag in text:
        text = text[text.rindex(tag) + len(tag) :]
    return text[-config.max_completion_chars :]


def extract_final_answer(text: str, config: MathRewardConfig | None = None) -> str | None:
    """The final answer of a completion, or ``None`` (no answer, or longer than ``max_answer_chars``)."""
    config = config or MathRewardConfig()
    region = answer_region(text, config)
    answer = extract_boxed(region)
    if answer is None and "answer_is" in config.fallbacks:
        matches = _ANSWER_IS.findall(region[-4000:])
        answer = matches[-1].strip() if matches else None
    if answer is None and "hash" in config.fallbacks:
        matches = _HASH.findall(region[-4000:])
        answer = matches[-1].strip() if matches else None
    if not answer or len(answer) > config.max_answer_chars:
        return None
    return answer


# ------------------------------------------------------------------------------------------- comparison

# Power towers, long exponents and large factorials make sympy evaluate enormous integers inside C code, where
# no signal can stop it. Such answers are compared as normalised strings only ("guarded"), never parsed.
_EXPLOSIVE = re.compile(r"\^\s*\{[^{}]*\^|\^\s*\{?\s*\d{4,}|\*\*\s*\(?\s*\d{4,}|\d{3,}\s*!|\}\s*!|!\s*!")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_NUMBER = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$|^[-+]?\.\d+$")


def normalize_answer(answer: str) -> str:
    """A canonical string for cheap exact matches: no ``$``, spacing commands, ``\\left``/``\\right``, text wrappers,
    trailing period or surrounding spaces."""
    s = answer.strip().strip("$").strip()
    s = _TEXT_WRAPPER.sub(r"\1", s)
    for token in ("\\left", "\\right", "\\!", "\\,", "\\;", "\\ ", "\\displaystyle", "dfrac", "tfrac"):
        s = s.replace(token, "frac" if token in ("dfrac", "tfrac") else "")
    s = re.sub(r"\s+", "", s).rstrip(".")
    return s.lower()


def as_number(answer: str) -> Fraction | None:
    """Plain decimal numbers (thousands separators allowed) as exact fractions; ``None`` for anything else."""
    s = normalize_answer(answer)
    if not _NUMBER.match(s):
        return None
    return Fraction(s.replace(",", ""))


class MathVerifier:
    """math-verify comparisons in a killable worker subprocess (see the module docstring).

    ``stats`` counts outcomes: ``fast_match``, ``worker_calls``, ``timeouts``, ``errors``, ``gold_unparseable``,
    ``pred_unparseable``, ``guarded`` (explosive expressions compared as strings only), ``restarts`` (worker
    killed: stuck in C code). An item takes at most
    ``timeout_seconds + KILL_GRACE``, plus a worker start-up (seconds) for the item after a kill. Thread-safe; after a ``fork`` the child starts its own worker.
    """

    STARTUP_TIMEOUT = 120.0
    KILL_GRACE = 0.5  # the worker interrupts itself at the bound; it is killed only this much later

    def __init__(self, timeout_seconds: float = 3.0):
        self.timeout_seconds = timeout_seconds
        self.stats: Counter[str] = Counter()
        self._proc: subprocess.Popen | None = None
        self._spare: subprocess.Popen | None = None
        self._owner_pid = os.getpid()
        self._ready = False
        self._lock = threading.Lock()
        self.worker_command = [sys.executable, "-m", "rlrt.rewards._verify_worker"]
        atexit.register(self.close)

    def close(self) -> None:
        if self._owner_pid == os.getpid():
            self._kill(spare_too=True)

    def _spawn(self) -> subprocess.Popen:
        """Start a worker without waiting for it: its start-up (importing sympy, seconds) overlaps other work."""
        return subprocess.Popen(
            self.worker_command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=dict(os.environ, PYTHONWARNINGS="ignore"),
        )

    def _ready_worker(self) -> subprocess.Popen:
        if self._owner_pid != os.getpid():  # a forked child must not share its parent's pipes
            self._proc = self._spare = None
            self._owner_pid = os.getpid()
        if self._proc is None or self._proc.poll() is not None:
            self._proc, self._spare = (self._spare or self._spawn()), None
            self._ready = False
        if not self._ready:
            if self._readline(self._proc, self.STARTUP_TIMEOUT) is None:
                self._kill()
                raise RuntimeError(
                    "The math-verify worker did not start; check that `python -m rlrt.rewards._verify_worker` runs."
                )
            self._ready = True
        return self._proc

    def _kill(self, spare_too: bool = False) -> None:
        procs = [self._proc, self._spare] if spare_too else [self._proc]
        self._proc = None
        if spare_too:
            self._spare = None
        for proc in procs:
            if proc is not None:
                proc.kill()
                proc.wait()

    def start(self) -> None:
        """Start the worker in the background (no wait): its seconds of start-up overlap e.g. model loading."""
        with self._lock:
            if self._proc is None and self._spare is None:
                self._spare = self._spawn()

    def warm_up(self) -> None:
        """Start the worker now and wait until it is ready (otherwise the first comparison does)."""
        with self._lock:
            self._ready_worker()

    @staticmethod
    def _readline(proc: subprocess.Popen, timeout: float) -> dict | None:
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = proc.stdout.readline()
        return json.loads(line) if line else None

    def _ask(self, gold: str, pred: str) -> dict | None:
        with self._lock:
            proc = self._ready_worker()
            self.stats["worker_calls"] += 1
            try:
                proc.stdin.write(json.dumps({"gold": gold, "pred": pred, "timeout": self.timeout_seconds}) + "\n")
                proc.stdin.flush()
                reply = self._readline(proc, self.timeout_seconds + self.KILL_GRACE)
            except (BrokenPipeError, OSError, ValueError):
                reply = None
            if reply is not None and reply.get("timeout"):
                self.stats["timeouts"] += 1
            if reply is None:  # stuck in C code past the bound, or dead: kill it, a fresh one serves the next item
                self.stats["timeouts"] += 1
                self.stats["restarts"] += 1
                self._kill()
                # After a timeout keep a warm spare, so the next item does not wait for a start-up.
                self._spare = self._spare or self._spawn()
            return reply

    def verify(self, gold: str, pred: str | None) -> bool | None:
        """``True``/``False`` for a parseable gold answer; ``None`` when the gold answer itself cannot be parsed."""
        gold = "" if gold is None else str(gold).strip()
        if not gold:
            self.stats["gold_unparseable"] += 1
            return None
        if pred is None:
            return False
        if normalize_answer(gold) == normalize_answer(pred):
            self.stats["fast_match"] += 1
            return True
        gold_number, pred_number = as_number(gold), as_number(pred)
        if gold_number is not None and pred_number is not None:
            self.stats["fast_match"] += 1
            return gold_number == pred_number
        if _EXPLOSIVE.search(gold) or _EXPLOSIVE.search(pred):
            self.stats["guarded"] += 1
            return False
        reply = self._ask(gold, pred)
        if reply is None:
            return False
        if reply.get("error"):
            self.stats["errors"] += 1
        if not reply["gold_ok"]:
            self.stats["gold_unparseable"] += 1
            return None
        if not reply["pred_ok"]:
            self.stats["pred_unparseable"] += 1
        return bool(reply["correct"])


_DEFAULT_VERIFIER: MathVerifier | None = None


def default_verifier() -> MathVerifier:
    global _DEFAULT_VERIFIER
    if _DEFAULT_VERIFIER is None:
        _DEFAULT_VERIFIER = MathVerifier(MathRewardConfig().timeout_seconds)
    return _DEFAULT_VERIFIER


# --------------------------------------------------------------------------------------- reward functions


def make_accuracy_reward(config: MathRewardConfig | None = None, verifier: MathVerifier | None = None, answer_column: str = "answer"):
    """A TRL reward function scoring 1.0/0.0 against the ``answer_column`` column; ``None`` for an unparseable gold."""
    config = config or MathRewardConfig()
    verifier = verifier or (default_verifier() if config.timeout_seconds == MathRewardConfig.timeout_seconds
                            else MathVerifier(config.timeout_seconds))

    def accuracy_reward(completions, **kwargs) -> list[float | None]:
        if answer_column not in kwargs:
            raise ValueError(
                f"accuracy_reward needs the gold answers in a {answer_column!r} dataset column; the batch has "
                f"{sorted(k for k in kwargs if k not in ('trainer_state', 'log_extra', 'log_metric'))}. "
                "Add or rename the column (see rlrt.data)."
            )
        golds = kwargs[answer_column]
        before = Counter(verifier.stats)
        rewards: list[float | None] = []
        no_answer = 0
        for completion, gold in zip(completions, golds, strict=True):
            pred = extract_final_answer(completion_text(completion), config)
            no_answer += pred is None
            verdict = verifier.verify(gold, pred)
            rewards.append(None if verdict is None else float(verdict))
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and rewards:
            delta = Counter(verifier.stats)
            delta.subtract(before)
            log_metric("accuracy/no_answer_frac", no_answer / len(rewards))
            log_metric("accuracy/timeouts", float(delta["timeouts"]))
            log_metric("accuracy/gold_unparseable", float(delta["gold_unparseable"]))
        return rewards

    accuracy_reward.start = verifier.start  # lets a runner start the verifier's worker while the model loads
    return accuracy_reward


accuracy_reward = make_accuracy_reward()
accuracy_reward.__doc__ = "Math accuracy (1.0/0.0) of the final \\boxed{} answer against the `answer` column."


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
