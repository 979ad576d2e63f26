"""Grading as a careful human would (issue 13): math-verify's extraction, the plain-number shortcut that never
disagrees with it, its comparison options, and reasoning-gym rows graded by their own scorer."""

from __future__ import annotations

import random
import time
from fractions import Fraction

import pytest

from rlrt.data.registry import load_task
from rlrt.evaluation.evaluate import score_samples
from rlrt.rewards import (
    MathRewardConfig,
    MathVerifier,
    accuracy_reward,
    grade,
    grade_batch,
    grading_columns,
    reasoning_gym_reward,
)
from rlrt.rewards.math import fast_verdict, lone_final_box
from rlrt.rewards.rg import RG_COLUMNS

TIMEOUT = 3.0


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(timeout_seconds=TIMEOUT)
    v.warm_up()
    yield v
    v.close()


# Each kind of fault of issue 13, with the grade a careful human gives.
ISSUE_CASES = [
    # 1. no anchor the extractor knew: the value is in prose or a math span
    ("31", "Adding the parts gives a total of $31$.", 1.0),
    ("6", r"Answer \( 6 \)", 1.0),
    ("6", "Answer $$ 6 $$", 1.0),
    ("6", r"Answer \[ 6 \]", 1.0),
    ("$y \\le 4$", r"So $y \leq 4$ is the solution.", 1.0),
    # 2. the answer sentence, bold
    ("12.5", "Final Answer: The final answer is 12.5. I hope it is correct.", 1.0),
    ("9", "Final Answer: The greatest $m$ is 9.", 1.0),
    ("73", "The answer is **73**.", 1.0),
    ("73", "Final Answer: **73**", 1.0),
    # 3. several boxes that together are the answer
    ("$3, 7$", r"The roots are \boxed{3} and \boxed{7}.", 1.0),
    ("$p = 2, q = 9$", r"\boxed{p = 2} \quad\text{and}\quad \boxed{q = 9}", 1.0),
    ("$(2,5),(5,2)$", r"\boxed{(2, 5)}, \boxed{(5, 2)}", 1.0),
    # 4. an intermediate box does not beat the final answer sentence
    ("8120", r"First, the first part is \boxed{120}. Then we add. Final Answer: The final answer is $8,120$.", 1.0),
    # 5. units or percent after the math span
    ("$45\\%$", "The answer is $45$ %.", 1.0),
    ("7", "The answer is $7$ cm.", 1.0),
    # 6. decimal commas and digit groups
    ("0,125", r"\boxed{0.125}", 1.0),
    ("6000", r"\boxed{6 000}", 1.0),
    ("6000", "\\boxed{6\u2009000}", 1.0),
    ("6000", r"\boxed{6\,000}", 1.0),
    # an escaped dollar sign; an explosive expression after the final box (never parsed, never in the way)
    ("5", r"The cost is \$5.00.", 1.0),
    ("5", r"The remainder is $\boxed{5}$, since $2^{2024} \equiv 5 \pmod 7$.", 1.0),
    # 7. math-verify's defaults: these are different answers unless an option says otherwise
    ("$\\frac{3}{7}$", r"\boxed{0.43}", 0.0),
    ("$h(a)$", r"\boxed{h(b)}", 0.0),
    ("$z \\in [2,6]$", r"\boxed{2 \le z \le 6}", 0.0),
]


@pytest.mark.parametrize("gold, completion, expected", ISSUE_CASES)
def test_issue_cases(verifier, gold, completion, expected):
    assert grade(completion, gold, verifier=verifier) == expected


@pytest.mark.parametrize(
    "gold, completion, option",
    [
        ("$\\frac{3}{7}$", r"\boxed{0.43}", {"float_rounding": 2}),
        ("$h(a)$", r"\boxed{h(b)}", {"strict": False}),
        ("$z \\in [2,6]$", r"\boxed{2 \le z \le 6}", {"allow_set_relation_comp": True}),
    ],
)
def test_math_verify_options_in_the_config(verifier, gold, completion, option):
    assert grade(completion, gold, MathRewardConfig(**option), verifier) == 1.0
    assert grade(completion, gold, MathRewardConfig(), verifier) == 0.0


# Wrong answers in every style: none may be graded correct.
WRONG = [
    ("31", "Adding the parts gives a total of $32$."),
    ("6", r"Answer \( 7 \)"),
    ("$y \\le 4$", r"So $y < 4$ is the solution."),
    ("$y \\le 4$", r"So $y \geq 4$ is the solution."),
    ("12.5", "Final Answer: The final answer is 12.25. I hope it is correct."),
    ("9", "Final Answer: The greatest $m$ is 8."),
    ("73", "The answer is **37**."),
    ("$3, 7$", r"The roots are \boxed{3} and \boxed{8}."),
    ("$3, 7$", r"The root is \boxed{7}."),
    ("$p = 2, q = 9$", r"\boxed{p = 9} \quad\text{and}\quad \boxed{q = 2}"),
    ("8120", r"The answer is \boxed{8,121}, not 8120 as first thought? No: \boxed{8,121}."),
    ("120", r"So the first part is \boxed{120}. Final Answer: The final answer is $8,120$."),
    ("$45\\%$", "The answer is $54$ %."),
    ("0", r"\boxed{6\,000}"),
    ("0", "\\boxed{6\u2009000}"),
    ("0", r"\boxed{6 000}"),
    ("0,125", r"\boxed{125}"),
    ("1,5", r"\boxed{15}"),
    ("6000", r"\boxed{600}"),
    ("$(2,5)$", r"\boxed{[2,5]}"),
    ("$\\frac{1}{2}$", r"The answer is $\frac{1}{3}$."),
    ("-3", r"\boxed{3}"),
    ("5", "The answer is not 5. It is 6."),
    ("5", "The final answer isn't 5; it is 6."),
    ("5", "I could not solve it."),
    ("5", ""),
    ("10", r"The answer is \boxed{10^{10^{10^{10}}}}"),
]


@pytest.mark.parametrize("completion", ["The answer is \u22125.", "The answer is \u2013 5.", "The answer is - 5.",
                                        "The answer is negative 5.", "\\boxed{\u22125}"])
def test_a_sign_written_loosely_is_never_lost(verifier, completion):
    """A typographic minus, a dash or "negative" before the number: -5, never the positive gold 5."""
    assert grade(completion, "-5", verifier=verifier) == 1.0
    assert grade(completion, "5", verifier=verifier) == 0.0


def test_a_negated_answer_sentence_is_no_anchor(verifier):
    assert grade("The answer is not 5. It is 6.", "6", verifier=verifier) == 1.0
    assert grade("The answer is notably 5.", "5", verifier=verifier) == 1.0


def test_hyphens_that_are_not_signs_keep_their_meaning(verifier):
    assert grade("Answer:\n- 5 apples", "5", verifier=verifier) == 1.0  # a list bullet
    assert grade("Pages 3\u20135 give 2.", "2", verifier=verifier) == 1.0  # a range
    assert grade("So x - 2 = 0 gives x = 2.", "2", verifier=verifier) == 1.0


@pytest.mark.parametrize("gold, completion", WRONG)
def test_wrong_answers_are_never_graded_correct(verifier, gold, completion):
    assert grade(completion, gold, verifier=verifier) == 0.0


def test_strict_boxed_format_reads_only_the_last_box(verifier):
    boxed = MathRewardConfig(answer_format="boxed")
    assert grade("The answer is $31$.", "31", boxed, verifier) == 0.0
    assert grade(r"So \boxed{31}.", "31", boxed, verifier) == 1.0
    assert grade(r"\boxed{5} then \boxed{31}", "31", boxed, verifier) == 1.0
    assert grade(r"<think>\boxed{31}</think> no box", "31", boxed, verifier) == 0.0
    assert grade(r"<think>\boxed{30}</think> \boxed{31}", "31", MathRewardConfig(), verifier) == 1.0


# ------------------------------------------------- the audit's kinds: which stated answer is the final one

# Each kind found by the independent audit (benchmarks/data/grading_cases_audit.py), with the grade a careful human
# gives; the wrong-gold rows were all graded 1 (false positives) before the audit.
AUDIT_KINDS = [
    # a later answer statement beats an earlier box or final-answer sentence (self-corrections)
    ("12", "Thus the answer is $\\boxed{12}$.\n\nHmm, wait. I mis-added: $7 + 8 = 15$. So the correct answer is 15.",
     0.0),
    ("15", "Thus the answer is $\\boxed{12}$.\n\nHmm, wait. I mis-added: $7 + 8 = 15$. So the correct answer is 15.",
     1.0),
    ("30", "So the total is $\\boxed{30}$.\n\nActually, I need to subtract the 6 overlapping pairs: $30 - 6 = 24$.\n\n"
     "Answer: 24", 0.0),
    ("24", "So the total is $\\boxed{30}$.\n\nActually, I need to subtract the 6 overlapping pairs: $30 - 6 = 24$.\n\n"
     "Answer: 24", 1.0),
    ("30", "Final Answer: The final answer is 30. I hope it is correct.\n\nActually, I need to subtract the 6 "
     "overlapping pairs, so the final answer is 24.", 0.0),
    ("\\frac{1}{2}", "The probability is $\\boxed{\\frac{1}{2}}$.\n\nWait, both coins must show heads.\n\n"
     "Final answer: $\\frac{1}{4}$", 0.0),
    ("120", "The first part is $\\boxed{120}$. Adding the second part, the total is $8{,}120$.\n\nAnswer: 8120", 0.0),
    ("8120", "The first part is $\\boxed{120}$. Adding the second part, the total is $8{,}120$.\n\nAnswer: 8120", 1.0),
    # a retraction after the last statement hands the answer to the last value after it
    ("12", "$\\boxed{12}$\n\nWait, actually I should subtract the 3 defective ones: $12 - 3 = 9$.", 0.0),
    ("12", "The answer is $\\boxed{12}$. Hmm, wait, I made a mistake: it should be 15 since I forgot the 3 extra.",
     0.0),
    ("12", "The answer is $\\boxed{12}$. Wait, let me double check: $3 \\times 4 = 12$. Yes, that's correct.", 1.0),
    # "answer" mentioned, not stated: no anchor
    ("12", "To answer this, note that $5 + 7 = 12$. Then doubling gives $24$.", 0.0),
    ("24", "To answer this, note that $5 + 7 = 12$. Then doubling gives $24$.", 1.0),
    ("15", "She answered 15 questions correctly out of 20, so her score is 75%.", 0.0),
    ("10", "The final answer is 15. This answer is reasonable because it is more than the 10 we started with.", 0.0),
    ("15", "The final answer is 15. This answer is reasonable because it is more than the 10 we started with.", 1.0),
    ("7", "Therefore, the answer is $\\boxed{42}$.\n\nTo verify the answer: $42 / 6 = 7$ rows.", 0.0),
    ("42", "Therefore, the answer is $\\boxed{42}$.\n\nTo verify the answer: $42 / 6 = 7$ rows.", 1.0),
    ("3", "So our final answer is $\\boxed{9}$ apples, which is 3 more than the 6 she had.", 0.0),
    ("9", "So our final answer is $\\boxed{9}$ apples, which is 3 more than the 6 she had.", 1.0),
    # a truncated completion has no unanchored answer; a finished one does
    ("12", "Let's compute step by step. First, $3 \\times 4 = 12$. Then we add the", 0.0),
    ("48", "The floor is 6 by 8, so there are 48 square feet and each tile covers", 0.0),
    ("25", "The first 5 odd numbers sum to 25. For the next part we consider the sequence $a_n = ", 0.0),
    ("14", "So she has 14 marbles left", 1.0),
    ("18", "She sells them for $2 each: 9 * 2 = 18 dollars.\n#### 18", 1.0),
    # a completion cut off inside its think block gave no answer; a later "**Answer:** X" heading replaces a box
    ("12", "<think>\nLet me compute. 3 * 4 = 12. So the answer is 12. But wait, the question asks for", 0.0),
    ("12", "<think>\nLet me compute. 3 * 4 = 12.\n</think>\n\nThe answer is $\\boxed{12}$.", 1.0),
    ("12", "So the total is $\\boxed{30}$.\n\n**Answer:** 12", 1.0),
    ("30", "So the total is $\\boxed{30}$.\n\n**Answer:** 12", 0.0),
    ("30", "So the total is $\\boxed{30}$.\n\nFinal answer: 24", 0.0),  # "answer:" inside "Final answer:"
    ("24", "So the total is $\\boxed{30}$.\n\nFinal answer: 24", 1.0),
    # GSM8K's "#### X" line states the answer; "I forgot" retracts
    ("17", "So the result is $\\boxed{17}$.\n\n#### 23", 0.0),
    ("23", "So the result is $\\boxed{17}$.\n\n#### 23", 1.0),
    ("17", "The answer is 17.\n\nActually, I forgot to subtract the broken ones.\n\nSo the total is 23.", 0.0),
    ("23", "The answer is 17.\n\nActually, I forgot to subtract the broken ones.\n\nSo the total is 23.", 1.0),
    # closing commentary after an unstated answer is not the answer
    ("25", "So the total is 17.\n\nThis makes sense because 17 is less than the 25 we started with.", 0.0),
    ("17", "So the total is 17.\n\nThis makes sense because 17 is less than the 25 we started with.", 1.0),
    ("7", "So the total is 17. (We used the 10 blue and 7 green marbles.)", 0.0),
    ("4", "We need $x^2 = 16$, so $x = 4$ (since $x > 0$).", 1.0),
    # a full stop inside display math
    ("42", "Multiplying the two counts, the number of ways is\n$$6 \\cdot 7 = 42.$$", 1.0),
    ("48", "Multiplying the two counts, the number of ways is\n$$6 \\cdot 7 = 42.$$", 0.0),
    # multiple choice: the option letter of the final answer
    ("B", "Comparing the options, the answer is (B).", 1.0),
    ("D", "Comparing the options, the answer is (B).", 0.0),
    ("C", "$\\textbf{(C) }12$", 1.0),
    ("B", "The answer is $\\boxed{\\textbf{(B)}\\ 42}$", 1.0),
    ("C", "The answer is $\\boxed{\\textbf{(D)}}$.", 0.0),
    ("B", "**B**", 1.0),
    ("B", "Let's check each option. (A) is too small, (C) too big. The answer is B.", 1.0),
    ("C", "Let's check each option. (A) is too small, (C) too big. The answer is B.", 0.0),
]


@pytest.mark.parametrize("gold, completion, expected", AUDIT_KINDS)
def test_the_last_stated_answer_is_the_final_one(verifier, gold, completion, expected):
    assert grade(completion, gold, verifier=verifier) == expected


# A later final-answer statement in colon form replaces an earlier box wherever it stands on the line (found by a
# new-user test: each read 120 before); a plain restatement with a copula or an "answer to ...:" does not.
COLON_FORM_CASES = [
    (r"... \boxed{120} ... Answer: 8120", "8120", "120"),
    (r"So the first part is \boxed{120} and then we add. Answer: 8120", "8120", "120"),
    (r"First part \boxed{120}. Final Answer: 8120", "8120", "120"),
    (r"First part \boxed{120}. final answer: 8120", "8120", "120"),
    (r"First part \boxed{120}. Therefore, Answer: 8120", "8120", "120"),
    (r"First part \boxed{120}. So the answer: 8120.", "8120", "120"),
    (r"First part \boxed{120}. So the final answer: 8120.", "8120", "120"),
    (r"First part \boxed{120}. My answer: 8120", "8120", "120"),
    (r"First part \boxed{120}. **Answer:** 8120", "8120", "120"),
    (r"First part \boxed{120}. Answer : 8120", "8120", "120"),
    (r"First part \boxed{120}. ANSWER: 8120", "8120", "120"),
    ("\\boxed{120}\nAnswer: 8120", "8120", "120"),
    # a dash after "answer" separates like a colon: no minus sign on the value
    (r"First part \boxed{120}. Final answer - 8120", "8120", "-8120"),
    ("Final answer - 8120", "8120", "-8120"),
    ("Answer \u2014 12", "12", "-12"),
    ("Final answer: -8120", "-8120", "8120"),
    ("The answer is - 5.", "-5", "5"),
    # not a final-answer statement in colon form: the box stays
    (r"\boxed{36}. The answer to part (a) is 12.", "36", "12"),
    (r"\boxed{36}. The answer to part (a): 12.", "36", "12"),
    (r"\boxed{120}. To verify the answer: 120 / 6 = 20.", "120", "20"),
    (r"The answer is \boxed{120}. Checking the answer: 8120 - 8000 = 120.", "120", "8120"),
]


@pytest.mark.parametrize("completion, read, not_read", COLON_FORM_CASES)
def test_a_later_answer_in_colon_form_replaces_an_earlier_box_anywhere_on_the_line(verifier, completion, read,
                                                                                   not_read):
    assert grade_batch([completion, completion], [read, not_read], verifier=verifier) == [1.0, 0.0]


# Every completion docs/grading.md gives as an example, with what the doc says it reads (None: no answer) and a
# value it must not read; each must stand in the doc verbatim, so the doc and the grader cannot drift apart.
DOC_EXAMPLES = [
    (r"... \boxed{120} ... Answer: 8120", "8120", "120"),
    (r"First part \boxed{120}. Final Answer: 8120", "8120", "120"),
    ("So the answer: 8120.", "8120", "-8120"),
    ("Final answer - 8120", "8120", "-8120"),
    (r"The answer is \boxed{12}. Hmm, wait. I mis-added ... So the correct answer is 15.", "15", "12"),
    (r"\boxed{36}. The answer to part (a) is 12.", "36", "12"),
    (r"\boxed{36}. The answer to part (a): 12.", "36", "12"),
    (r"\boxed{12}. Wait, I should subtract the 3 defective ones: 12 - 3 = 9.", "9", "12"),
    ("So the total is 17. This makes sense because 17 is less than the 25 we started with.", "17", "25"),
    ("so $x = 4$ (since $x > 0$).", "4", "0"),
    ("The answer is 5", "5", "6"),
    ("The answer to the question is $5$", "5", "6"),
    ("Answer: 5", "5", "6"),
    ("Final Answer: The greatest $m$ is 9", "9", "6"),
    (r"final answer is $\boxed{9}$ apples, which is 3 more", "9", "3"),
    ("9 + 8 = rejuvenation.", None, "17"),
    ("I think 9 + 8 is hard", None, "17"),
    (r"The answer is \boxed{9+8}", None, "17"),
    ("First, 3 × 4 = 12. Then we add the", None, "12"),
    ("The answer is **73**.", "73", "-73"),
    (r"costs \$5.00", "5", "500"),
    ("The answer is not 5. It is 6.", "6", "5"),
    (r"$$6 \cdot 7 = 42.$$", "42", "0"),
    ("The answer is – 5.", "-5", "5"),
    ("6 000", "6000", "0"),
    (r"6\,000", "6000", "0"),
    (r"\boxed{\textbf{(B)}\ 42}", "B", "A"),
    (r"$\textbf{(C) }12$", "C", "B"),
    # its known limits: what it reads, as the doc says
    ("The roots are 3 and 7.", "7", "3"),
    ("So the total is 17. We had 25 before.", "25", "17"),
    ("she has 14 marbles left over", None, "14"),
    ("Answer: 6 rows times 7 chairs is 42.", "6", "42"),
    (r"\boxed{12}. Wait, the 3 rows of 4 give it.", "4", "12"),
    ("The answer to part (a) is 9. For part (b)", "9", "3"),
]


def test_every_example_in_the_grading_doc_grades_as_the_doc_says(verifier):
    import re
    from pathlib import Path

    doc = re.sub(r"\s*\n\s*", " ", (Path(__file__).resolve().parents[1] / "docs" / "grading.md").read_text())
    assert [c for c, _, _ in DOC_EXAMPLES if f"`{c}`" not in doc] == []
    right = [(c, r) for c, r, _ in DOC_EXAMPLES if r is not None]
    wrong = [(c, w) for c, _, w in DOC_EXAMPLES]
    grades = grade_batch([c for c, _ in right + wrong], [g for _, g in right + wrong], verifier=verifier)
    assert [case for case, g in zip(right, grades) if g != 1.0] == []
    assert [case for case, g in zip(wrong, grades[len(right):]) if g != 0.0] == []


ANSWER_FORMS = {
    "box": "So the result is $\\boxed{%s}$.",
    "answer_is": "The answer is %s.",
    "answer_colon": "Answer: %s",
    "final_colon": "Final answer: %s",
    "bold": "**Answer:** %s",
    "minerva": "Final Answer: The final answer is %s. I hope it is correct.",
    "gsm8k": "#### %s",
    "display": "$$%s$$",
    "prose": "So the total is %s.",
}


def test_a_revised_answer_in_any_form_replaces_an_earlier_one_in_any_form(verifier):
    """Every pair of answer forms: 17 stated first, a retraction, 23 stated last: 23 is the answer, 17 is not."""
    golds, completions = [], []
    for first in ANSWER_FORMS.values():
        for last in ANSWER_FORMS.values():
            text = (first % "17") + "\n\nWait, I made a mistake in the second step: I forgot the broken ones.\n\n" + (
                last % "23")
            golds += ["23", "17"]
            completions += [text, text]
    grades = grade_batch(completions, golds, verifier=verifier)
    assert [(g, c) for g, c, x in zip(golds, completions, grades) if x != float(g == "23")] == []


def test_numbers_in_a_check_or_commentary_after_the_answer_are_not_the_answer(verifier):
    """Every answer form, then a check or a comment that mentions other numbers of the problem: still 17."""
    tails = ["\n\nLet me verify: $10 + 7 = 17$. Yes, that is correct.", "\n\nWait, let me double-check: 10 + 7 = 17.",
             "\n\nThis makes sense because 17 is less than the 25 we started with.",
             " (We used the 10 blue and 7 green marbles.)", "\n\nI hope this helps!"]
    golds, completions = [], []
    for form in ANSWER_FORMS.values():
        for tail in tails:
            text = "We add the blue and green marbles: 10 + 7 = 17.\n\n" + (form % "17") + tail
            golds += ["17", "25", "10", "7"]
            completions += [text] * 4
    grades = grade_batch(completions, golds, verifier=verifier)
    assert [(g, c) for g, c, x in zip(golds, completions, grades) if x != float(g == "17")] == []


def test_answer_choice_rules_as_pure_functions():
    """The rules of ``choose_answer`` on hand-made match spans ``(start, end, priority, value_start)``."""
    from rlrt.rewards._verify_worker import choose_answer, is_answer_statement, is_finished, unanchored_from

    text = "So \\boxed{12}. Hmm, wait. I mis-added. So the correct answer is 15. Also 16"
    box = (3, 13, 50, 10)
    stated = (text.index("answer is"), text.index("15") + 2, 200, text.index("15"))
    plain = (text.index("16"), len(text), 300, text.index("16"))
    assert is_answer_statement(text, stated[0], stated[3], 200)
    assert choose_answer(text, [box, stated, plain]) == 1  # the later statement, not the box
    assert choose_answer(text, [box, plain]) == 1  # the box is retracted ("wait"): the later value
    assert unanchored_from(text, [box]) == text.index("wait") + len("wait")
    assert unanchored_from("So \\boxed{12}.", [box]) is None  # nothing to retract it: no need to scan further
    assert choose_answer(text[:-3], [box, stated]) == 1
    mention = "This answer is reasonable because it is more than the 10"
    assert not is_answer_statement(mention, 5, mention.index("10"), 200)
    assert not is_answer_statement("To verify the answer: 42 / 6 = 7", 14, 31, 100)
    assert is_answer_statement("Final Answer: The greatest $m$ is 9", 0, 34, 50)
    assert not is_answer_statement("final answer is $\\boxed{9}$ apples, which is 3", 0, 44, 50)
    assert is_answer_statement("Therefore, answer = 12", 11, 20, 200)
    assert not is_answer_statement("To answer this, note that 5 + 7 = 12", 3, 34, 200)
    assert is_finished("So 14 marbles left", 5) and is_finished("It is 12. Done.", 11)
    assert not is_finished("First 12. Then we add the", 8)
    assert choose_answer("First 12. Then we add the", [(6, 8, 300, 6)]) is None
    from rlrt.rewards._verify_worker import commentary_start

    commented = "So the total is 17. This makes sense since 17 < 25. (We used 10 and 7.)"
    assert commented[: commentary_start(commented)] == "So the total is 17. "
    assert commentary_start("So x = 3. Then adding 5 gives 8.") == len("So x = 3. Then adding 5 gives 8.")


# ---------------------------------------------------------------- the shortcut never disagrees with the worker


def _grouped(n: int, sep: str) -> str:
    s, groups = str(n), []
    while len(s) > 3:
        groups.insert(0, s[-3:])
        s = s[:-3]
    return sep.join([s] + groups)


def _render(value: Fraction, rng: random.Random) -> str:
    """A number written in one of many styles: grouping, decimal comma, signs, leading zeros, percent."""
    negative, value = value < 0, abs(value)
    places = rng.choice([0, 0, 1, 2, 3, 6, 7, 9, 17])
    integer, frac = divmod(round(value * 10**places), 10**places)
    style = rng.choice(["plain"] * 4 + ["comma", "space", "thin", "latex_thin", "lead0", "plus", "pct", "latex_pct",
                                        "trailing0", "dot_first"])
    separators = {"comma": ",", "space": " ", "thin": "\u2009", "latex_thin": "\\,"}
    text = _grouped(integer, separators[style]) if style in separators and integer >= 1000 else str(integer)
    if style == "lead0":
        text = "0" * rng.randint(1, 2) + text
    decimals = str(frac).rjust(places, "0") if places else ""
    if style == "trailing0":
        decimals += "0" * rng.randint(1, 2)
    if decimals:
        text += ("," if style == "comma" and integer < 1000 else ".") + decimals  # a decimal comma
        if style == "dot_first" and integer == 0:
            text = text[1:]
    text = ("-" if negative else "+" if style == "plus" else "") + text
    return text + {"pct": "%", "latex_pct": "\\%"}.get(style, "")


def _number_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.3:
            base = Fraction(rng.randint(-50, 50))
        elif kind < 0.5:
            base = Fraction(rng.randint(0, 10**7))
        elif kind < 0.7:
            base = Fraction(rng.randint(-10**6, 10**6), 10 ** rng.randint(1, 4))
        elif kind < 0.8:
            base = Fraction(rng.randint(10**15, 10**20))
        else:
            base = Fraction(rng.randint(0, 10**9), 10 ** rng.randint(3, 9))
        delta = rng.choice([0, 0, 0, Fraction(1, 10**7), Fraction(1, 10**6), Fraction(2, 10**6), Fraction(3, 10**6),
                            Fraction(1, 1000), Fraction(1, 2), 1])
        pairs.append((_render(base, rng), _render(base + rng.choice([1, -1]) * delta, rng)))
    return pairs


BOX_TEMPLATES = [r"\boxed{%s}", r"The answer is $\boxed{%s}$.", r"So we get \[ x = \boxed{%s} \]",
                 r"Final Answer: $\boxed{%s}$", r"The final answer is $y = 3 + \boxed{%s}$"]


def test_plain_number_shortcut_agrees_with_the_worker(verifier):
    """On generated number strings in many styles, wherever the in-process shortcut decides, math-verify in the
    worker (asked directly, without the shortcut) decides the same; and the shortcut decides a good share."""
    config = MathRewardConfig()
    rng = random.Random(1)
    decided, disagreements = 0, []
    for gold, pred in _number_pairs(400, seed=0):
        text = rng.choice(BOX_TEMPLATES) % pred
        lone = lone_final_box(text)
        fast = None if lone is None else fast_verdict(gold, lone, config.float_rounding)
        if fast is None:
            continue
        decided += 1
        worker = verifier._verdict(verifier._ask({"gold": gold, "text": text, "options": config.verify_options()}))
        if fast != worker:
            disagreements.append((gold, text, fast, worker))
    assert disagreements == []
    assert decided >= 60


def test_shortcut_declines_what_math_verify_must_read():
    for gold, pred in [("0,125", "125"), ("6000", "6 000"), ("1,000", "1000"), ("007", "7"), ("+5", "5"),
                       ("50%", "50"), ("12345678901234567.5", "12345678901234568"), ("5", "5.0000001")]:
        assert fast_verdict(gold, pred) is None, (gold, pred)
    assert fast_verdict("5", "5") is True and fast_verdict("5", "6") is False
    assert fast_verdict("0.5", "0.50") is True and fast_verdict("0.5", "0.51") is False
    assert lone_final_box(r"\boxed{1} and \boxed{2}") is None
    assert lone_final_box(r"\boxed{12} cm") is None
    assert lone_final_box(r"The final answer is 3. I hope it is correct. \boxed{4}") is None
    assert lone_final_box(r"so $\boxed{12}$.") == "12"


def test_batched_grading_is_fast_and_bounded(verifier):
    completions = [rf"Step by step... so the total is $\frac{{{i}}}{{2}}$ cm." for i in range(100)]
    completions += [rf"The answer is \boxed{{{i}}}." for i in range(100)]
    golds = [rf"\frac{{{i}}}{{2}}" for i in range(100)] + [str(i) for i in range(100)]
    start = time.perf_counter()
    assert grade_batch(completions, golds, verifier=verifier) == [1.0] * 200
    assert time.perf_counter() - start < 10.0


# ------------------------------------------------------------------------------------------- reasoning-gym


def _rg_row(task: str, index: int = 0, **params):
    dataset = load_task(f"rg:{task}", limit=4, **params)
    row = dataset[index]
    return row, {c: row[c] for c in RG_COLUMNS}


def test_rg_text_tasks_use_reasoning_gym_s_scorer():
    row, columns = _rg_row("spell_backward")
    gold = row["answer"]
    assert grade(rf"\boxed{{{gold}}}", gold, **columns) == 1.0
    assert grade(f"<answer>{gold}</answer>", gold, **columns) == 1.0
    assert grade(rf"\boxed{{{gold[::-1]}}}", gold, **columns) == 0.0  # the unreversed word
    row, columns = _rg_row("word_sorting")
    gold = row["answer"]
    backwards = ", ".join(reversed(gold.split(", ")))
    assert grade(rf"\boxed{{{gold}}}", gold, **columns) == 1.0
    assert grade(rf"\boxed{{{backwards}}}", gold, **columns) == 0.0  # right words, wrong order
    assert grade("no answer", gold, **columns) == 0.0


def test_the_issue_s_rg_strings_score_zero():
    """gold `tnemele` against `element`: reasoning-gym gives part marks (3 letters in place), never full marks."""
    from reasoning_gym import get_score_answer_fn

    entry = {"question": "Spell element backward", "answer": "tnemele", "metadata": {"word": "element"}}

    class OneEntry(MathVerifier):  # reasoning-gym's real scorer, on the issue's entry, without the worker
        def score_rg(self, task, config_json, index, answer):
            return {"score": get_score_answer_fn(task)(answer, entry), "entry_answer": entry["answer"]}

    row = {"rg_task": "spell_backward", "rg_config": "{}", "rg_index": 0, "verifier": OneEntry()}
    assert grade(r"\boxed{element}", "tnemele", **row) == 0.0
    assert grade(r"\boxed{tnemele}", "tnemele", **row) == 1.0
    assert grade("<answer>tnemele</answer>", "tnemele", **row) == 1.0
    assert grade(r"\boxed{element}", "tnemele", partial_credit=True, **row) == pytest.approx(3 / 7)


def test_a_scorer_that_evals_the_answer_is_bounded():
    """spiral_matrix's scorer eval()s the answer: a power tower there is stopped at the item's bound, scores 0."""
    bounded = MathVerifier(timeout_seconds=1.0)
    row, columns = _rg_row("spiral_matrix")
    assert grade(f"<answer>{row['answer']}</answer>", row["answer"], verifier=bounded, **columns) == 1.0
    start = time.perf_counter()
    assert grade("<answer>[9**9**9**9]</answer>", row["answer"], verifier=bounded, **columns) == 0.0
    assert time.perf_counter() - start < 1.0 + MathVerifier.KILL_GRACE + 1.0
    assert bounded.stats["timeouts"] >= 1
    bounded.close()


@pytest.mark.parametrize("task", ["chain_sum", "basic_arithmetic", "arc_agi", "word_ladder", "sudoku"])
def test_rg_gold_answers_get_full_marks(task):
    """The regenerated entry is the row's (tasks whose metadata a JSON round trip would alter included)."""
    row, columns = _rg_row(task)
    assert grade(f"<answer>{row['answer']}</answer>", row["answer"], **columns) == 1.0


def test_rg_rows_through_the_rewards_and_evaluation():
    dataset = load_task("rg:spell_backward", limit=2)
    golds = dataset["answer"]
    completions = [rf"\boxed{{{golds[0]}}}", rf"\boxed{{{golds[1][::-1]}}}"]
    columns = grading_columns(dataset)
    assert set(columns) == set(RG_COLUMNS)
    assert accuracy_reward(completions=completions, answer=golds, **columns) == [1.0, 0.0]
    assert reasoning_gym_reward(completions=completions, answer=golds, **columns) == [1.0, 0.0]
    scores = score_samples([[completions[0]] * 2, [completions[1]] * 2], golds, MathVerifier(), columns=columns)
    assert scores == [[1.0, 1.0], [0.0, 0.0]]
    with pytest.raises(ValueError, match="'accuracy' reward"):
        reasoning_gym_reward(completions=completions, answer=golds)
    with pytest.raises(ValueError, match="Rebuild the dataset"):
        accuracy_reward(completions=completions[:1], answer=["not the answer"],
                        **{k: v[:1] for k, v in columns.items()})


def test_reward_options_configure_the_accuracy_reward():
    from rlrt.run import TrainArguments, load_reward_funcs

    args = TrainArguments(reward_options='{"answer_format": "boxed"}')
    (strict,) = load_reward_funcs(["accuracy"], "addition", args.reward_config)
    assert strict.__name__ == "accuracy_reward"  # the name TRL logs and correctness_reward refers to
    assert strict(completions=["The answer is 31.", r"\boxed{31}"], answer=["31", "31"]) == [0.0, 1.0]
    assert accuracy_reward(completions=["The answer is 31."], answer=["31"]) == [1.0]
    with pytest.raises(ValueError, match="wrong type"):
        MathRewardConfig.from_options({"float_rounding": "two"})


def test_reward_choice_for_rg_datasets(capsys):
    from rlrt.run import load_reward_funcs

    assert load_reward_funcs(["accuracy"], "rg:spell_backward:test") == [accuracy_reward]
    assert "reasoning-gym's own scorer for spell_backward" in capsys.readouterr().out
    assert load_reward_funcs(["reasoning_gym"], "rg:spell_backward") == [reasoning_gym_reward]
    with pytest.raises(ValueError, match="Use --reward_funcs accuracy"):
        load_reward_funcs(["reasoning_gym"], "addition")


# ------------------------------------------------------------------- the labelled collection of the benchmark


def _labelled_cases(name: str = "grading_cases.py"):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / name
    spec = importlib.util.spec_from_file_location("grading_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CASES


def test_the_labelled_collection_is_graded_as_labelled(verifier):
    """benchmarks/grading_agreement.py's claim: every hand-labelled case, right and wrong, gets its label."""
    cases = _labelled_cases()
    grades = grade_batch([c[2] for c in cases], [c[1] for c in cases], verifier=verifier)
    assert [(c[1], c[2]) for c, g in zip(cases, grades) if g != c[3]] == []
    assert sum(c[3] == 0 for c in cases) >= len(cases) // 3


# The audit collection's known limits (docs/grading.md): right answers graded 0, never a wrong answer graded 1.
AUDIT_LIMITS: list[tuple[str, str]] = []


def test_the_audit_collection_is_graded_as_labelled_but_its_known_limits(verifier):
    """benchmarks/grading_agreement.py's audit collection, written independently of the grader: every label is
    met except the documented limits, which are all false negatives; no wrong answer is graded correct, also after
    changing one number of the gold in each right completion."""
    cases = _labelled_cases("grading_cases_audit.py")
    grades = grade_batch([c[2] for c in cases], [c[1] for c in cases], verifier=verifier)
    assert [(c[1], c[2]) for c, g in zip(cases, grades) if g != c[3]] == AUDIT_LIMITS
    assert all(c[3] == 1 for c in cases if (c[1], c[2]) in AUDIT_LIMITS)
    assert sum(c[3] == 0 for c in cases) >= 0.4 * len(cases)
    golds, mutated = _mutated_right_completions(cases)
    assert len(mutated) >= 100
    assert [(g, m) for g, m, grade_ in zip(golds, mutated, grade_batch(mutated, golds, verifier=verifier))
            if grade_ != 0.0] == []


def _mutated_right_completions(cases):
    import re

    golds, mutated = [], []
    for _, gold, completion, expected in cases:
        for number in set(re.findall(r"\d+", gold)) if expected else ():
            changed = re.sub(rf"(?<!\d){number}(?!\d)", str(int(number) + 1), completion)
            if changed != completion:
                golds.append(gold)
                mutated.append(changed)
    return golds, mutated


def test_changing_the_answer_of_a_right_completion_makes_it_wrong(verifier):
    """No false positive on wrong answers in every style: each right completion of the collection with one number
    of its gold answer changed (everywhere in the completion) is graded 0."""
    golds, mutated = _mutated_right_completions(_labelled_cases())
    assert len(mutated) >= 60
    grades = grade_batch(mutated, golds, verifier=verifier)
    assert [(g, m) for g, m, grade_ in zip(golds, mutated, grades) if grade_ != 0.0] == []


@pytest.mark.parametrize("gold, completion, expected", [
    ("17", "9 + 8 = rejuvenation.", 0.0),                      # the question restated (found by rlrt interventions)
    ("17", "I think 9 + 8 is hard", 0.0),
    ("17", "The answer is 9 + 8.", 0.0),                       # left unevaluated, even as a statement
    ("17", "The answer is \\boxed{9+8}.", 0.0),
    ("5", "What is 4 + 1 + 2 - 2? Let me see: 4 + 1 + 2 - 2", 0.0),
    ("5", "4 + 1 = 5. 5 + 2 = 7. 7 - 2 = 5.", 1.0),            # worked steps ending in the value stay right
    ("17", "9 + 8 = 17. The answer is \\boxed{17}.", 1.0),
    ("1 + \\sqrt{2}", "The answer is $1 + \\sqrt{2}$.", 1.0),  # a sum with a radical is an answer
    ("2+3", "The answer is 2+3.", 1.0),                        # ... and so is a sum the gold is written as
])
def test_an_unevaluated_sum_of_numbers_is_no_answer(verifier, gold, completion, expected):
    assert grade(completion, gold, verifier=verifier) == expected


def test_unevaluated_sum_rule_as_a_pure_function():
    from rlrt.rewards._verify_worker import is_unevaluated_sum

    assert [is_unevaluated_sum(a) for a in ("9 + 8", "4 + 1 + 2 - 2.", "$9+8$", "-3 - 2")] == [True] * 4
    assert not any(is_unevaluated_sum(a) for a in ("17", "-5", "1 + \\sqrt{2}", "3 \\times 10^5", "1/2", "2 + 3i",
                                                   "10^2 + 1", "", None))
