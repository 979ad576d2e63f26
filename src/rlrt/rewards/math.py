"""Math answer verification that never hangs and never crashes a run.

* What is read as the answer: by default (``answer_format="any"``) math-verify's own patterns and parsing, run on
  the part of the completion after the last ``</think>``: ``\\boxed{}`` (several boxes together are one answer),
  "The final answer is X. I hope it is correct.", "answer: X", math spans (``$..$``, ``\\(..\\)``, ``\\[..\\]``) and
  numbers in prose, units and percent signs after a span; the final answer is chosen among them by position as a
  careful human reads it: the last answer statement (a later "the correct answer is 15" beats an earlier box), a
  retraction after it hands the answer to the later value, a mere mention of "answer" is no statement, and a
  truncated completion has no unstated answer (``_verify_worker.choose_answer``). ``answer_format="boxed"`` reads
  only the last ``\\boxed{}`` (for runs that force the format).
* ``MathVerifier``: math-verify's ``parse`` and ``verify`` in a persistent worker *subprocess* that is killed and
  restarted when an item exceeds its time bound, so the bound holds on any thread and inside worker processes
  (math-verify's own timeouts use ``signal.alarm``, which does not). A plain number in a lone final box against a
  plain-number gold is decided in-process (``fast_verdict``), by a rule that agrees with the worker (tested).
* ``extract_boxed`` / ``extract_final_answer``: pure, linear-time box extraction with brace matching.

The reward functions built on this are in ``rlrt.rewards.grading``.
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
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from ..text import check_option_keys
from ._verify_worker import EXPLOSIVE

ANSWER_FORMATS = ("any", "boxed")


@dataclass
class MathRewardConfig:
    """Options of math answer grading; the comparison options are math-verify's ``verify`` arguments, with its
    defaults.

    Attributes:
        answer_format: ``"any"``: math-verify's extraction (boxes, answer sentences, math spans, numbers in prose;
            the last stated answer wins, see the module docstring);
            ``"boxed"``: only the last ``\\boxed{}`` counts (a strict format for training runs).
        timeout_seconds: bound on one item (parsing and comparison in the worker).
        max_completion_chars: only the last this-many characters of a completion are searched (answers come last).
        max_answer_chars: a longer extracted answer counts as no answer.
        think_close_tag: with a think block, only the text after the last such tag is searched; a completion that
            opens a think block and never closes it has no answer.
        float_rounding: decimal places floats are rounded to before comparing (math-verify default 6).
        numeric_precision: significant digits of numeric evaluation (math-verify default 15); e.g. with
            ``float_rounding=2`` the answer 0.43 matches a gold 3/7.
        strict: ``False`` matches variables by position (``h(b)`` equals ``h(a)``) and sets with tuples.
        allow_set_relation_comp: ``True`` compares a relation with a set (``2 \\le z \\le 6`` with
            ``z \\in [2,6]``); math-verify otherwise does so only when the answer is the set.

    Raises ``ValueError`` naming the field on a bad value.
    """

    answer_format: str = "any"
    timeout_seconds: float = 3.0
    max_completion_chars: int = 100_000
    max_answer_chars: int = 256
    think_close_tag: str = "</think>"
    float_rounding: int = 6
    numeric_precision: int = 15
    strict: bool = True
    allow_set_relation_comp: bool = False

    def __post_init__(self):
        if self.answer_format not in ANSWER_FORMATS:
            raise ValueError(f"answer_format must be one of {list(ANSWER_FORMATS)}; got {self.answer_format!r}.")
        if not self.timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be > 0; got {self.timeout_seconds}.")
        if self.max_completion_chars < 16 or self.max_answer_chars < 1:
            raise ValueError("max_completion_chars must be >= 16 and max_answer_chars >= 1.")
        if self.float_rounding < 0 or self.numeric_precision < 1:
            raise ValueError("float_rounding must be >= 0 and numeric_precision >= 1.")

    @classmethod
    def from_options(cls, options: str | dict | None) -> MathRewardConfig:
        """A config from JSON text or a dict of field values (``--reward_options``); ``None`` gives the defaults.

        Raises ``ValueError`` in one line naming the bad field or the JSON error.
        """
        if options is None or options == "":
            return cls()
        if isinstance(options, str):
            try:
                options = json.loads(options)
            except json.JSONDecodeError as err:
                raise ValueError(f"--reward_options is not valid JSON ({err}); "
                                 "e.g. '{\"answer_format\": \"boxed\"}'.") from None
        if not isinstance(options, dict):
            raise ValueError(f"--reward_options must be a JSON object of MathRewardConfig fields; got {options!r}.")
        check_option_keys(options, cls.__dataclass_fields__, "--reward_options (MathRewardConfig)")
        try:
            return cls(**options)
        except TypeError as err:
            raise ValueError(f"--reward_options: a field has the wrong type ({err}); see MathRewardConfig.") from None

    def verify_options(self) -> dict:
        """What the worker needs besides the texts."""
        keys = ("float_rounding", "numeric_precision", "strict", "allow_set_relation_comp", "max_answer_chars")
        return {k: v for k, v in asdict(self).items() if k in keys}


# -------------------------------------------------------------------------------------------- extraction

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")


def extract_boxed(text: str, max_tries: int = 8) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) whose braces close; ``None`` if there is none.

    Linear in ``len(text)`` per try; an unclosed last box (a truncated completion) falls back to an earlier one.
    """
    span = _last_box_span(text, max_tries)
    return None if span is None else text[span[0] : span[1]].strip()


def _last_box_span(text: str, max_tries: int = 8) -> tuple[int, int] | None:
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
                    return start, i
    return None


def answer_region(text: str, config: MathRewardConfig) -> str:
    """The part of a completion an answer is read from: after the last think tag, if any; the tail otherwise; empty
    when the completion opens a think block (``<think>`` for ``</think>``) and never closes it: it was cut off while
    thinking and gave no answer."""
    tag = config.think_close_tag
    if tag and tag in text:
        text = text[text.rindex(tag) + len(tag) :]
    elif tag and tag.startswith("</") and "<" + tag[2:] in text:
        return ""
    return text[-config.max_completion_chars :]


def extract_final_answer(text: str, config: MathRewardConfig | None = None) -> str | None:
    """The last ``\\boxed{}`` answer of a completion (after its think block), or ``None`` (none, or longer than
    ``max_answer_chars``). This is the whole extraction of ``answer_format="boxed"``; the default format reads
    more (see the module docstring) and is done by math-verify in the worker."""
    config = config or MathRewardConfig()
    answer = extract_boxed(answer_region(text, config))
    if not answer or len(answer) > config.max_answer_chars:
        return None
    return answer


# ------------------------------------------------------------------------------------------- comparison

_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?")
_AFTER_LONE_BOX = re.compile(r"[\s$.\\\])]*")  # closing math delimiters and a full stop
_FLOAT_DIGITS = 15  # sympy's default Float precision: longer decimals are left to the worker


def plain_number(text: str) -> Fraction | None:
    """``-12``, ``0.5``, ``3.250`` as exact fractions; ``None`` for anything else (signs ``+``, leading zeros,
    commas, spaces, percent, exponents: their reading is math-verify's to decide)."""
    text = text.strip()
    return Fraction(text) if _PLAIN_NUMBER.fullmatch(text) else None


def _significant_digits(text: str) -> int:
    return len(text.strip().lstrip("-").replace(".", "").lstrip("0"))


def lone_final_box(region: str) -> str | None:
    """The content of the region's only ``\\boxed{}``/``\\fbox{}`` when nothing but closing delimiters and a full
    stop follow it and no "I hope it is correct" sentence (math-verify's one anchor above boxes) is present:
    then math-verify's extraction reads exactly this box. ``None`` otherwise."""
    if len(_BOX.findall(region)) != 1 or "hope" in region.lower():
        return None
    span = _last_box_span(region)
    if span is None or not _AFTER_LONE_BOX.fullmatch(region, span[1] + 1):
        return None
    return region[span[0] : span[1]]


def fast_verdict(gold: str, pred: str | None, float_rounding: int = 6) -> bool | None:
    """The verdict for two plain numbers without math-verify, or ``None`` (ask the worker).

    Agrees with math-verify's ``verify`` (property-tested): integers compare exactly; when a decimal is involved
    math-verify rounds both to ``float_rounding`` places, so equal values are equal, values more than
    ``2 * 10**-float_rounding`` apart are not (rounding moves each by at most a quarter of that), and anything
    closer, or longer than sympy's 15-digit floats, is left to the worker.
    """
    if pred is None:
        return None
    gold_number, pred_number = plain_number(gold), plain_number(pred)
    if gold_number is None or pred_number is None:
        return None
    if gold_number.denominator == 1 and pred_number.denominator == 1 and "." not in gold + pred:
        return gold_number == pred_number
    if max(_significant_digits(gold), _significant_digits(pred)) > _FLOAT_DIGITS:
        return None
    if gold_number == pred_number:
        return True
    if abs(gold_number - pred_number) > Fraction(2, 10**float_rounding):
        return False
    return None


def _canonical(answer: str) -> str:
    return re.sub(r"\s+", "", answer.strip().strip("$")).rstrip(".")


def worker_command(script: Path) -> list[str]:
    """``python`` running ``script`` as ``__main__`` without putting its folder on ``sys.path``."""
    code = f"import sys, runpy; sys.path.pop(0); runpy.run_path({str(script)!r}, run_name='__main__')"
    return [sys.executable, "-c", code]


class MathVerifier:
    """math-verify comparisons in a killable worker subprocess (see the module docstring).

    ``stats`` counts outcomes: ``fast_match``, ``worker_calls``, ``timeouts``, ``errors``, ``gold_unparseable``,
    ``pred_unparseable`` (no answer found or parsed), ``guarded`` (explosive expressions compared as strings
    only), ``restarts`` (worker killed: stuck in C code). An item takes at most ``timeout_seconds + KILL_GRACE``,
    plus a worker start-up (about a second) for the item after a kill. Thread-safe; after a ``fork`` the child
    starts its own worker.
    """

    STARTUP_TIMEOUT = 120.0
    PREPARE_TIMEOUT = 60.0  # building a reasoning-gym task and entry in the worker (its own code, not the model's)
    KILL_GRACE = 0.5  # the worker interrupts itself at the bound; it is killed only this much later

    def __init__(self, timeout_seconds: float = 3.0):
        self.timeout_seconds = timeout_seconds
        self.stats: Counter[str] = Counter()
        self._proc: subprocess.Popen | None = None
        self._spare: subprocess.Popen | None = None
        self._owner_pid = os.getpid()
        self._ready = False
        self._prepared: set[tuple] = set()  # reasoning-gym entries the current worker has built
        self._lock = threading.Lock()
        # Run from the file's path, not `-m rlrt...`: importing the package would import torch (seconds). runpy
        # does not put the file's folder (which holds this `math.py`) on sys.path, where it would shadow `math`.
        worker = Path(__file__).with_name("_verify_worker.py")
        self.worker_command = worker_command(worker)
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
            self._prepared = set()
        if not self._ready:
            if self._readline(self._proc, self.STARTUP_TIMEOUT) is None:
                self._kill()
                raise RuntimeError(
                    f"The math-verify worker did not start; check that `{' '.join(self.worker_command)}` runs."
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

    def _ask(self, request: dict, prepare_key: tuple | None = None) -> dict | None:
        with self._lock:
            proc = self._ready_worker()
            self.stats["worker_calls"] += 1
            wait = self.timeout_seconds + self.KILL_GRACE
            if prepare_key is not None and prepare_key not in self._prepared:
                wait += self.PREPARE_TIMEOUT
            try:
                proc.stdin.write(json.dumps({**request, "timeout": self.timeout_seconds,
                                             "prepare_timeout": self.PREPARE_TIMEOUT}) + "\n")
                proc.stdin.flush()
                reply = self._readline(proc, wait)
                if reply is not None and prepare_key is not None and "entry_answer" in reply:
                    self._prepared.add(prepare_key)
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

    def score_rg(self, task: str, config_json: str, index: int, answer: str | None) -> dict:
        """reasoning-gym's score of ``answer`` for a row's entry, computed in the worker (see ``rlrt.rewards.rg``).

        Returns ``{"score": float, "entry_answer": str | None}``; ``score`` is 0.0 when the scorer fails or
        exceeds the time bound. Raises ``ValueError`` when reasoning-gym cannot build the task.
        """
        request = {"rg_task": task, "rg_config": config_json, "rg_index": int(index), "answer": answer}
        reply = self._ask(request, prepare_key=(task, config_json, int(index)))
        if reply is not None and reply.get("build_error"):
            raise ValueError(f"reasoning-gym cannot rebuild task {task!r} with {config_json} to score it: "
                             f"{reply['build_error']}. The rg_task/rg_config columns must come from "
                             "rlrt.data.load_reasoning_gym.")
        if reply is not None and reply.get("error"):
            self.stats["errors"] += 1
        if reply is None or "score" not in reply:  # timed out, or the scorer failed on this answer
            return {"score": 0.0, "entry_answer": (reply or {}).get("entry_answer")}
        return {"score": reply["score"], "entry_answer": reply.get("entry_answer")}

    def _verdict(self, reply: dict | None) -> bool | None:
        if reply is None or reply.get("timeout"):
            return False
        if reply.get("error"):
            self.stats["errors"] += 1
        if not reply["gold_ok"]:
            self.stats["gold_unparseable"] += 1
            return None
        if not reply["pred_ok"]:
            self.stats["pred_unparseable"] += 1
        return bool(reply["correct"])

    def _guarded(self, gold: str, answer: str | None) -> bool:
        self.stats["guarded"] += 1
        return answer is not None and _canonical(gold) == _canonical(answer)

    def verify(self, gold, pred: str | None, config: MathRewardConfig | None = None) -> bool | None:
        """Is the extracted answer ``pred`` (the content of a ``\\boxed{}``) equal to ``gold``?

        ``True``/``False`` for a parseable gold answer; ``None`` when the gold answer itself cannot be parsed.
        """
        config = config or MathRewardConfig()
        gold = "" if gold is None else str(gold).strip()
        if not gold:
            self.stats["gold_unparseable"] += 1
            return None
        if pred is None:
            return False
        if len(pred) > config.max_answer_chars:
            self.stats["pred_unparseable"] += 1
            return False
        fast = fast_verdict(gold, pred, config.float_rounding)
        if fast is not None:
            self.stats["fast_match"] += 1
            return fast
        if EXPLOSIVE.search(gold) or EXPLOSIVE.search(pred):
            return self._guarded(gold, pred)
        return self._verdict(self._ask({"gold": gold, "pred": pred, "options": config.verify_options()}))

    def grade_text(self, gold, text: str, config: MathRewardConfig | None = None) -> bool | None:
        """Is the answer math-verify reads in ``text`` (a completion's answer region) equal to ``gold``?

        ``None`` when the gold answer cannot be parsed. A lone final box holding a plain number is decided
        in-process (``fast_verdict``); everything else is parsed and compared in the worker.
        """
        config = config or MathRewardConfig()
        gold = "" if gold is None else str(gold).strip()
        if not gold:
            self.stats["gold_unparseable"] += 1
            return None
        if not text.strip():
            self.stats["pred_unparseable"] += 1
            return False
        lone = lone_final_box(text)
        fast = None if lone is None else fast_verdict(gold, lone, config.float_rounding)
        if fast is not None:
            self.stats["fast_match"] += 1
            return fast
        if EXPLOSIVE.search(gold):
            return self._guarded(gold, extract_boxed(text))
        return self._verdict(self._ask({"gold": gold, "text": text, "options": config.verify_options()}))


_DEFAULT_VERIFIER: MathVerifier | None = None


def default_verifier() -> MathVerifier:
    """The process-wide verifier (default time bound), started on first use."""
    global _DEFAULT_VERIFIER
    if _DEFAULT_VERIFIER is None:
        _DEFAULT_VERIFIER = MathVerifier(MathRewardConfig().timeout_seconds)
    return _DEFAULT_VERIFIER


def verifier_for(config: MathRewardConfig) -> MathVerifier:
    """The shared verifier when ``config`` keeps the default time bound, a new one otherwise."""
    if config.timeout_seconds == MathRewardConfig.timeout_seconds:
        return default_verifier()
    return MathVerifier(config.timeout_seconds)


def grade_math(completion_text_: str, gold, config: MathRewardConfig, verifier: MathVerifier) -> bool | None:
    """Extract the answer from a completion's text as ``config.answer_format`` says, then verify it."""
    if config.answer_format == "boxed":
        return verifier.verify(gold, extract_final_answer(completion_text_, config), config)
    return verifier.grade_text(gold, answer_region(completion_text_, config), config)
