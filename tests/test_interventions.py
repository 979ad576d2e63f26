"""The intervention analysis (``rlrt interventions``): positions, eligibility, flip counting and intervals on cases
worked out by hand, a fake sampler and grader that make the flips deterministic, and the command on a tiny model."""

from __future__ import annotations

import json
import math
import random

import pytest

from rlrt.analysis.intervention_run import (
    InterventionArguments,
    continuation_prefixes,
    load_reward_function,
    make_grader,
    plan_rollout,
    probe_rollout,
    write_interventions,
)
from rlrt.analysis.interventions import (
    bootstrap_mean,
    bootstrap_paired,
    choose_positions,
    eligible_positions,
    final_answer_start,
    flip_fraction,
    markdown_table,
    rollout_rng,
    spearman,
    summarize,
)

# ----------------------------------------------------------------------------------------- positions


def test_final_answer_start():
    text = "3 + 5 = 8. The answer is \\boxed{8}."
    assert final_answer_start(text) == text.index("\\boxed")
    assert final_answer_start("\\boxed{7} no, 3 + 5 = 8, so \\boxed{8}") == len("\\boxed{7} no, 3 + 5 = 8, so ")
    assert final_answer_start("3 + 5 = 8. The answer is 8.") == len("3 + 5 = 8. The ")
    assert final_answer_start("3 + 5 = 8") == len("3 + 5 = 8")  # no answer: nothing excluded


def test_eligible_positions_by_hand():
    prefix_chars = [0, 2, 5, 9, 12, 14]  # len(decode(y_<t)), t = 0..5
    assert eligible_positions(prefix_chars, answer_start=9) == [0, 1, 2, 3]  # y_<4 (12 chars) reaches the answer
    assert eligible_positions(prefix_chars, answer_start=14) == [0, 1, 2, 3, 4]  # never the last token (t = 5)
    assert eligible_positions([0], answer_start=5) == []


def test_choose_positions_by_hand():
    kl = [0.1, 0.9, 0.5, 2.0, 0.3, 5.0]
    eligible = [0, 1, 2, 4]  # 3 and 5 have larger KL but are not eligible
    top, randoms = choose_positions(kl, eligible, 2, random.Random(0))
    assert top == 1
    assert len(randoms) == 2 and set(randoms) <= {0, 2, 4} and randoms == sorted(randoms)
    assert choose_positions(kl, eligible, 2, random.Random(0)) == (top, randoms)  # same generator, same draw
    assert choose_positions(kl, eligible, 9, random.Random(0)) == (1, [0, 2, 4])  # fewer left than asked: all
    assert choose_positions([1.0, 1.0, 0.0], [0, 1, 2], 1, random.Random(0))[0] == 0  # tie: earliest
    assert choose_positions(kl, [2], 3, random.Random(0)) is None


def test_random_positions_are_uniform_over_the_other_eligible_ones():
    counts = {0: 0, 2: 0, 4: 0}
    for seed in range(3000):
        _, (pick,) = choose_positions([0.1, 0.9, 0.5, 2.0, 0.3], [0, 1, 2, 4], 1, rollout_rng(seed, 0, 0))
        counts[pick] += 1
    assert all(abs(c / 3000 - 1 / 3) < 0.04 for c in counts.values())


def test_plan_rollout_applies_the_rule_to_text_and_tokens():
    # tokens "3", " +", " 5", " =", " 8", ".", " The", " answer", " is", " \\boxed{8}", "."
    pieces = ["3", " +", " 5", " =", " 8", ".", " The", " answer", " is", " \\boxed{8}", "."]
    text = "".join(pieces)
    prefix_chars = [len("".join(pieces[:t])) for t in range(len(pieces))]
    kl = [0.0] * len(pieces)
    kl[4], kl[10] = 1.5, 9.0  # the largest KL is at the last token, inside the final answer: not eligible
    plan = plan_rollout(kl, prefix_chars, text, 3, False, random.Random(1))
    assert plan["eligible"] == list(range(10))  # t = 9 starts at the space before \boxed, y_<10 holds the answer
    assert plan["top"] == 4
    assert 4 not in plan["random"] and len(plan["random"]) == 3
    assert plan["probed"] == sorted({4, *plan["random"]})
    full = plan_rollout(kl, prefix_chars, text, 3, True, random.Random(1))
    assert full["probed"] == list(range(10)) and full["random"] == plan["random"]


# -------------------------------------------------------------------------------------------- flips


def test_flip_fraction():
    assert flip_fraction(True, [True, False, False, True]) == 0.5
    assert flip_fraction(False, [False, False, False]) == 0.0
    assert flip_fraction(False, [True]) == 1.0
    with pytest.raises(ValueError, match="continuations"):
        flip_fraction(True, [])


def test_continuation_prefixes():
    assert continuation_prefixes([10, 11, 12], [0, 2], [99]) == [
        (0, "resample", []), (0, "reflect", [99]), (2, "resample", [10, 11]), (2, "reflect", [10, 11, 99])]


def test_probe_rollout_counts_flips_with_a_fake_sampler_and_grader():
    completion, reflection, m = [10, 11, 12, 13, 14], [99], 4
    seen = {}

    def sampler(prefixes, num_samples, seed):
        seen.update(prefixes=[list(p) for p in prefixes], num_samples=num_samples, seed=seed)
        return [[[j] for j in range(num_samples)] for _ in prefixes]  # continuation j is the one token j

    def grader(completions):
        # From position 3 every continuation is correct; before it, continuations 0 and 1 are correct as is,
        # only continuation 0 after the reflection.
        return [c[:3] == [10, 11, 12] or (c[-1] == 0 if 99 in c else c[-1] < 2) for c in completions]

    out = probe_rollout(completion, True, [1, 3], reflection, m, sampler, grader, seed=7)
    assert seen == {"prefixes": [[10], [10, 99], [10, 11, 12], [10, 11, 12, 99]], "num_samples": 4, "seed": 7}
    assert out[1]["resample"] == 0.5 and out[1]["flips"]["resample"] == 2
    assert out[1]["reflect"] == 0.75 and out[1]["flips"]["reflect"] == 3
    assert out[3]["resample"] == 0.0 and out[3]["reflect"] == 0.0
    flipped = probe_rollout(completion, False, [1, 3], reflection, m, sampler, grader, seed=7)  # a wrong original
    assert flipped[1]["resample"] == 0.5 and flipped[1]["reflect"] == 0.25 and flipped[3]["reflect"] == 1.0

    with pytest.raises(ValueError, match="verdicts"):
        probe_rollout(completion, True, [1], reflection, m, sampler, lambda c: [True], seed=0)


# --------------------------------------------------------------------------------------- statistics


def test_bootstrap_mean_by_hand():
    # Resampling two values {0, 1}: the mean is 0, 0.5, 1 with probability 1/4, 1/2, 1/4, so the 95 % percentile
    # interval is [0, 1].
    assert bootstrap_mean([0.0, 1.0]) == {"mean": 0.5, "low": 0.0, "high": 1.0, "n": 2}
    assert bootstrap_mean([0.25] * 5) == {"mean": 0.25, "low": 0.25, "high": 0.25, "n": 5}
    assert bootstrap_mean([0.3]) == {"mean": 0.3, "low": None, "high": None, "n": 1}
    wide = bootstrap_mean([0, 0, 0, 1, 1, 0.5, 0.25, 0.75], n_resamples=2000, seed=3)
    assert 0 <= wide["low"] < wide["mean"] < wide["high"] <= 1
    assert wide == bootstrap_mean([0, 0, 0, 1, 1, 0.5, 0.25, 0.75], n_resamples=2000, seed=3)


def test_bootstrap_ratio_and_difference_by_hand():
    # Two rollouts, (top, random) = (1, 1) and (1, 0), resampled in pairs: the ratio of means is 1 (both first),
    # 2 (one each) or inf (both second) with probability 1/4, 1/2, 1/4 -> [1, inf]; the difference 0, 0.5, 1.
    ratio = bootstrap_paired([1.0, 1.0], [1.0, 0.0], "ratio")
    assert ratio == {"value": 2.0, "low": 1.0, "high": math.inf, "n": 2}
    assert bootstrap_paired([1.0, 1.0], [1.0, 0.0], "difference") == {"value": 0.5, "low": 0.0, "high": 1.0, "n": 2}
    # 0/0 in resamples: the interval is undefined, not a number.
    assert bootstrap_paired([1.0, 0.0], [0.0, 0.0], "ratio") == {"value": math.inf, "low": None, "high": None, "n": 2}


def test_spearman_by_hand():
    # KL ranks (3, 1, 2), influence ranks (3, 2, 1): d = (0, -1, 1), rho = 1 - 6 * 2 / (3 * 8) = 0.5.
    assert spearman([3.0, 0.5, 1.0], [1.0, 0.75, 0.5])["rho"] == pytest.approx(0.5)
    assert spearman([1.0, 2.0, 3.0], [0.5, 0.5, 0.5])["rho"] is None  # constant influence
    assert spearman([1.0, 2.0], [0.0, 1.0])["rho"] is None


def _hand_rollouts():
    return [
        {"correct": True, "top": 2, "random": [0, 4], "full": False,
         "probes": {0: {"kl": 0.1, "resample": 0.0, "reflect": 0.5}, 2: {"kl": 1.0, "resample": 1.0, "reflect": 1.0},
                    4: {"kl": 0.2, "resample": 0.0, "reflect": 0.0}}},
        {"correct": False, "top": 1, "random": [3], "full": False,
         "probes": {"1": {"kl": 2.0, "resample": 0.5, "reflect": 1.0},
                    "3": {"kl": 0.3, "resample": 0.5, "reflect": 0.0}}},
        {"correct": False, "top": 0, "random": [1], "full": True,
         "probes": {0: {"kl": 3.0, "resample": 1.0, "reflect": 1.0}, 1: {"kl": 0.5, "resample": 0.0, "reflect": 0.75},
                    2: {"kl": 1.0, "resample": 0.25, "reflect": 0.5}}},
    ]


def test_summarize_by_hand():
    summary = summarize(_hand_rollouts(), n_resamples=999)
    everything = summary["flip_rates"]["all"]["resample"]
    assert everything["top"]["mean"] == pytest.approx((1.0 + 0.5 + 1.0) / 3)
    assert everything["random"]["mean"] == pytest.approx((0.0 + 0.5 + 0.0) / 3)  # rollout 1: mean of 0 and 0
    assert everything["ratio"]["value"] == pytest.approx(5.0)
    assert everything["difference"]["value"] == pytest.approx(2 / 3)
    assert everything["top"]["n"] == 3
    wrong = summary["flip_rates"]["incorrect"]["reflect"]
    assert wrong["top"]["mean"] == 1.0 and wrong["random"]["mean"] == pytest.approx(0.375)
    assert wrong["top"]["low"] == wrong["top"]["high"] == 1.0
    right = summary["flip_rates"]["correct"]["reflect"]
    assert right["top"]["mean"] == 1.0 and right["random"]["mean"] == 0.25 and right["top"]["n"] == 1
    # Only the fully probed rollout enters the rank correlation: KL (3, 0.5, 1) against (1, 0, 0.25) / (1, 0.75, 0.5).
    assert summary["spearman"]["resample"]["rho"] == pytest.approx(1.0)
    assert summary["spearman"]["reflect"]["rho"] == pytest.approx(0.5)
    assert summary["spearman"]["reflect"]["n"] == 3 and summary["spearman"]["reflect"]["rollouts"] == 1
    table = markdown_table(summary)
    assert "| all | resample | 3 | 83.3 %" in table and "| correct | reflect | 1 |" in table


def test_grader_uses_the_named_reward_and_its_options(tokenizer):
    row = {"prompt": [{"role": "user", "content": "What is 9 + 8?"}], "answer": "17"}
    boxed = load_reward_function("accuracy", '{"answer_format": "boxed"}')
    grade = make_grader(boxed, 1.0, tokenizer, row)
    completions = ["9 + 8 = 17. The answer is \\boxed{17}.", "9 + 8 = 16. The answer is \\boxed{16}.", "9 + 8 = 17."]
    ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in completions]
    assert grade(ids) == [True, False, False]  # boxed only: no box, no answer
    assert make_grader(boxed, 2.0, tokenizer, row)(ids[:1]) == [False]  # below the threshold
    with pytest.raises(ValueError, match="Unknown reward"):
        load_reward_function("acuracy")
    with pytest.raises(ValueError, match="reward_options"):
        load_reward_function("accuracy", '{"answer_fromat": "boxed"}')


def test_arguments_refuse_nonsense():
    with pytest.raises(ValueError, match="continuations"):
        InterventionArguments(continuations=0)
    with pytest.raises(ValueError, match="confidence"):
        InterventionArguments(confidence=95)


# ------------------------------------------------------------------------------------- tiny model, end to end


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("interventions")
    args = InterventionArguments(model=str(tiny_model_dir), limit=1, num_samples=3, max_new_tokens=8,
                                 teacher_context="answer", random_positions=2, continuations=2, full_probe_rollouts=1,
                                 n_resamples=199, batch_size=8, output_dir=str(out))
    paths = write_interventions(args)
    return args, paths, json.loads(paths["json"].read_text())


@pytest.mark.slow
def test_command_on_a_tiny_model(tiny_run):
    args, paths, payload = tiny_run
    assert all(p.is_file() for p in paths.values())
    rollouts = payload["rollouts"]
    assert len(rollouts) + len(payload["skipped"]) == 3  # the gold answer gives every rollout a context
    assert sum(r["full"] for r in rollouts) == 1
    for r in rollouts:
        kl, eligible = r["kl"], r["eligible"]
        assert len(kl) == len(r["completion_ids"]) and len(r["completion_ids"]) - 1 not in eligible
        assert r["top"] == max(eligible, key=lambda t: (kl[t], -t))
        assert r["top"] not in r["random"] and set(r["random"]) <= set(eligible)
        assert len(r["random"]) == min(args.random_positions, len(eligible) - 1)
        assert sorted(int(t) for t in r["probes"]) == (eligible if r["full"] else sorted({r["top"], *r["random"]}))
        for t, probe in r["probes"].items():
            assert probe["kl"] == pytest.approx(kl[int(t)])
            for arm in ("resample", "reflect"):
                assert probe[arm] == probe["flips"][arm] / args.continuations
    page = paths["html"].read_text()
    assert "interventions-summary" in page and "http://" not in page and "https://" not in page
    data = json.loads(page.split('type="application/json">', 1)[1].split("</script>", 1)[0].replace("<\\/", "</"))
    assert data["title"].startswith("rlrt interventions")
    shown = [r for p in data["problems"] for r in p["rollouts"]]
    assert len(shown) == len(rollouts)
    for r, page_rollout in zip(sorted(rollouts, key=lambda r: (r["problem"], r["rollout"])), shown):
        marked = {t: tok["probe"]["role"] for t, tok in enumerate(page_rollout["tokens"]) if "probe" in tok}
        assert marked[r["top"]] == "top" and all(marked[t] == "random" for t in r["random"])
        assert sorted(marked) == sorted(int(t) for t in r["probes"])


@pytest.mark.slow
def test_command_is_deterministic_given_the_seed(tiny_run, tmp_path):
    args, _, payload = tiny_run
    again = InterventionArguments(**{**vars(args), "output_dir": str(tmp_path)})
    second = json.loads(write_interventions(again)["json"].read_text())
    assert second["rollouts"] == payload["rollouts"] and second["summary"] == payload["summary"]


@pytest.mark.parametrize(("returns", "message"), [
    ("raise", r"Reward function 'mine' raised KeyError: 'gold'"),
    ("text", r"Reward function 'mine' returned a str \('yes'\); rewards must be floats"),
    ("short", r"Reward function 'mine' returned 1 values for 2 completions"),
])
def test_interventions_check_a_reward_as_training_does(returns, message, tokenizer):
    from collections import Counter

    from rlrt.reliability import RewardFunctionError, guard_reward_function

    def mine(prompts, completions, **kwargs):
        if returns == "raise":
            return [kwargs["gold"] for _ in completions]
        if returns == "text":
            return ["yes" for _ in completions]
        return [1.0]

    row = {"prompt": "What is 9 + 8?", "answer": "17"}
    ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in ("17", "16")]
    with pytest.raises(RewardFunctionError, match=message):
        make_grader(guard_reward_function(mine, "raise", Counter()), 1.0, tokenizer, row)(ids)


def test_grader_counts_none_and_nan_rewards_as_incorrect(tokenizer):
    row = {"prompt": "What is 9 + 8?", "answer": "17"}
    ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in ("a", "b", "c")]
    grade = make_grader(lambda prompts, completions, **kw: [None, float("nan"), 1.0], 1.0, tokenizer, row)
    assert grade(ids) == [False, False, True]
