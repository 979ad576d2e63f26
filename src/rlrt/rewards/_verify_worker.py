"""Worker process for ``MathVerifier``: JSON lines in, JSON lines out; math-verify does all parsing here, and
reasoning-gym's scorers run here too (``{"rg_task", "rg_config", "rg_index", "answer"}`` requests: some of them
``eval()`` the model's answer, which must neither hang nor touch the training process).

A request is ``{"gold", "text" | "pred", "timeout", "options"}``: ``text`` is the part of a completion an answer
is read from, extracted with math-verify's own extraction (``\\boxed{}``, several boxes, "final answer is",
"answer:", math spans, numbers in prose, in math-verify's priority order); ``pred`` is an already extracted
answer (the strict ``\\boxed{}``-only mode), parsed as ``\\boxed{pred}``. ``options`` are math-verify's ``verify``
arguments (``float_rounding``, ``numeric_precision``, ``strict``, ``allow_set_relation_comp``) plus
``max_answer_chars``.

Time bound: this process's main thread interrupts a slow item itself with ``SIGALRM`` (sympy loops in Python
stop there, and the worker lives on); a computation stuck inside C code cannot be interrupted that way, so the
parent also kills this process a little after the bound. Math-verify's own ``signal.alarm`` timeouts are
disabled (they only work on a main thread of the *calling* process).

This module imports only the standard library at the top: the parent imports its rules (``normalize_digit_groups``,
``EXPLOSIVE``) without sympy, and the worker is started from this file's path, without importing ``rlrt`` (and
so torch), which keeps its start-up short.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import sys

# Power towers, long exponents and large factorials make sympy evaluate enormous integers inside C code, where no
# signal can stop it. Such answers are never parsed, only compared as strings ("guarded").
EXPLOSIVE = re.compile(r"\^\s*\{[^{}]*\^|\^\s*\{?\s*\d{4,}|\*\*\s*\(?\s*\d{4,}|\d{3,}\s*!|\}\s*!|!\s*!")

# SI digit grouping: "6 000", "6\u2009000", "6\\,000", "1 234 567.5" are one number. math-verify reads a space
# or thin space inside LaTeX as a product ("6 000" -> 6*0 = 0, so equal to a gold 0), so the groups are joined
# before math-verify sees the text (gold and completion alike). A group is exactly three digits.
_GROUP_SEP = r"(?:[ \u00a0\u2009\u202f]|\\,|\\ |\\;|\\:|~)"
_DIGIT_GROUPS = re.compile(r"(?<![\d.,])(\d{1,3})((?:" + _GROUP_SEP + r"\d{3})+)(?![\d])")
_SEP = re.compile(_GROUP_SEP)


def normalize_digit_groups(text: str) -> str:
    """Join SI thousands groups (``"6 000"`` -> ``"6000"``); other text is unchanged."""
    return _DIGIT_GROUPS.sub(lambda m: m.group(1) + _SEP.sub("", m.group(2)), text)


# Markdown emphasis around an answer ("The answer is **73**.") would reach math-verify's expression reader as
# the operators "**"; the markers of a closed pair on one line are dropped.
_MARKDOWN_BOLD = re.compile(r"(\*\*|__)(?=\S)([^\n]*?\S)\1")


# A sign math-verify's prose reader would drop, leaving the number positive ("The answer is − 5."): the minus
# sign U+2212, an en dash, a hyphen with a space after it (not a list bullet at a line's start), and "negative"
# before a number become a plain "-" on the number.
_LOOSE_MINUS = re.compile(r"(?:(?<![\w)\]}.])[−–]|(?<=[ (=:])-|(?<![\w-])negative)[ \t]?(?=\d)")


# A negated answer sentence ("The answer is not 5. It is 6.") is no anchor: math-verify would read 5 from it.
_NEGATED_ANCHOR = re.compile(r"\banswer(?=\s*(?:is|was)?\s*(?:not\b|n't\b))", re.IGNORECASE)


def normalize_text(text: str) -> str:
    """What math-verify reads: Markdown bold markers and escaped dollar signs (``\\$5.00``, a currency sign that
    would hide the number from math-verify's readers) dropped, negated answer sentences no anchor, loose minus
    signs attached, SI digit groups joined."""
    text = _MARKDOWN_BOLD.sub(r"\2", text).replace("\\$", "").replace("−", "-")
    text = _NEGATED_ANCHOR.sub("value", text)
    return normalize_digit_groups(_LOOSE_MINUS.sub("-", text))


_MATH_DELIMITERS = ("$", "\\(", "\\[", "\\boxed", "\\fbox")


class ItemTimeout(BaseException):
    """Not an ``Exception``: library code that catches every ``Exception`` (scorers do) must not swallow it."""


def _on_alarm(signum, frame):
    raise ItemTimeout()


def _guard_parsing(parser_module) -> None:
    """Never let sympy parse an explosive expression (see ``EXPLOSIVE``): math-verify's two parse entry points fail
    on one, so that match counts as unparsed and only its string is compared."""
    for name in ("parse_latex_cached", "parse_expr_cached"):
        original = getattr(parser_module, name, None)
        if original is None:  # another math-verify version: the time bound still holds, only the guard is lost
            continue

        def guarded(text, _original=original):
            if EXPLOSIVE.search(text):
                raise ValueError("explosive expression: not parsed")
            return _original(text)

        setattr(parser_module, name, guarded)


def main() -> None:
    logging.disable(logging.WARNING)
    import math_verify.parser
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    _guard_parsing(math_verify.parser)
    targets = [LatexExtractionConfig(), ExprExtractionConfig()]  # math-verify's defaults

    def parse_gold(gold: str):
        # A gold answer with its own math delimiters is read as written; bare LaTeX ("\frac{1}{2}", "x^2+1")
        # as if it were boxed. The other reading is the fallback when the first gives nothing usable.
        gold = normalize_text(gold)
        boxed = "\\boxed{" + gold + "}"
        readings = (gold, boxed) if any(d in gold for d in _MATH_DELIMITERS) else (boxed, gold)
        for text in readings:
            parsed = parse(text, targets, parsing_timeout=None)
            if any(not isinstance(p, str) for p in parsed):
                return parsed
        return parse(readings[0], targets, parsing_timeout=None)

    def parse_pred(request: dict):
        if request.get("text") is not None:
            return parse(normalize_text(request["text"]), targets, extraction_mode="first_match",
                         parsing_timeout=None)
        return parse("\\boxed{" + normalize_digit_groups(request["pred"]) + "}", targets, parsing_timeout=None)

    def grade_math(request: dict, reply: dict) -> None:
        options = request.get("options", {})
        reply.update({"gold_ok": False, "pred_ok": False, "correct": False, "extracted": None})
        gold = parse_gold(request["gold"])
        reply["gold_ok"] = bool(gold)
        if gold:
            pred = parse_pred(request)
            strings = [p for p in pred if isinstance(p, str)]
            reply["extracted"] = (strings or [str(pred[0])])[0][:300] if pred else None
            too_long = reply["extracted"] is not None and len(reply["extracted"]) > options.get(
                "max_answer_chars", 10**9)
            reply["pred_ok"] = bool(pred) and not too_long
            reply["correct"] = reply["pred_ok"] and bool(verify(
                gold, pred, float_rounding=options.get("float_rounding", 6),
                numeric_precision=options.get("numeric_precision", 15), strict=options.get("strict", True),
                allow_set_relation_comp=options.get("allow_set_relation_comp", False), timeout_seconds=None))

    rg_datasets: dict = {}
    rg_entries: dict = {}

    def grade_rg(request: dict, reply: dict) -> None:
        # Building the task and its entry is reasoning-gym's own code: bounded generously ("prepare_timeout").
        # Scoring runs the task's scorer on the model's answer (some scorers eval() it): the item's bound.
        task, config_json, index = request["rg_task"], request["rg_config"], int(request["rg_index"])
        signal.setitimer(signal.ITIMER_REAL, float(request.get("prepare_timeout", 60.0)))
        key = (task, config_json)
        if key not in rg_datasets:
            import reasoning_gym

            try:
                rg_datasets[key] = reasoning_gym.create_dataset(task, **json.loads(config_json))
            except (KeyError, ValueError, TypeError) as err:
                reply["build_error"] = f"{type(err).__name__}: {err}"[:300]
                return
        if (key, index) not in rg_entries:
            rg_entries[(key, index)] = rg_datasets[key][index]
        entry = rg_entries[(key, index)]
        reply["entry_answer"] = None if entry["answer"] is None else str(entry["answer"])
        signal.setitimer(signal.ITIMER_REAL, float(request.get("timeout", 3.0)))
        reply["score"] = float(rg_datasets[key].score_answer(request.get("answer"), entry))

    signal.signal(signal.SIGALRM, _on_alarm)
    out = sys.stdout
    sys.stdout = sys.stderr  # a library's print() must not break the protocol
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        reply = {"error": None, "timeout": False}
        signal.setitimer(signal.ITIMER_REAL, float(request.get("timeout", 3.0)))
        try:
            (grade_rg if "rg_task" in request else grade_math)(request, reply)
        except ItemTimeout:
            reply["timeout"] = True
        except Exception as exc:  # noqa: BLE001 -- any parser or scorer failure is a reply, never a dead worker
            reply["error"] = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
