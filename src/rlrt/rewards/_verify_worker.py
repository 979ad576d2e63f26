"""Worker process for ``MathVerifier``: JSON lines in, JSON lines out; math-verify does all parsing here, and
reasoning-gym's scorers run here too (``{"rg_task", "rg_config", "rg_index", "answer"}`` requests: some of them
``eval()`` the model's answer, which must neither hang nor touch the training process).

A request is ``{"gold", "text" | "pred", "timeout", "options"}``: ``text`` is the part of a completion an answer
is read from, with math-verify's own patterns and parsing (``\\boxed{}``, several boxes, "final answer is",
"answer:", math spans, numbers in prose), the final answer chosen among them by position as a careful human
reads it (``choose_answer``: the last answer statement, self-corrections and retractions included, a mention
of the word "answer" is no statement, a truncated completion has no unstated answer; option letters for a
multiple-choice gold); ``pred`` is an already extracted
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


# A dash between the word "answer" and the value ("Final answer - 8120", "Answer — 12") separates them like a colon;
# it is no minus sign on the value.
_ANSWER_DASH = re.compile(r"(?<![\w-])(answer)[ \t]+[-–—][ \t]+(?=\S)", re.IGNORECASE)


# A full stop inside display math ("$$6 \cdot 7 = 42.$$") makes the span unparseable for math-verify.
_DISPLAY_FULL_STOP = re.compile(r"(?<=\S)\.[ \t]*(?=\$\$|\\\])")


def normalize_text(text: str) -> str:
    """What math-verify reads: Markdown bold markers and escaped dollar signs (``\\$5.00``, a currency sign that
    would hide the number from math-verify's readers) dropped, a full stop at the end of display math dropped,
    negated answer sentences no anchor, a dash after "answer" a colon, loose minus signs attached, SI digit groups
    joined."""
    text = _MARKDOWN_BOLD.sub(r"\2", text).replace("\\$", "").replace("−", "-")
    text = _ANSWER_DASH.sub(r"\1: ", _NEGATED_ANCHOR.sub("value", _DISPLAY_FULL_STOP.sub("", text)))
    return normalize_digit_groups(_LOOSE_MINUS.sub("-", text))


# An unevaluated sum or difference of plain numbers ("9 + 8", "4 + 1 + 2 - 2") is the question restated or a step
# of the work, not an answer: math-verify evaluates it, so "9 + 8 = rejuvenation." would equal a gold 17. Such an
# extracted answer counts as none (unless the gold is written the same way). Products, quotients and powers stay
# answers ("3 \times 10^5", "1/2"), and so do sums with a symbol or a radical ("1 + \sqrt{2}", "2 + 3i").
_NUMBER = r"\(?\s*-?\d+(?:\.\d+)?\s*\)?"
_UNEVALUATED_SUM = re.compile(rf"{_NUMBER}(?:\s*[+-]\s*{_NUMBER})+")


def is_unevaluated_sum(answer: str | None) -> bool:
    """``"9 + 8"`` -> True; ``"17"``, ``"-5"``, ``"1 + \\sqrt{2}"``, ``"3 \\times 10^5"`` -> False."""
    return bool(answer) and bool(_UNEVALUATED_SUM.fullmatch(answer.strip().strip("$").rstrip(".").strip()))


_MATH_DELIMITERS = ("$", "\\(", "\\[", "\\boxed", "\\fbox")

# Which final answer a careful human reads. math-verify ranks its anchors (priority 0: "final answer is X. I hope
# it is correct."; 50: boxes and "final answer ... is X"; 100: "answer: X"; 200: "answer ... X"; 300: math spans and
# numbers in prose, no anchor) and takes the rightmost match of the best rank, so an earlier box beats a later
# "the correct answer is 15" (a self-correction), and "To answer this, note 5 + 7 = 12" beats the last sentence.
# rlrt keeps math-verify's patterns, ranks and parsing, and reads further as a careful human does
# (``choose_answer``): only an answer STATEMENT is an anchor (a box, a final-answer sentence, or "answer" followed
# by a copula or colon right before the value; not "this answer is reasonable since ... 10", not "to verify the
# answer: ..."); math-verify's choice among the statements is replaced by a LATER one that is a box, a final-answer
# sentence or "Answer: X" (colon form, anywhere on a line), or by any later statement after a retraction ("Wait,
# I made a mistake ... so the answer is 15"); a retraction after the final statement hands the answer to the last
# value after it; with no statement, the last math span or number before any closing commentary ("This makes sense
# because ..."), and a value not stated as the answer counts only in a finished completion (a truncated one has
# none).
STRONG_PRIORITY = 50  # math-verify's final-answer sentences and boxes
EMPHATIC_PRIORITY = 100  # ... and "Answer: X": these replace an earlier statement
ANSWER_WORD_PRIORITIES = (100, 200)  # math-verify's "answer: X" and "answer ... X"
_ANSWER_WORD = re.compile(r"(?:final answer|answer)", re.IGNORECASE)
_WORD_PATTERNS = ("(?i:answer)", "(?i:final answer")  # how math-verify's anchored patterns begin
_GSM8K_MARK = re.compile(r"\s*####\s*\$?")
_ANSWER_STARTS = re.compile(r"(?=final answer|answer)", re.IGNORECASE)
# "answer" + at most a few words + a copula or colon (+ an adverb) right before the value, or before an equation
# whose right side is the value: "answer is", "answer to the question is", "answer: the area is", "answer should
# be", "answer is x =", "answer = ". Not "this answer is reasonable since it exceeds the", nor "to answer this,
# note 5 + 7 =".
_STATEMENT_GAP = re.compile(
    r"(?:\s*=|[^.!?\n]{0,40}?(?:\b(?:is|was|are|be|equals?)\b|:))"
    r"(?:\s+(?:therefore|thus|then|now|actually|indeed|simply|just|still|clearly|exactly|hence)\b)?"
    r"(?:[^.!?\n=]{0,40}=)?\s*",
    re.IGNORECASE)
_VALUE_IN_GAP = re.compile(r"\\boxed|\\fbox|\$[^$]*\d[^$]*\$")  # "final answer is $\boxed{9}$ apples, which is 3"
_CHECKING = re.compile(r"\b(?:verif|check|confirm|validat|test|examin|double-check)\w*\b[^.!?\n]{0,30}$",
                       re.IGNORECASE)  # "To verify the answer: 42 / 6 = 7" mentions the answer
_RETRACTION_WORDS = (
    r"wait|oops|I (?:have |think I )?made (?:a|an) (?:\w+ )?(?:mistake|error)|my (?:mistake|error|bad)"
    r"|I was wrong|(?:'s|\bis|\bwas) (?:wrong|incorrect|not (?:right|correct))"
    r"|I (?:forgot|missed|overlooked|should have)|miscalculat\w*|mis-?(?:add|count|read|calculat)\w*|correction")
_RETRACTION = re.compile(rf"\b(?:{_RETRACTION_WORDS})\b", re.IGNORECASE)
_COLON_FORM = re.compile(r"[ \t]*:")  # "answer:" / "answer :" right after the word
_HEADING = re.compile(r"[\s#*>•-]*(?:(?:the|my|our)\s+)?(?:final\s+)?", re.IGNORECASE)
# Before a later answer statement, also a milder revision replaces the earlier one ("Actually, the correct answer
# is 15"); after the final statement only a retraction hands the answer to an unstated value ("Actually, this
# matches the 12 we had" is no retraction).
_REVISION = re.compile(rf"\b(?:{_RETRACTION_WORDS}|actually|instead|rather|mistakes?|errors?|wrong|reconsider\w*"
                       r"|re-?(?:calculat|evaluat|check|do)\w*|correct answer|corrected|second thought|hmm)\b",
                       re.IGNORECASE)
_GAP_DELIMITERS = " \t\n*$:\\([{-•"  # math and Markdown openers, list bullets
_FINISHED_END = tuple(".!?)]}$>*\"'`")


def is_answer_statement(text: str, start: int, value_start: int, priority: int) -> bool:
    """Whether math-verify's match at ``text[start:]`` (of that priority, its value read at ``value_start``) states
    the answer: a box or "The final answer is X. I hope it is correct." always; "answer" followed by a copula or
    colon right before the value (``"answer is "``, ``"answer to the question is $"``, ``"Answer: "``), unless it
    is checked ("to verify the answer: ..."); not a mere mention ("this answer is reasonable since ... the 10")."""
    if priority == 0 or _GSM8K_MARK.fullmatch(text, text.rfind("\n", 0, value_start) + 1, value_start):
        return True  # "#### 18": GSM8K's final-answer line
    word = _ANSWER_WORD.match(text, start)
    if word is None or priority > max(ANSWER_WORD_PRIORITIES):
        return word is None and priority <= STRONG_PRIORITY  # a box
    if _CHECKING.search(text[max(0, start - 40) : start]):
        return False
    raw = text[word.end() : value_start]
    gap = raw.rstrip(_GAP_DELIMITERS)
    if gap == "":  # "Answer: 12", "**Answer** 12" at a line's start; not "a common mistake is to answer 12"
        return ":" in raw or bool(_HEADING.fullmatch(text, text.rfind("\n", 0, start) + 1, start))
    return bool(_STATEMENT_GAP.fullmatch(gap)) and not _VALUE_IN_GAP.search(gap)


def box_end(text: str, start: int, limit: int) -> int:
    """The end of the ``\\boxed{...}`` at ``text[start:]`` (its braces matched), or ``limit`` if it does not close."""
    depth = 0
    for i in range(text.find("{", start, limit), limit):
        if i < 0:
            break
        depth += {"{": 1, "}": -1}.get(text[i], 0) if text[i - 1] != "\\" else 0
        if depth == 0:
            return i + 1
    return limit


def _last(candidates, indices) -> int | None:
    """The rightmost candidate (end); then the better anchor; then the longer match (several boxes)."""
    return min(indices, key=lambda i: (-candidates[i][1], candidates[i][2], candidates[i][0]), default=None)


def _is_emphatic(text: str, candidate: tuple[int, int, int, int]) -> bool:
    """A box, a final-answer sentence, "#### X", "Answer: X" in colon form wherever it stands ("Final Answer: X",
    "So the answer: X", "Answer : X"; not "the answer to part (a): X"), or "Answer X" heading a line."""
    start, _, priority, value_start = candidate
    if priority <= STRONG_PRIORITY or _GSM8K_MARK.fullmatch(text, text.rfind("\n", 0, value_start) + 1, value_start):
        return True
    if priority > max(ANSWER_WORD_PRIORITIES):
        return False
    word = _ANSWER_WORD.match(text, start)
    if word is not None and _COLON_FORM.match(text, word.end()):
        return True
    return priority <= EMPHATIC_PRIORITY and bool(_HEADING.fullmatch(text, text.rfind("\n", 0, start) + 1, start))


def _final_statement(text: str, candidates: list[tuple[int, int, int, int]], stated: list[bool]) -> int | None:
    """The answer statement a careful human takes as final: math-verify's choice among the statements (best
    anchor, then rightmost), unless a later statement replaces it: a box, a final-answer sentence or "Answer: X"
    (``_is_emphatic``) anywhere after it, or any statement after a retraction ("Wait, I made a mistake")."""
    statements = [i for i, s in enumerate(stated) if s]
    if not statements:
        return None
    top = min(candidates[i][2] for i in statements)
    best = _last(candidates, (i for i in statements if candidates[i][2] == top))
    end = candidates[best][1]
    later = [i for i in statements if candidates[i][0] >= end and (
        _is_emphatic(text, candidates[i]) or _REVISION.search(text, end, candidates[i][1]))]
    return _last(candidates, later) if later else best


def unanchored_from(text: str, candidates: list[tuple[int, int, int, int]]) -> int | None:
    """Where the values not stated as the answer (math-verify's priority-300 matches) can matter to
    ``choose_answer`` given the anchored ``candidates``: ``None`` when the final answer statement is not retracted
    (they cannot), else the end of the retraction, or 0 with no statement. Saves scanning long completions."""
    best = _final_statement(text, candidates, [is_answer_statement(text, c[0], c[3], c[2]) for c in candidates])
    if best is None:
        return 0
    retraction = _RETRACTION.search(text, candidates[best][1])
    return None if retraction is None else retraction.end()


# Commentary after an unstated answer ("So the total is 17. This makes sense because 17 is less than the 25 we
# started with."): sentences that check or comment on the result, whose numbers are not the answer.
_COMMENTARY = re.compile(
    r"\(?(?:(?:this|that|it|which|our answer|the answer|the result)\s+(?:makes sense|is reasonable|is consistent"
    r"|checks out|matches|seems (?:right|reasonable)|is correct|is (?:less|more|smaller|larger|greater|bigger) than"
    r"|is between|does not depend)|note(?:\s+that|:)|we used|check(?:ing)?:|verification:|as a (?:sanity )?check"
    r"|i hope|hope this|let me know|(?<=\()(?:since|because|where|assuming))\b", re.IGNORECASE)
_SENTENCE_START = re.compile(r"(?:(?<=[.!?])\s+|\n\s*|\s+(?=\())(?=\S)")


def commentary_start(text: str) -> int:
    """Where a trailing run of commentary sentences begins (``len(text)`` when the text does not end with one)."""
    cut = len(text)
    for start in sorted((m.end() for m in _SENTENCE_START.finditer(text)), reverse=True):
        if start >= cut:
            continue
        if not _COMMENTARY.match(text, start):
            break
        cut = start
    return cut


def choose_answer(text: str, candidates: list[tuple[int, int, int, int]]) -> int | None:
    """The index of the final answer among math-verify's matches ``(start, end, priority, value_start)`` in
    ``text``, as in the rules above; ``None`` when there is none (nothing read, or a truncated completion)."""
    stated = [is_answer_statement(text, c[0], c[3], c[2]) for c in candidates]
    best = _final_statement(text, candidates, stated)
    if best is not None:
        retraction = _RETRACTION.search(text, candidates[best][1])
        later = [] if retraction is None else [i for i, c in enumerate(candidates)
                                               if not stated[i] and c[0] >= retraction.end()]
        if not later:
            return best
        best = _last(candidates, later)
    else:
        cut = commentary_start(text)
        before = [i for i, c in enumerate(candidates) if c[1] <= cut]
        best = _last(candidates, before or range(len(candidates)))
    return best if best is not None and is_finished(text, candidates[best][1]) else None


_UNIT_TAIL = re.compile(r"\s*(?:[^\W\d_]+\s*){0,2}")  # "5 apples", "12 square feet"


def is_finished(text: str, match_end: int) -> bool:
    """Whether a completion ends like a finished answer: with the value read and at most two words after it
    (``#### 18``, ``- 5 apples``), or with a closing punctuation mark or delimiter. A completion cut off
    mid-sentence ("First, 3 x 4 = 12. Then we add the") has no final answer."""
    rest = text.rstrip()
    return rest.endswith(_FINISHED_END) or bool(_UNIT_TAIL.fullmatch(rest, match_end))


# Multiple choice: a gold that is one option letter ("B", "(B)", "\textbf{(B)}") is matched by the option letter of
# the final answer: "\boxed{B}", "(B)", AMC's "\textbf{(B)}\ 42" (the option and its value). math-verify would
# read "\textbf{(B)}\ 42" as the product b*42 and cannot read "(B)" in prose, so for such a gold an option in
# parentheses in prose becomes a math span, and the letter is read from the string math-verify extracted.
_CHOICE_GOLD = re.compile(r"\$?\s*(?:\\text(?:bf|rm)?\{\s*)?\(?([A-E])\)?\s*\}?\s*\$?")
_CHOICE_ANSWER = re.compile(
    r"\s*(?:\\(?:text(?:bf|rm)?|math(?:bf|rm))\{\s*)?(?:\(([A-E])\).*|([A-E])\s*\}?\s*\.?\s*)",
    re.DOTALL | re.IGNORECASE)
_PROSE_CHOICE = re.compile(r"(?<![\w\\{$])\(([A-E])\)(?![\w$])")
_LONE_CHOICE = re.compile(r"(\A|\n)[\s#*]*([A-E])[\s*.]*\Z")  # a last line that is only the option: "**B**"


def choice_letter(gold: str) -> str | None:
    """The option letter of a multiple-choice gold answer (``"B"``, ``"(B)"``, ``"$\\textbf{(B)}$"``), else None."""
    match = _CHOICE_GOLD.fullmatch(gold.strip())
    return match.group(1) if match else None


def chosen_letter(extracted: str) -> str | None:
    """The option letter an extracted answer names (``"B"``, ``"(B) 42"``, ``"\\text{(B)} 42"``), else None."""
    match = _CHOICE_ANSWER.fullmatch(extracted)
    return None if match is None else (match.group(1) or match.group(2)).upper()



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
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, StringExtractionConfig, parse, verify
    from math_verify.parser import extract_match, get_extraction_regexes

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

    choice_targets = [*targets, StringExtractionConfig(strings=tuple("ABCDE"), try_extract_without_anchor=False)]

    def value_start(match) -> int:
        starts = [match.start(name) for name, value in match.groupdict().items()
                  if value is not None and "percent" not in name]
        return min(starts, default=match.end())

    def match_end(match) -> int:
        # math-verify's plain-box pattern runs greedily to the text's last "}" and reads the last box inside it:
        # its position is where that box closes.
        if match.groupdict().get("first_latexBoxed") is None:
            return match.end()
        return box_end(match.string, match.string.rfind("\\boxed", match.start(), match.end()), match.end())

    def read_final_answer(text: str, targets: list) -> list:
        """math-verify's matches, chosen by ``choose_answer``; parsed like ``parse`` in ``first_match`` mode (the
        chosen match, or its text when it does not parse; ``[]`` for none)."""
        patterns = [(pattern, priority, target) for patterns, target in get_extraction_regexes(targets)
                    for pattern, priority in patterns]

        words = [m.start() for m in _ANSWER_STARTS.finditer(text)]  # "Final answer": both words

        def find(pattern, pos: int):
            # The patterns that begin with "answer" are tried at each occurrence of it: non-overlapping matches
            # would let "answer is \boxed{12}. Actually, the correct answer is 15" hide the second statement.
            if pattern.pattern.startswith(_WORD_PATTERNS):
                return [m for m in (pattern.match(text, w) for w in words if w >= pos) if m is not None]
            return list(pattern.finditer(text, pos))

        def scan(anchored: bool, pos: int = 0) -> list:
            return [(match, priority, target) for pattern, priority, target in patterns
                    if (priority <= max(ANSWER_WORD_PRIORITIES)) == anchored for match in find(pattern, pos)]

        def spans(matches: list) -> list:
            return [(m.start(), match_end(m), priority, value_start(m)) for m, priority, _ in matches]

        matches = scan(anchored=True)
        pos = 0 if "####" in text else unanchored_from(text, spans(matches))  # "#### X" is a plain match
        if pos is not None:
            matches += scan(anchored=False, pos=pos)
        chosen = choose_answer(text, spans(matches))
        if chosen is None:
            return []
        match, _, target = matches[chosen]
        parsed, string = extract_match(match, target)
        return [parsed, string] if parsed is not None else [string] if string else []

    def parse_pred(request: dict, choice: str | None):
        if request.get("text") is not None:
            text = normalize_text(request["text"])
            if not choice:
                return read_final_answer(text, targets)
            return read_final_answer(_LONE_CHOICE.sub(r"\1Answer: \2", _PROSE_CHOICE.sub(r"$(\1)$", text)),
                                     choice_targets)
        return parse("\\boxed{" + normalize_digit_groups(request["pred"]) + "}", targets, parsing_timeout=None)

    def grade_math(request: dict, reply: dict) -> None:
        options = request.get("options", {})
        reply.update({"gold_ok": False, "pred_ok": False, "correct": False, "extracted": None})
        gold = parse_gold(request["gold"])
        reply["gold_ok"] = bool(gold)
        if gold:
            choice = choice_letter(request["gold"])
            pred = parse_pred(request, choice)
            strings = [p for p in pred if isinstance(p, str)]
            reply["extracted"] = (strings or [str(pred[0])])[0][:300] if pred else None
            too_long = reply["extracted"] is not None and len(reply["extracted"]) > options.get(
                "max_answer_chars", 10**9)
            restated = is_unevaluated_sum(reply["extracted"]) and not is_unevaluated_sum(request["gold"])
            reply["pred_ok"] = bool(pred) and not too_long and not restated
            letter = chosen_letter(reply["extracted"]) if choice and reply["pred_ok"] else None
            if letter:
                reply["correct"] = letter == choice
                return
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
