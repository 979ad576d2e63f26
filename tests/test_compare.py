"""`rlrt compare`: strata, paired differences, bootstrap intervals and pass@k curves against numbers worked out by
hand; arm parsing and the run plan; a quick comparison end to end on a tiny model (resumable)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlrt.analysis.bootstrap import BootstrapConfig, difference_of_differences, paired_difference
from rlrt.analysis.comparison import Evaluation, StartEvaluation, markdown_comparison, summarize_comparison
from rlrt.compare import CompareArguments, arms_from, flags_to_argv, parse_arm, plan_runs
from rlrt.evaluation.strata import assign_strata, assign_stratum, per_stratum, stratum_labels

FAST = BootstrapConfig(resamples=2000, seed=0)


# ---- strata -----------------------------------------------------------------------------------------------------


def test_stratum_labels_and_assignment():
    assert stratum_labels() == ["never", "<60%", ">=60%"]
    assert stratum_labels([0.3, 0.6]) == ["never", "<30%", "30-60%", ">=60%"]
    assert [assign_stratum(a) for a in (0.0, 0.01, 0.59, 0.6, 1.0)] == ["never", "<60%", "<60%", ">=60%", ">=60%"]
    assert [assign_stratum(a, [0.3, 0.6]) for a in (0.0, 0.25, 0.3, 0.5, 0.75)] == \
        ["never", "<30%", "30-60%", "30-60%", ">=60%"]
    assert assign_strata([0, 1, 3, None], 4) == ["never", "<60%", ">=60%", None]  # 0/4, 1/4, 3/4
    for bad in ([0.6, 0.3], [0.0], [1.2]):
        with pytest.raises(ValueError, match="strata edges"):
            stratum_labels(bad)


def test_per_stratum_avg_and_pass_curve_by_hand():
    # 4 problems, 4 samples each, correct counts 0, 1, 2, 4; strata never, <60%, <60%, >=60%.
    table = per_stratum([0, 1, 2, 4], 4, ["never", "<60%", "<60%", ">=60%"], stratum_labels())
    assert table["never"]["problems"] == 1 and table["never"]["avg"] == 0 and table["never"]["pass"][4] == 0
    # <60%: avg = (1/4 + 2/4) / 2 = 0.375; pass@2 = ((1 - C(3,2)/C(4,2)) + (1 - C(2,2)/C(4,2))) / 2
    #                                          = ((1 - 3/6) + (1 - 1/6)) / 2 = (0.5 + 0.8333) / 2 = 0.6667
    assert table["<60%"]["problems"] == 2 and table["<60%"]["avg"] == pytest.approx(0.375)
    assert table["<60%"]["pass"] == pytest.approx({1: 0.375, 2: 2 / 3, 4: 1.0})
    assert table[">=60%"]["avg"] == 1.0
    with pytest.raises(ValueError, match="held-out sets differ"):
        per_stratum([0, 1], 4, ["never"], stratum_labels())


# ---- bootstrap --------------------------------------------------------------------------------------------------


def test_bootstrap_is_deterministic_contains_the_estimate_and_shrinks_with_more_data():
    rng = np.random.default_rng(1)
    small = rng.normal(0.05, 0.3, size=(3, 16))
    first, again = paired_difference(small, FAST), paired_difference(small, FAST)
    assert first == again
    assert first["low"] < first["mean"] < first["high"] and first["mean"] == pytest.approx(small.mean())
    other_seed = paired_difference(small, BootstrapConfig(resamples=2000, seed=1))
    assert other_seed["low"] != first["low"]
    large = rng.normal(0.05, 0.3, size=(3, 256))
    wide, narrow = first["high"] - first["low"], paired_difference(large, FAST)
    assert narrow["high"] - narrow["low"] < wide / 2  # 16x the problems: about a quarter of the width


@settings(max_examples=15, deadline=None)
@given(st.floats(-1, 1), st.integers(1, 4), st.integers(1, 12))
def test_equal_differences_give_a_zero_width_interval_at_that_value(value, seeds, problems):
    stat = paired_difference(np.full((seeds, problems), value), BootstrapConfig(resamples=200))
    assert stat["mean"] == pytest.approx(value)
    if stat["low"] is not None:  # None only for a single seed and a single problem: nothing to resample
        assert stat["low"] == pytest.approx(value) and stat["high"] == pytest.approx(value)


def test_difference_of_differences_by_hand():
    # Gain 0.3 on problems 0-2, 0.1 on problems 3-5, for both seeds: the difference of differences is 0.2 exactly,
    # and every resample (seeds, and problems within each group) gives 0.2 again.
    diff = np.array([[0.3, 0.3, 0.3, 0.1, 0.1, 0.1]] * 2)
    stat = difference_of_differences(diff, [0, 1, 2], [3, 4, 5], FAST)
    assert stat["mean"] == pytest.approx(0.2) and stat["low"] == pytest.approx(0.2)
    assert stat["high"] == pytest.approx(0.2) and stat["problems_a"] == 3 and stat["problems_b"] == 3


# ---- the comparison on a made-up results set ---------------------------------------------------------------


def made_up_results():
    """Two arms x two seeds, 4 problems, evaluations at step 10 (2 samples) and the final step 20 (4 samples)."""
    runs = {
        ("grpo", 0): [Evaluation(10, 2, [0, 1, 1, 2]), Evaluation(20, 4, [0, 2, 2, 4])],
        ("grpo", 1): [Evaluation(10, 2, [0, 0, 1, 2]), Evaluation(20, 4, [1, 1, 2, 4])],
        ("rlrt", 0): [Evaluation(10, 2, [1, 1, 1, 2]), Evaluation(20, 4, [2, 2, 3, 4])],
        ("rlrt", 1): [Evaluation(10, 2, [0, 1, 2, 2]), Evaluation(20, 4, [1, 2, 2, 4])],
    }
    # The start: 4 samples per problem for the strata, then 4 more for its own curve.
    # strata samples correct 0/4, 1/4, 2/4, 3/4 -> never, <60%, <60%, >=60%; curve samples correct 1, 1, 2, 4.
    start = StartEvaluation(
        correct=[[0, 0, 0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 1, 0, 0, 0], [1, 1, 0, 0, 1, 1, 0, 0],
                 [1, 1, 1, 0, 1, 1, 1, 1]],
        strata_samples=4, seed=1000)
    return runs, start


def test_comparison_numbers_by_hand():
    runs, start = made_up_results()
    result = summarize_comparison(runs, start, ["grpo", "rlrt"], "grpo", bootstrap=FAST)
    assert result["strata"]["assignment"] == ["never", "<60%", "<60%", ">=60%"]
    assert result["strata"]["counts"] == {"never": 1, "<60%": 2, ">=60%": 1}
    assert result["metrics"] == ["avg_after_start", "avg_final", "pass@4_final"]

    # Start (curve samples, n = 4, correct 1, 1, 2, 4): avg = (1/4 + 1/4 + 2/4 + 4/4) / 4 = 0.5;
    # pass@2 = (0.5 + 0.5 + 5/6 + 1) / 4 = 0.70833 (1 - C(3,2)/C(4,2) = 0.5, 1 - C(2,2)/C(4,2) = 5/6).
    assert result["start"]["avg"] == pytest.approx(0.5)
    assert result["start"]["pass"][2] == pytest.approx((0.5 + 0.5 + 5 / 6 + 1) / 4)
    # Start in the never stratum (problem 0, 1 of its 4 curve samples correct): pass@1 0.25, pass@2 0.5, pass@4 1.
    assert result["start"]["strata"]["never"]["pass"] == pytest.approx({1: 0.25, 2: 0.5, 4: 1.0})

    grpo, rlrt = result["arms"]["grpo"], result["arms"]["rlrt"]
    # grpo step 10: s0 (0 + .5 + .5 + 1) / 4 = .5, s1 (0 + 0 + .5 + 1) / 4 = .375 -> .4375; step 20: .5 and .5.
    assert grpo["heldout"]["10"]["avg"] == pytest.approx(0.4375) and grpo["heldout"]["20"]["avg"] == pytest.approx(0.5)
    # after start per problem, s0 [0, .5, .5, 1] -> .5; s1 [.125, .125, .5, 1] -> .4375; mean .46875.
    assert grpo["avg_after_start"]["per_seed"] == pytest.approx({"0": 0.5, "1": 0.4375})
    assert grpo["avg_after_start"]["mean"] == pytest.approx(0.46875)
    # rlrt s0 [.5, .5, .625, 1] -> .65625; s1 [.125, .5, .75, 1] -> .59375; mean .625.
    assert rlrt["avg_after_start"]["mean"] == pytest.approx(0.625)
    # grpo final pass curve: s0 counts 0, 2, 2, 4 of 4: pass@1 .5, pass@2 (0 + 5/6 + 5/6 + 1) / 4, pass@4 .75;
    # s1 counts 1, 1, 2, 4: pass@1 .5, pass@2 (.5 + .5 + 5/6 + 1) / 4, pass@4 1; mean over seeds:
    # pass@2 = (2.6667 / 4 + 2.8333 / 4) / 2 = 0.6875.
    assert grpo["pass"] == pytest.approx({1: 0.5, 2: 0.6875, 4: 0.875})
    # Per stratum at step 10, <60% (problems 1, 2): s0 (.5 + .5) / 2 = .5, s1 (0 + .5) / 2 = .25 -> .375.
    assert grpo["heldout"]["10"]["strata"] == pytest.approx({"never": 0.0, "<60%": 0.375, ">=60%": 1.0})
    # grpo in the never stratum (problem 0): s0 0 of 4 correct, s1 1 of 4 -> pass@4 (0 + 1) / 2.
    assert grpo["strata"]["never"]["pass"] == pytest.approx({1: 0.125, 2: 0.25, 4: 0.5})

    paired = result["paired"]["rlrt"]
    # D (rlrt - grpo, after start) s0 [.5, 0, .125, 0] -> .15625; s1 [0, .375, .25, 0] -> .15625.
    after = paired["avg_after_start"]
    assert after["per_seed"]["0"]["mean"] == pytest.approx(0.15625)
    assert after["per_seed"]["1"]["mean"] == pytest.approx(0.15625)
    assert after["overall"]["mean"] == pytest.approx(0.15625)
    assert after["overall"]["low"] <= 0.15625 <= after["overall"]["high"]
    # Per stratum: never (problem 0) (.5 + 0) / 2 = .25; <60% (problems 1, 2) (0 + .125 + .375 + .25) / 4 = .1875.
    assert after["strata"]["never"]["mean"] == pytest.approx(0.25)
    assert after["strata"]["<60%"]["mean"] == pytest.approx(0.1875)
    assert after["strata"][">=60%"]["mean"] == 0
    # Contrasts to >=60% (gain 0): .25, .1875, and never+<60% (6 cells summing to 1.25) 1.25 / 6.
    assert after["contrasts"]["never - >=60%"]["mean"] == pytest.approx(0.25)
    assert after["contrasts"]["<60% - >=60%"]["mean"] == pytest.approx(0.1875)
    assert after["contrasts"]["never+<60% - >=60%"]["mean"] == pytest.approx(1.25 / 6)
    # Final accuracy: s0 [.5, 0, .25, 0] -> .1875, s1 [0, .25, 0, 0] -> .0625; overall .125.
    assert paired["avg_final"]["overall"]["mean"] == pytest.approx(0.125)
    # pass@4 final (1 when any sample is correct): s0 [1, 0, 0, 0] -> .25, s1 all 0 -> 0; overall .125.
    assert paired["pass@4_final"]["per_seed"]["0"]["mean"] == pytest.approx(0.25)
    assert paired["pass@4_final"]["overall"]["mean"] == pytest.approx(0.125)

    table = markdown_comparison(result)
    assert "| grpo | 2 | 50.0 | 43.8 | 50.0 | 46.9 | 87.5 |" in table
    assert "| rlrt | avg_after_start | s0 +15.6, s1 +15.6 | +15.6 [" in table
    assert "never (n=1)" in table and "pass@4" in table and "| grpo | 10 | 0.0 | 37.5 | 100.0 |" in table
    json.dumps(result)  # compare.json is plain JSON


def test_unscorable_problems_are_left_out_everywhere_and_sizes_must_match():
    runs, start = made_up_results()
    runs[("rlrt", 1)][0].correct[3] = None
    result = summarize_comparison(runs, start, ["grpo", "rlrt"], "grpo", bootstrap=FAST)
    assert result["problems"] == 3 and result["problem_indices"] == [0, 1, 2]
    assert result["strata"]["counts"][">=60%"] == 0
    runs[("grpo", 0)][0].correct.append(1)
    with pytest.raises(ValueError, match="different numbers of problems"):
        summarize_comparison(runs, start, ["grpo", "rlrt"], "grpo", bootstrap=FAST)


def test_comparison_without_start_or_reference():
    runs, _ = made_up_results()
    result = summarize_comparison(runs, None, ["grpo", "rlrt", "absent"], "sdpo", bootstrap=FAST)
    assert result["strata"] is None and result["start"] is None and result["paired"] == {}
    assert list(result["arms"]) == ["grpo", "rlrt"]
    assert "Paired difference" not in markdown_comparison(result)


# ---- arms and plan ----------------------------------------------------------------------------------------------


def test_quick_says_that_it_runs_seed_0_only(capsys):
    args = CompareArguments(quick=True, seeds=[0, 1])
    assert args.seeds == [0] and "--quick runs seed 0 only (--seeds 0 1 ignored)" in capsys.readouterr().err
    CompareArguments(quick=True)
    assert capsys.readouterr().err == ""


def test_arm_specs():
    assert parse_arm("grpo").overrides == {"shaping": "grpo"}
    arm = parse_arm("grpo_ent:shaping=grpo,entropy_coef=0.01")
    assert arm.name == "grpo_ent" and arm.overrides == {"shaping": "grpo", "entropy_coef": 0.01}
    assert parse_arm("rlrt:shaping_lambda=0.3").overrides == {"shaping": "rlrt", "shaping_lambda": 0.3}
    with pytest.raises(ValueError, match="is not a shaping variant"):
        parse_arm("grpo_ent")
    with pytest.raises(ValueError, match="not key=value"):
        parse_arm("x:shaping")
    arms = arms_from({"grpo": None, "long_all": {"shaping": "rlrt_all", "max_steps": 120, "seeds": [0]}})
    assert arms[1].overrides == {"shaping": "rlrt_all", "max_steps": 120} and arms[1].seeds == (0,)
    with pytest.raises(ValueError, match="needs a 'shaping'"):
        arms_from({"x": {"max_steps": 3}})
    with pytest.raises(ValueError, match="compare sets these itself"):
        arms_from(["rlrt:seed=3"])
    with pytest.raises(ValueError, match="must differ"):
        arms_from(["grpo", "grpo:shaping=grpo"])


def test_plan_gives_every_arm_of_a_seed_the_same_seed_and_held_out_set(tmp_path):
    args = CompareArguments(arms={"grpo": {}, "rlrt": {}, "long_all": {"shaping": "rlrt_all", "seeds": [0]}},
                            seeds=[0, 1], train=["max_steps=5", "learning_rate=1e-5"], output_dir=str(tmp_path))
    plan = plan_runs(args)
    assert [r.name for r in plan] == ["grpo-s0", "rlrt-s0", "long_all-s0", "grpo-s1", "rlrt-s1"]
    for run in plan:
        assert run.flags["seed"] == run.seed and run.flags["eval_dataset_seed"] == 0
        assert run.flags["max_steps"] == 5 and run.flags["eval_start"] is False
        assert run.flags["output_dir"] == str(tmp_path / run.name)
    assert flags_to_argv({"a": 1, "b": [2, "x"], "c": False, "d": None, "e": {"steps": 3}}) == \
        ["--a", "1", "--b", "2", "x", "--c", "false", "--e", '{"steps": 3}']
    from rlrt.compare import plan_settings, selected

    assert [r.name for r in plan if selected(r, ["s1", "long_all"])] == ["long_all-s0", "grpo-s1", "rlrt-s1"]
    assert [r.name for r in plan if selected(r, ["rlrt-s0"])] == ["rlrt-s0"]

    settings = plan_settings(args, plan)
    assert settings["arms"] == {"grpo": {"shaping": "grpo"}, "rlrt": {"shaping": "rlrt"},
                                "long_all": {"shaping": "rlrt_all"}}
    assert settings["shared"]["max_steps"] == 5 and "seed" not in settings["shared"] and settings["seeds"] == [0, 1]
    with pytest.raises(ValueError, match="--seeds"):
        plan_runs(CompareArguments(train=["seed=3"], output_dir=str(tmp_path)))
    # A dataset without an eval_dataset is evaluated on its own test split, not on rlrt train's default.
    assert plan_runs(CompareArguments(train=["dataset=chain"]))[0].flags["eval_dataset"] == "chain:test"
    assert plan_runs(CompareArguments(train=["dataset=rg:chain_sum:train"]))[0].flags["eval_dataset"] == \
        "rg:chain_sum:test"
    kept = CompareArguments(train=["dataset=chain", "eval_dataset=my.jsonl"])
    assert plan_runs(kept)[0].flags["eval_dataset"] == "my.jsonl"
    with pytest.raises(ValueError, match="set eval_dataset"):
        plan_runs(CompareArguments(train=["dataset=train.jsonl"]))
    assert "eval_dataset" not in plan_runs(CompareArguments())[0].flags


def test_config_file_with_arms_seeds_and_shared_train_flags(tmp_path, capsys):
    from rlrt.cli import main, parse_command

    config = tmp_path / "experiment.yaml"
    config.write_text(f"""
arms:
  grpo: {{}}
  grpo_ent: {{shaping: grpo, entropy_coef: 0.01}}
  rlrt_all: {{max_steps: 9, seeds: [0]}}
seeds: [0, 1]
train: {{max_steps: 3, eval_limit: 8, eval_final_samples: 16, dataset_options: {{steps: 3}}}}
strata_edges: [0.3, 0.6]
output_dir: {tmp_path / "cmp"}
""")
    (args,), _ = parse_command("compare", ["--config", str(config), "--reference", "grpo_ent"])
    plan = plan_runs(args)
    assert [r.name for r in plan] == ["grpo-s0", "grpo_ent-s0", "rlrt_all-s0", "grpo-s1", "grpo_ent-s1"]
    flags = {r.name: r.flags for r in plan}
    assert flags["grpo_ent-s1"]["entropy_coef"] == 0.01 and flags["grpo_ent-s1"]["max_steps"] == 3
    assert flags["rlrt_all-s0"]["max_steps"] == 9 and flags["rlrt_all-s0"]["shaping"] == "rlrt_all"
    assert flags["grpo-s0"]["eval_final_samples"] == 16 and args.reference == "grpo_ent"
    assert args.strata_edges == [0.3, 0.6]
    from rlrt.compare import parse_train_flags

    train_args, rlrt_config = parse_train_flags(flags["rlrt_all-s0"], "rlrt_all-s0")
    assert json.loads(train_args.dataset_options) == {"steps": 3}
    assert rlrt_config.max_steps == 9 and rlrt_config.seed == 0
    # Every run's flags are checked by rlrt train's own parser before anything runs.
    assert main(["compare", "--config", str(config), "--only", "rlrt-s0"]) == 2
    assert "not a run of this comparison" in capsys.readouterr().err
    assert main(["compare", "--config", str(config), "--arms", "grpo:shaping=grpo,no_such_flag=1"]) == 2
    err = capsys.readouterr().err
    assert "arm 'grpo' (grpo-s0): unknown flag --no_such_flag" in err and "(fix the arm)" in err
    # The reported case: a bad value among the shared train flags is named as theirs, not as the first arm's.
    config.write_text(config.read_text().replace("train: {max_steps: 3,", "train: {max_steps: two,", 1))
    assert main(["compare", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "the shared train flags (--train, or train: in the config file): " in err and len(err.splitlines()) == 1
    assert "max_steps" in err and "grpo-s0" not in err and "fix the arm" not in err


def test_parse_train_flags_names_the_arm_or_the_shared_flags():
    from rlrt.compare import parse_train_flags

    shared = {"max_steps": 3, "output_dir": "x"}
    with pytest.raises(ValueError, match=r"^arm 'a' \(a-s0\): .*learning_rate.* \(fix the arm\)$"):
        parse_train_flags({**shared, "learning_rate": "fast"}, "arm 'a' (a-s0)", shared)
    with pytest.raises(ValueError, match=r"^the shared train flags \(--train, or train: in the config file\): "):
        bad_shared = {**shared, "max_steps": "two"}
        parse_train_flags({**bad_shared, "beta": 0.0}, "arm 'a' (a-s0)", bad_shared)
    # An arm that overrides the bad shared value is valid; without the split, the old attribution stands.
    _, config = parse_train_flags({**shared, "max_steps": 5}, "arm 'a' (a-s0)", {**shared, "max_steps": "two"})
    assert config.max_steps == 5
    with pytest.raises(ValueError, match=r"\(fix the arm or the shared train flags\)$"):
        parse_train_flags({**shared, "max_steps": "two"}, "a-s0")


def test_parse_train_flags_names_both_sides_of_a_clash(monkeypatch):
    import rlrt.parsing
    from rlrt.compare import parse_train_flags

    real = rlrt.parsing.parse_arguments

    def clash(types, argv, *args, **kwargs):  # valid apart, refused together, naming neither flag
        if "--beta" in argv and "--max_steps" in argv:
            raise ValueError("these settings cannot train together")
        return real(types, argv, *args, **kwargs)

    monkeypatch.setattr(rlrt.parsing, "parse_arguments", clash)
    shared = {"max_steps": 3, "output_dir": "x"}
    with pytest.raises(ValueError, match=r"^arm 'a' \(a-s0\): these settings cannot train together \(fix the arm or "
                                         r"the shared train flags\)$"):
        parse_train_flags({**shared, "beta": 0.1}, "arm 'a' (a-s0)", shared)


@pytest.mark.parametrize(("argv", "expected"), [
    # a typo inside the second arm: refused before the first arm trains (not a prefix match of learning_rate)
    (["--arms", "grpo", "foo:shaping=rlrt,learning_rat=1e-5"],
     "arm 'foo' (foo-s0): unknown flag --learning_rat (did you mean --learning_rate?)"),
    (["--arms", "grpo", "--train", "modle=/tmp/tiny"], "unknown flag --modle (did you mean --model?)"),
    (["--arms", "grpo", "rlrt", "--reference", "rlrt_all"],
     "--reference 'rlrt_all' is not an arm of this comparison (did you mean 'rlrt'?); choose one of ['grpo', 'rlrt']"),
    (["--arms", "grpo", "rlrtt"], "arm 'rlrtt' is not a shaping variant (did you mean 'rlrt'?)"),
])
def test_compare_refuses_bad_flags_before_anything_runs(argv, expected, tmp_path, capsys, monkeypatch):
    import subprocess

    import rlrt.compare as cmp
    from rlrt.cli import main

    def nothing_runs(*args, **kwargs):
        raise AssertionError("a run or evaluation started before the flags were checked")

    monkeypatch.setattr(subprocess, "run", nothing_runs)
    monkeypatch.setattr(cmp, "evaluate_start", nothing_runs)
    out = tmp_path / "cmp"
    assert main(["compare", "--output_dir", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert expected in err and "rerun" not in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


# ---- end to end -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_quick_compare_end_to_end_and_resume(tmp_path, tiny_model_dir, capsys):
    from rlrt.cli import main

    out = tmp_path / "cmp"
    argv = ["compare", "--quick", "true", "--arms", "grpo", "grpo_ent:shaping=grpo,entropy_coef=0.01",
            "--output_dir", str(out), "--skip_shift", "true", "--bootstrap_resamples", "200",
            "--train", f"model={tiny_model_dir}", "bf16=false", "dataset_limit=8"]
    assert main(argv) == 0
    result = json.loads((out / "compare.json").read_text())
    assert result["runs"]["finished"] == ["grpo-s0", "grpo_ent-s0"] and result["problems"] == 4
    assert set(result["paired"]) == {"grpo_ent"} and result["strata"]["samples"] == 4
    assert result["start"]["samples"] == 4 and list(result["arms"]["grpo"]["pass"]) == ["1", "2", "4"]
    for name in ("compare.md", "pass_at_k.png", "report/overview.png", "start/results.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "grpo_ent-s0" / "config.json").read_text())
    assert config["rlrt"]["entropy_coef"] == 0.01 and config["rlrt"]["shaping"] == "grpo"
    assert config["train"]["eval_start"] is False and config["rlrt"]["seed"] == 0
    heldout = [json.loads(line) for line in (out / "grpo-s0" / "heldout.jsonl").read_text().splitlines()]
    assert [h["step"] for h in heldout] == [2] and heldout[0]["samples"] == 4 and len(heldout[0]["correct"]) == 4
    assert heldout[0]["avg@2"] == heldout[0]["avg@4"]  # eval_samples 2, final 4: one avg@k key throughout
    assert not list((out / "grpo-s0").glob("checkpoint-*"))
    length = result["dynamics"]["grpo-s0"]["completions/mean_length"]
    assert length["early_steps"] == [1, 1] and length["late_steps"] == [2, 2] and length["late"] > 0
    assert "## Training dynamics: growth over each run" in (out / "compare.md").read_text()
    cut = result["dynamics"]["grpo-s0"]["completions/clipped_ratio"]["late"]
    assert cut >= 0.5  # a random tiny model rambles to the 24-token cap: the report says so, with compare's flag
    assert (f"**warning: {100 * cut:.0f} % of the training completions of grpo-s0's last steps were cut at "
            "max_completion_length=24") in (out / "compare.md").read_text()
    assert "raise it with --train max_completion_length=N (or in the arm)" in (out / "compare.md").read_text()

    # A fresh clone keeps only the small files: the rerun skips both runs and rebuilds the same report.
    for run in ("grpo-s0", "grpo_ent-s0"):
        import shutil

        shutil.rmtree(out / run / "final")
    capsys.readouterr()
    assert main(argv) == 0
    rerun = capsys.readouterr().out
    assert rerun.count("finished, skipped") == 2 and "other settings" not in rerun
    assert json.loads((out / "compare.json").read_text())["paired"] == result["paired"]

    # A report with other strata edges rebuilds the report and leaves the record of the runs' launch alone.
    launched = (out / "compare_settings.json").read_text()
    assert main([*argv, "--report_only", "true", "--strata_edges", "0.6"]) == 0
    assert json.loads((out / "compare.json").read_text())["strata"]["edges"] == [0.6]
    assert (out / "compare_settings.json").read_text() == launched

    # A report over runs trained with other settings says so (stderr, compare.md, compare.json), never silently.
    capsys.readouterr()
    assert main([*argv, "learning_rate=1e-5", "--report_only", "true"]) == 0
    assert capsys.readouterr().err.count("trained with other settings than this plan (learning_rate: ") == 2
    assert set(json.loads((out / "compare.json").read_text())["settings_drift"]) == {"grpo-s0", "grpo_ent-s0"}
    assert "**Warning: runs trained with other settings than this plan**" in (out / "compare.md").read_text()
    # A starting-model evaluation of another held-out set is refused, not mixed in.
    assert main([*argv, "dataset=chain", "--report_only", "true"]) == 2
    err = capsys.readouterr().err
    assert "starting model's evaluation under other settings (dataset: " in err and "-> 'chain:test'" in err, err
    # The quick runs under the full plan (the command without --quick): explained, and nothing moved or started.
    full = argv[:argv.index("--quick")] + argv[argv.index("--quick") + 2:]
    assert main([*full, "--report_only", "true"]) == 1
    err = capsys.readouterr().err
    assert "grpo-s0 at step 2 of 60, grpo_ent-s0 at step 2 of 60 finished under a shorter plan" in err, err
    assert main(full) == 2
    err = capsys.readouterr().err
    assert "--quick true" in err and len(err.strip().splitlines()) == 1, err
    assert (out / "grpo-s0" / "summary.json").is_file() and not (out / "abandoned").exists()


# ---- rlrt eval --strata-from ------------------------------------------------------------------------------------


def test_strata_summary_by_hand():
    from rlrt.evaluation.strata import strata_from_results, strata_summary

    # Start file: 4 strata samples per problem (then 2 more that the strata do not use): 0/4, 1/4, 3/4, 4/4.
    start = {"strata_samples": 4, "results": [{"dataset": "d", "problems": [
        {"answer": "1", "correct": [0, 0, 0, 0, 1, 1]}, {"answer": "2", "correct": [1, 0, 0, 0, 0, 0]},
        {"answer": "3", "correct": [1, 1, 1, 0, 0, 0]}, {"answer": "4", "correct": [1, 1, 1, 1, 0, 0]}]}]}
    counts, samples, answers = strata_from_results(start, "d")
    assert (counts, samples, answers) == ([0, 1, 3, 4], 4, ["1", "2", "3", "4"])
    # The evaluated model, 2 samples: correct 1, 0, 2, 1 -> never avg 1/2; <60% 0; >=60% (2/2 + 1/2) / 2 = .75,
    # pass@2 of the >=60% stratum (1 + 1) / 2 = 1.
    problems = [{"answer": a, "correct": c} for a, c in zip("1234", [[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])]
    table = strata_summary(problems, counts, samples, answers)["strata"]
    assert {k: (v["problems"], v["avg"]) for k, v in table.items()} == {"never": (1, 0.5), "<60%": (1, 0.0),
                                                                         ">=60%": (2, 0.75)}
    assert table[">=60%"]["pass"] == pytest.approx({1: 0.75, 2: 1.0})
    # The first 3 problems of the start's 4 (a smaller --limit) keep their own strata; more problems are refused.
    first = strata_summary(problems[:3], counts, samples, answers)["strata"]
    assert {k: (v["problems"], v["avg"]) for k, v in first.items()} == {"never": (1, 0.5), "<60%": (1, 0.0),
                                                                         ">=60%": (1, 1.0)}
    with pytest.raises(ValueError, match="has 4 problems and this one 5: evaluate the same dataset"):
        strata_summary(problems + [{"answer": "5", "correct": [1.0, 0.0]}], counts, samples, answers)
    with pytest.raises(ValueError, match="problem 2 of the --strata-from evaluation has the answer '3' and this one "
                                         "'7'"):
        strata_summary(problems[:2] + [{"answer": "7", "correct": [1.0]}] + problems[3:], counts, samples, answers)
    with pytest.raises(ValueError, match="no per-problem samples"):
        strata_from_results({"results": [{"dataset": "d", "summary": {}}]})


def test_eval_strata_from_cli(tmp_path, tiny_model_dir, capsys, monkeypatch):
    from rlrt.cli import main
    from rlrt.data.registry import load_task

    answers = load_task("addition", split="test", limit=4)["answer"]
    start = tmp_path / "start.json"
    start.write_text(json.dumps({"results": [{"dataset": "addition:test", "problems": [
        {"answer": a, "correct": c} for a, c in zip(answers, [[0, 0], [1, 0], [1, 1], [1, 1]])]}]}))
    out = tmp_path / "eval"
    argv = ["eval", "--model", str(tiny_model_dir), "--limit", "4", "--num_samples", "2", "--max_new_tokens", "4",
            "--bf16", "false", "--output_dir", str(out), "--strata-from", str(start)]
    assert main(argv) == 0
    result = json.loads((out / "results.json").read_text())["results"][0]
    counts = {k: v["problems"] for k, v in result["strata"]["strata"].items()}
    assert counts == {"never": 1, "<60%": 1, ">=60%": 2}  # 0/2, 1/2 (0.5 < 0.6), 2/2, 2/2
    assert "| never | " in (out / "results.md").read_text()
    # A start file on other problems is refused before any model loads or samples.
    import rlrt.models

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the --strata-from check")

    monkeypatch.setattr(rlrt.models, "load_model", no_model)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"results": [{"dataset": "addition:test", "problems": [
        {"answer": "999", "correct": [0]}]}]}))
    assert main(argv[:-1] + [str(bad)]) == 2
    assert "on addition:test has 1 problems and this one 4: evaluate the same dataset" in capsys.readouterr().err
    bad.write_text(json.dumps({"results": [{"dataset": "addition:test", "problems": [
        {"answer": a, "correct": [0]} for a in answers[:3] + ["999"]]}]}))
    assert main(argv[:-1] + [str(bad)]) == 2
    assert f"problem 3 of the --strata-from evaluation on addition:test has the answer '999' and this one " \
           f"'{answers[3]}'" in capsys.readouterr().err


def test_a_run_stopped_before_its_first_checkpoint_starts_over_and_keeps_its_logs(tmp_path):
    from rlrt.compare import finished, set_aside_unresumable

    out = tmp_path / "cmp"
    partial = out / "rlrt-s1"
    partial.mkdir(parents=True)
    (partial / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
    moved = set_aside_unresumable(partial, out)
    assert moved is not None and moved.parent == out / "abandoned" and moved.name.startswith("rlrt-s1-")
    assert (moved / "metrics.jsonl").read_text() == '{"step": 1, "loss": 0.5}\n'
    assert not partial.exists()

    resumable = out / "rlrt-s2"
    (resumable / "checkpoint-15").mkdir(parents=True)
    (resumable / "metrics.jsonl").write_text("{}\n")
    (resumable / "checkpoint-15" / ".rlrt-complete").write_text("")
    assert set_aside_unresumable(resumable, out) is None and resumable.exists()
    assert set_aside_unresumable(out / "grpo-s0", out) is None  # never started

    # A finished run trained with other settings than the plan's is named when skipped.
    from rlrt.compare import PlannedRun, settings_drift

    (resumable / "config.json").write_text(json.dumps({
        "rlrt": {"learning_rate": 5e-06, "shaping": "grpo", "bf16": False},
        "train": {"eval_limit": 64, "reward_funcs": ["accuracy"], "output_dir": "elsewhere"}}))
    planned = PlannedRun("grpo", 2, resumable, {"learning_rate": 5e-6, "shaping": "grpo", "bf16": False,
                                                "eval_limit": 32, "reward_funcs": ["accuracy"], "max_steps": 60,
                                                "output_dir": str(resumable)})
    assert settings_drift(planned) == ["eval_limit: 64 -> 32"]

    # Finished is decided from summary.json alone (what a fresh clone of committed records has).
    (resumable / "summary.json").write_text('{"steps": 15}')
    assert finished(resumable, 15) and not finished(resumable, 60) and not finished(out / "grpo-s0", 1)


@pytest.mark.parametrize("flag", ["--eval_final_samples", "--eval_batch_size"])
def test_held_out_sample_counts_are_checked(flag, capsys):
    from rlrt.cli import main

    assert main(["train", flag, "0"]) == 2
    assert f"{flag} must be >= 1; got 0" in capsys.readouterr().err


@pytest.mark.slow
def test_start_evaluation_resumes_from_its_chunks_with_the_same_samples(tmp_path, tiny_model_dir, monkeypatch):
    """Stopped after its first chunk, the starting model's evaluation goes on from the partial file and ends with
    the samples of an uninterrupted pass; a partial file of other settings is refused."""
    import rlrt.compare as cmp

    train_args, config = cmp.parse_train_flags(
        {"model": str(tiny_model_dir), "bf16": False, "eval_limit": 4, "max_completion_length": 4,
         "output_dir": str(tmp_path / "unused")}, "start")
    whole = cmp.evaluate_start(train_args, config, 3, 2, 5, tmp_path / "a" / "results.json", chunk=2)

    calls, evaluate = [], cmp._evaluate

    def stop_on_second_chunk(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return evaluate(*args)

    monkeypatch.setattr(cmp, "_evaluate", stop_on_second_chunk)
    path = tmp_path / "b" / "results.json"
    with pytest.raises(KeyboardInterrupt):
        cmp.evaluate_start(train_args, config, 3, 2, 5, path, chunk=2)
    partial = path.with_name("results.partial.jsonl")
    assert not path.exists() and [json.loads(x)["first"] for x in partial.read_text().splitlines()] == [0]
    monkeypatch.setattr(cmp, "_evaluate", evaluate)
    with pytest.raises(ValueError, match="other settings"):
        cmp.evaluate_start(train_args, config, 4, 2, 5, path, chunk=2)
    cmp.evaluate_start(train_args, config, 3, 2, 5, path, chunk=2)
    first, second = json.loads(whole.read_text()), json.loads(path.read_text())
    assert second["results"][0]["problems"] == first["results"][0]["problems"]
    assert len(first["results"][0]["problems"]) == 4 and not partial.exists()
    assert cmp.load_start(path).strata_samples == 2


def test_start_drift_names_another_dataset_seed_and_refuses_other_layouts(tmp_path):
    from types import SimpleNamespace

    from rlrt.compare import load_start, start_drift

    path = tmp_path / "results.json"
    record = {"model": "m", "dataset": "rg:chain_sum:test", "problems": [{"answer": "1", "correct": [1, 0]}]}
    path.write_text(json.dumps({"results": [{**record, "dataset_seed": 0}]}))
    planned = SimpleNamespace(model="m", eval_dataset="rg:chain_sum:test", eval_dataset_seed=3)
    assert start_drift(path, planned) == ["dataset_seed: 0 -> 3"]
    path.write_text(json.dumps({"results": [record]}))  # a start recorded before dataset_seed was: not compared
    assert start_drift(path, planned) == [] and load_start(path).answers == ["1"]
    for text in ("{}", '{"results": []}', '{"results": [{"model": "m"}]}', "not json"):
        path.write_text(text)
        with pytest.raises(ValueError, match="is not a starting-model results.json .*: move it away, and compare "
                                             "evaluates the starting model again"):
            start_drift(path, planned)


def test_summary_steps_of_a_corrupt_summary_is_one_line(tmp_path):
    from rlrt.io import summary_steps

    assert summary_steps(tmp_path) is None
    (tmp_path / "summary.json").write_text('{"steps": 60}')
    assert summary_steps(tmp_path) == 60
    for text in ("{", "[1]", '{"steps": "many"}'):
        (tmp_path / "summary.json").write_text(text)
        with pytest.raises(ValueError, match="summary.json is not a run summary"):
            summary_steps(tmp_path)


def test_inspector_page_embeds_strict_json():
    import math

    from rlrt.analysis.html import render_inspect_html

    page = render_inspect_html({"arguments": {}, "problems": [{"kl": math.nan, "ratio": math.inf}]})
    assert "NaN" not in page and "Infinity" not in page and '"kl": null' in page
