"""Math answer extraction and verification, including inputs that must not hang or crash."""

from __future__ import annotations

import threading
import time

import pytest

from rlrt.rewards import (
    MathRewardConfig,
    MathVerifier,
    accuracy_reward,
    combine_rewards,
    extract_boxed,
    extract_final_answer,
    format_reward,
    make_accuracy_reward,
    parity_reward,
)

TIMEOUT = 2.0


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(timeout_seconds=TIMEOUT)
    v.warm_up()
    yield v
    v.close()


def test_nested_braces_and_last_box():
    assert extract_boxed(r"first \boxed{1} then \boxed{\frac{\sqrt{2}}{2}}.") == r"\frac{\sqrt{2}}{2}"
    assert extract_boxed(r"\boxed{a} and a truncated \boxed{\frac{1}{") == "a"  # unclosed last box falls back
    assert extract_boxed(r"\fbox{7}") == "7"
    assert extract_boxed("no box here") is None
    assert extract_boxed(r"\boxed{\{1, 2\}}") == r"\{1, 2\}"


def test_think_block_and_boxed_extraction():
    config = MathRewardConfig()
    assert extract_final_answer(r"<think>maybe \boxed{3}</think> so \boxed{4}", config) == "4"
    assert extract_final_answer(r"<think>maybe \boxed{3}</think> no final box", config) is None
    assert extract_final_answer(r"without a think block \boxed{5}", config) == "5"
    assert extract_final_answer(r"<think>so \boxed{5}, but wait", config) is None  # cut off while thinking
    assert extract_final_answer("Adding them, the answer is 42.", config) is None  # boxes only
    with pytest.raises(ValueError, match="answer_format"):
        MathRewardConfig(answer_format="last_number")


@pytest.mark.parametrize(
    "pred, gold, expected",
    [
        (r"\frac12", "0.5", True),
        (r"2\sqrt3", r"\sqrt{12}", True),
        (r"\{2, 1\}", r"\{1,2\}", True),
        ("(0, 1]", "(0,1]", True),
        ("(1, 2)", "[1,2)", False),
        ("1,000", "1000", True),
        ("1,000,000", "1000000", True),
        ("-3", "-3", True),
        ("-3", "3", False),
        (r"50\%", "50", True),
        (r"5\text{ cm}", "5", True),
        (r"\text{Paris}", "Paris", True),
        ("12", "13", False),
        ("x^2 + 1", "1 + x^2", True),
    ],
)
def test_equivalences(verifier, pred, gold, expected):
    assert verifier.verify(gold, pred) is expected


def test_missing_and_unparseable(verifier):
    assert verifier.verify("5", None) is False
    assert verifier.verify("", "5") is None
    assert verifier.verify(None, "5") is None
    rewards = accuracy_reward(completions=[r"\boxed{5}", "no answer"], answer=["5", "5"])
    assert rewards == [1.0, 0.0]
    assert accuracy_reward(completions=[r"\boxed{5}"], answer=[""]) == [None]


def test_chat_completions_and_logged_metrics():
    logged = {}
    rewards = accuracy_reward(
        prompts=[[{"role": "user", "content": "q"}]] * 2,
        completions=[[{"role": "assistant", "content": r"so \boxed{9}"}], [{"role": "assistant", "content": "hmm"}]],
        answer=["9", "9"],
        log_metric=lambda name, value: logged.__setitem__(name, value),
    )
    assert rewards == [1.0, 0.0]
    assert logged["accuracy/no_answer_frac"] == 0.5 and logged["accuracy/timeouts"] == 0.0


def test_missing_answer_column_says_what_to_do():
    with pytest.raises(ValueError, match="'answer' dataset column"):
        accuracy_reward(completions=["x"], solution=["1"])


@pytest.mark.parametrize(
    "pred",
    [
        "10^{10^{10^{10^{10}}}}",
        "9^{9^{9^{99}}}!",
        "{" * 3000 + "1" + "}" * 3000,
    ],
)
def test_pathological_answers_return_within_the_bound(verifier, pred):
    start = time.perf_counter()
    result = verifier.verify("1", pred)
    assert result in (False, True)
    assert time.perf_counter() - start < TIMEOUT + 1.0


def test_pathological_completions_are_bounded():
    config = MathRewardConfig()
    huge = "x" * 3_000_000 + r"\boxed{7}"
    start = time.perf_counter()
    assert extract_final_answer(huge, config) == "7"
    nested = r"\boxed{" * 5000 + "1"  # thousands of unclosed boxes
    assert extract_final_answer(nested, config) is None
    long_answer = r"\boxed{" + "1" * 5000 + "}"
    assert extract_final_answer(long_answer, config) is None  # over max_answer_chars
    assert time.perf_counter() - start < 5.0


def test_explosive_expressions_are_never_parsed(verifier):
    before = verifier.stats["guarded"]
    assert verifier.verify("1", "10^{10^{10^{10^{10}}}}") is False
    assert verifier.verify("2", "1000!") is False
    assert verifier.stats["guarded"] == before + 2
    assert verifier.verify("2", "\\frac{4}{2}") is True  # the worker still answers


def test_a_worker_stuck_in_c_code_is_killed_and_replaced():
    import sys

    stuck = MathVerifier(timeout_seconds=0.5)
    # A worker that ignores SIGALRM and never answers: only the parent's kill can end the item.
    stuck.worker_command = [sys.executable, "-c", (
        "import signal, sys, time; signal.signal(signal.SIGALRM, signal.SIG_IGN); "
        "print('{\"ready\": true}', flush=True); sys.stdin.readline(); time.sleep(60)")]
    stuck.warm_up()
    start = time.perf_counter()
    assert stuck.verify("1", "x + 1") is False
    assert time.perf_counter() - start < 0.5 + MathVerifier.KILL_GRACE + 0.5
    assert stuck.stats["restarts"] == 1 and stuck.stats["timeouts"] == 1
    stuck.close()


def test_start_does_not_wait_and_the_first_comparison_uses_that_worker():
    background = MathVerifier(timeout_seconds=TIMEOUT)
    began = time.perf_counter()
    background.start()
    assert time.perf_counter() - began < 0.5  # sympy's import happens in the worker, not here
    started = background._spare
    assert started is not None and started.poll() is None
    assert background.verify("1/2", r"\frac{2}{4}") is True
    assert background._proc is started and background.stats["restarts"] == 0
    background.close()


def test_accuracy_reward_start_starts_its_own_verifier_in_the_background():
    own = MathVerifier(timeout_seconds=TIMEOUT)
    reward = make_accuracy_reward(verifier=own)
    reward.start()
    assert own._spare is not None and own._spare.poll() is None
    assert reward([[{"role": "assistant", "content": r"\boxed{\frac{2}{4}}"}]], answer=["1/2"]) == [1.0]
    own.close()


def test_parity_reward_scores_text_length_for_both_completion_forms():
    chat = [[{"role": "assistant", "content": "ab"}], [{"role": "assistant", "content": "abc"}]]
    assert parity_reward(prompts=None, completions=chat) == [1.0, 0.0]
    assert parity_reward(completions=["", "x", "xy"], answer=["1", "2", "3"]) == [1.0, 0.0, 1.0]


def test_works_off_the_main_thread(verifier):
    results = []
    thread = threading.Thread(target=lambda: results.append(verifier.verify("1/2", r"\frac{2}{4}")))
    thread.start()
    thread.join(30)
    assert results == [True]


def test_works_in_a_worker_process():
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply(_verify_in_child, ("0.25", r"\frac{1}{4}")) is True


def _verify_in_child(gold, pred):
    reward = make_accuracy_reward(MathRewardConfig(timeout_seconds=5.0))
    return reward(completions=[rf"\boxed{{{pred}}}"], answer=[gold])[0] == 1.0


def test_format_reward_and_combination():
    completions = [r"\boxed{1}", "1", r"<think>\boxed{1}</think> done"]
    assert format_reward(completions=completions) == [1.0, 0.0, 0.0]
    combined = combine_rewards([accuracy_reward, format_reward], [1.0, 0.5])
    assert combined(prompts=None, completions=[r"\boxed{3}", "no idea", r"\boxed{4}"], answer=["3", "3", "3"]) == [
        1.5, 0.0, 0.5]
    with pytest.raises(ValueError, match="one weight each"):
        combine_rewards([accuracy_reward], [1.0, 2.0])
