"""Bad input and edge cases (issue 14): every input gets the right result or one clear line.

Each test holds the right value for one reported case of a kind of fault; the trainer tests use the tiny random
model of ``conftest.py`` and ``parity_reward``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rlrt.data import build_dataset, load_local, load_task
from rlrt.data.loaders import HUB_PRESETS

# ------------------------------------------------------------------------------------------- data: columns


def test_local_file_keeps_every_column(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"question": f"q{i}?", "answer": str(i), "difficulty": i % 3,
                                          "meta": {"src": "x"}}) for i in range(4)))
    ds = load_local(path)
    assert ds["difficulty"] == [0, 1, 2, 0] and ds["meta"][0] == {"src": "x"}
    assert {"prompt", "question", "answer", "solution"} <= set(ds.column_names)
    csv = tmp_path / "d.csv"
    csv.write_text("question,answer,difficulty\na?,1,easy\nb?,2,hard\n")
    assert load_local(csv)["difficulty"] == ["easy", "hard"]
    via_registry = load_task(str(path), limit=2)
    assert via_registry["difficulty"] == [0, 1]


def test_build_dataset_keeps_extra_columns_even_when_rows_differ():
    rows = [{"question": "a?", "answer": "1", "tag": "t"}, {"question": "b?", "answer": "2", "level": 3}]
    ds, _ = build_dataset(rows)
    assert ds["tag"] == ["t", None] and ds["level"] == [None, 3]
    mapped, _ = build_dataset([{"problem": "a?", "gold": "1", "extra": 5}], question_column="problem",
                              answer_column="gold")
    assert mapped["extra"] == [5] and "problem" in mapped.column_names


def test_hub_preset_record_keeps_extra_columns():
    from rlrt.data.loaders import _preset_record

    record = {"problem": "p?", "answer": "4", "solution": "s", "level": 5, "subject": "Algebra"}
    out = _preset_record(HUB_PRESETS["math500"], record)
    assert out["level"] == 5 and out["subject"] == "Algebra" and out["answer"] == "4"


# --------------------------------------------------------------------------------------- data: hub splits


def test_hub_preset_split_is_the_one_asked_for(monkeypatch):
    import datasets

    asked = []

    def fake_load_dataset(path, name=None, split=None, **kwargs):
        asked.append((path, split))
        return datasets.Dataset.from_list([{"question": "q?", "answer": "so #### 7"}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert load_task("gsm8k", split="train")["answer"] == ["7"]
    assert load_task("gsm8k", split="test")["answer"] == ["7"]
    load_task("gsm8k")  # no split named: the preset's default
    assert asked == [("openai/gsm8k", "train"), ("openai/gsm8k", "test"), ("openai/gsm8k", "test")]


def test_hub_preset_missing_split_lists_the_presets_splits(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(ValueError, match=r"math500 has no 'train' split.*\['test'\]"):
        load_task("math500", split="train")


def test_split_spec_without_suffix_leaves_the_split_to_the_source():
    from rlrt.data.registry import split_spec

    assert split_spec("gsm8k:train") == ("gsm8k", "train")
    assert split_spec("math500")[1] is None
    assert len(load_task("addition", split=None, limit=3)) == 3  # the built-in task's default is its train split


# ------------------------------------------------------------------------------------- data: broken files


def test_empty_jsonl_is_one_clear_error(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    with pytest.raises(ValueError, match=r"empty\.jsonl is empty"):
        load_local(path)
    path.write_text("\n  \n")
    with pytest.raises(ValueError, match=r"empty\.jsonl is empty"):
        load_local(path)


def test_bad_json_line_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "a?", "answer": "1"}\n{"question": "b?", "answer": \n')
    with pytest.raises(ValueError, match=r"bad\.jsonl line 2 is not valid JSON"):
        load_local(path)
    path.write_text('{"question": "a?", "answer": "1"}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl line 2 .*JSON object"):
        load_local(path)


def test_unreadable_dataset_file_is_one_clear_error(tmp_path, monkeypatch):
    import rlrt.data.loaders as loaders

    path = tmp_path / "locked.jsonl"
    path.write_text('{"question": "a?", "answer": "1"}\n')
    real_access = loaders.os.access
    monkeypatch.setattr(loaders.os, "access", lambda p, mode: False if str(p) == str(path) else real_access(p, mode))
    with pytest.raises(ValueError, match=r"cannot read dataset file .*locked\.jsonl \(permission denied\)"):
        load_local(path)


def test_directory_given_as_dataset_file(tmp_path):
    folder = tmp_path / "data.jsonl"
    folder.mkdir()
    with pytest.raises(ValueError, match=r"data\.jsonl is a folder"):
        load_local(folder)


def test_split_or_options_a_source_cannot_honour_are_refused(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"question": "a?", "answer": "1"}\n')
    with pytest.raises(ValueError, match=r"local file, which has no 'test' split"):
        load_task(str(path), split="test")
    with pytest.raises(ValueError, match=r"built-in task .* takes no dataset options; got \['question_column'\]"):
        load_task("addition", question_column="q")


# ------------------------------------------------------------------------------------------------ config


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(max_steps=0), r"max_steps=0 would train no step"),
        (dict(max_steps=-3), r"max_steps=-3 would train no step"),
        (dict(num_generations=0), r"num_generations must be >= 2; got 0"),
        (dict(per_device_train_batch_size=0), r"per_device_train_batch_size must be >= 1; got 0"),
        (dict(gradient_accumulation_steps=0), r"gradient_accumulation_steps must be >= 1; got 0"),
        (dict(max_completion_length=0), r"max_completion_length must be >= 1; got 0"),
        (dict(temperature=0.0), r"temperature must be > 0"),
        (dict(max_failed_reward_steps=-1), r"max_failed_reward_steps must be >= 0"),
    ],
)
def test_nonsense_counts_are_refused(overrides, message):
    from rlrt import RLRTConfig

    with pytest.raises(ValueError, match=message):
        RLRTConfig(output_dir="unused", **overrides)


def test_batch_that_does_not_split_into_groups_names_the_settings_the_user_set():
    from rlrt import RLRTConfig

    with pytest.raises(ValueError) as caught:
        RLRTConfig(output_dir="unused", per_device_train_batch_size=6, num_generations=4)
    message = str(caught.value)
    assert "per_device_train_batch_size (6)" in message and "num_generations (4)" in message
    assert "per_device_train_batch_size=8" in message and "generation_batch_size" not in message
    with pytest.raises(ValueError, match=r"steps_per_generation \(3\)"):
        RLRTConfig(output_dir="unused", per_device_train_batch_size=6, steps_per_generation=3, num_generations=4)
    with pytest.raises(ValueError, match=r"generation_batch_size \(6\) must be a multiple of num_generations \(4\)"):
        RLRTConfig(output_dir="unused", per_device_train_batch_size=2, generation_batch_size=6, num_generations=4)


def test_known_library_warnings_are_filtered_by_message_only():
    import warnings

    from rlrt.config import filter_known_warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        filter_known_warnings()
        warnings.warn("`gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning, stacklevel=2)
        warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning,
                      stacklevel=2)
        warnings.warn("something else is deprecated", FutureWarning, stacklevel=2)
        warnings.warn("`gradient_checkpointing` is deprecated", UserWarning, stacklevel=2)
    assert [(w.category, str(w.message)) for w in caught] == [
        (FutureWarning, "something else is deprecated"), (UserWarning, "`gradient_checkpointing` is deprecated")]


def test_pyproject_license_is_an_spdx_string():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"


# ----------------------------------------------------------------------------------------- reward values


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_reward_is_refused_naming_the_function(bad):
    from collections import Counter

    from rlrt.reliability import RewardFunctionError, guard_reward_function

    def exploding(prompts, completions, **kw):
        return [1.0, bad, None]

    guarded = guard_reward_function(exploding, "skip", Counter())
    with pytest.raises(RewardFunctionError, match=r"'exploding' returned .*(inf|nan).* for sample 1.*None"):
        guarded(prompts=["p"] * 3, completions=["c"] * 3)
    fine = guard_reward_function(lambda prompts, completions, **kw: [1.0, None, 0], "skip", Counter())
    assert fine(prompts=["p"] * 3, completions=["c"] * 3) == [1.0, None, 0]


def test_broken_reward_streak_stops_after_the_limit_naming_the_last_error():
    from rlrt.reliability import BrokenRewardWatch, RewardFunctionError

    watch = BrokenRewardWatch(limit=3)
    watch.update("f", failed=8, samples=8, last_error="KeyError: 'difficulty'")
    watch.update("f", failed=3, samples=8, last_error="KeyError: 'difficulty'")  # some samples fine: streak resets
    watch.update("f", failed=8, samples=8, last_error="KeyError: 'difficulty'")
    watch.update("f", failed=8, samples=8, last_error="KeyError: 'difficulty'")
    with pytest.raises(RewardFunctionError, match=r"'f' failed on every sample of 3 consecutive.*KeyError: 'diff"):
        watch.update("f", failed=8, samples=8, last_error="KeyError: 'difficulty'")
    BrokenRewardWatch(limit=0).update("f", failed=8, samples=8, last_error="x")  # 0 disables


def test_no_correct_rollout_warns_once(caplog):
    from rlrt.reliability import NoCorrectWatch

    watch = NoCorrectWatch(limit=2)
    with caplog.at_level("WARNING", logger="rlrt.reliability"):
        for any_correct in (False, True, False, False, False, False):
            watch.update(any_correct)
    warnings = [r.getMessage() for r in caplog.records if "no rollout" in r.getMessage()]
    assert len(warnings) == 1
    assert "2 consecutive" in warnings[0] and "easier task" in warnings[0] and "num_generations" in warnings[0]


# -------------------------------------------------------------------------------------------- answers


def test_list_answer_means_any_of_these_is_right():
    from rlrt.rewards import accuracy_reward

    completions = [[{"role": "assistant", "content": "so \\boxed{5}"}]] * 3
    scores = accuracy_reward(completions=completions, answer=[["5", "five"], ["7", "8"], ["3", "5"]])
    assert scores == [1.0, 0.0, 1.0]


def test_any_of_grading_in_evaluation():
    from rlrt.evaluation.evaluate import score_samples
    from rlrt.rewards.math import MathVerifier

    assert score_samples([["\\boxed{5}", "\\boxed{6}"]], [["5", "6"]], MathVerifier()) == [[1.0, 1.0]]


def test_answer_context_of_a_list_answer_is_not_its_repr():
    from rlrt.teacher import answer_as_solution

    assert answer_as_solution(["5", "five"]) == "The final answer is \\boxed{5}."


@pytest.mark.parametrize(
    "answers, message",
    [
        (["1", "", "3"], r"row 1, column 'answer': empty"),
        (["1", "2", []], r"row 2, column 'answer': an empty list"),
        (["1", None, "3"], r"row 1, column 'answer': missing"),
        (["1", "2", ["4", " "]], r"row 2, column 'answer': .*empty"),
        (["1", {"x": 1}, "3"], r"row 1, column 'answer': a dict"),
    ],
)
def test_bad_answers_are_refused_when_the_trainer_is_built(tmp_path, tiny_model_dir, tokenizer, answers, message):
    from datasets import Dataset

    from rlrt import RLRTConfig, RLRTTrainer
    from rlrt.rewards import parity_reward

    rows = [{"prompt": [{"role": "user", "content": f"q{i}"}], "answer": a} for i, a in enumerate(answers)]
    same_type = all(a is None or isinstance(a, str) for a in answers)
    dataset = Dataset.from_list(rows) if same_type else _object_dataset(rows)
    args = RLRTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, report_to="none")
    with pytest.raises(ValueError, match=message):
        RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward], args=args, train_dataset=dataset,
                    processing_class=tokenizer)


def _object_dataset(rows):
    """A torch-style dataset (a list of dicts): no Arrow typing, so any Python value reaches the trainer."""

    class Rows(list):
        column_names = ["prompt", "answer"]

        def __getitem__(self, key):
            if isinstance(key, str):
                return [r[key] for r in self]
            return list.__getitem__(self, key)

    return Rows(rows)


def test_build_dataset_keeps_list_answers_as_lists():
    ds, _ = build_dataset([{"question": "a?", "answer": ["5", "five"]}, {"question": "b?", "answer": 3}])
    assert ds["answer"] == [["5", "five"], ["3"]]
    with pytest.raises(ValueError, match=r"row 0: column 'answer' is an empty list"):
        build_dataset([{"question": "a?", "answer": []}])


# ------------------------------------------------------------------------------------- rlrt train, end to end

TINY = ["--per_device_train_batch_size", "4", "--num_generations", "2", "--max_completion_length", "4",
        "--eval_dataset", "none", "--bf16", "false", "--disable_tqdm", "true"]


@pytest.mark.slow
def test_extra_column_reaches_the_reward_and_a_broken_reward_stops_the_run(tmp_path, tiny_model_dir, capsys):
    from rlrt.callbacks import read_jsonl
    from rlrt.cli import main

    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps({"question": f"q{i}?", "answer": str(i), "difficulty": 0.25})
                              for i in range(8)))
    rewards = tmp_path / "rewards.py"
    rewards.write_text("def by_difficulty(completions, difficulty, **kw):\n    return [float(d) for d in difficulty]\n"
                       "def broken(completions, **kw):\n    raise KeyError('level')\n")
    run = tmp_path / "ok"
    assert main(["train", "--model", str(tiny_model_dir), "--dataset", str(data), "--output_dir", str(run),
                 "--reward_funcs", f"{rewards}:by_difficulty", "--max_steps", "1", *TINY]) == 0
    logged = [m for m in read_jsonl(run / "metrics.jsonl") if "reward" in m]
    assert logged[0]["rewards/by_difficulty/mean"] == 0.25 and logged[0]["rewards/by_difficulty/errors"] == 0
    assert "Loading weights" not in capsys.readouterr().err  # the one progress bar of a run is the training one

    capsys.readouterr()
    code = main(["train", "--model", str(tiny_model_dir), "--dataset", str(data), "--output_dir", str(tmp_path / "bad"),
                 "--reward_funcs", f"{rewards}:broken", "--max_steps", "5", "--max_failed_reward_steps", "2", *TINY])
    err = capsys.readouterr().err
    assert code == 1
    line = [x for x in err.splitlines() if x.startswith("rlrt train: error:")]
    assert len(line) == 1 and "'broken' failed on every sample of 2 consecutive" in line[0] and "KeyError" in line[0]
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------- the command line


def _error_line(capsys, command):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith(f"rlrt {command}: error: "), err
    return lines[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--shapping", "grpo"], "unknown flag --shapping (did you mean --shaping?)"),
        (["train", "--max_step", "3"], "unknown flag --max_step (did you mean --max_steps?)"),  # no silent prefixes
        (["eval", "--num_sample", "3"], "unknown flag --num_sample (did you mean --num_samples?)"),
        (["inspect", "--critical_position", "2"], "(did you mean --critical_positions?)"),
        (["report", "--skipshift"], "(did you mean --skip_shift?)"),
        (["train", "--lr_scheduler_type", "constnt"], "invalid choice: 'constnt'"),  # a bad value: no usage dump
        (["train", "--lr_scheduler_type", "constnt"], "(did you mean 'constant'?)"),
        (["train", "--bf16", "maybe"], "argument --bf16"),
        (["eval", "--num_samples", "many"], "invalid int value: 'many'"),
        (["eval", "--num_samples", "many"], "(`rlrt eval --help` lists the options)"),  # which command's --help
        (["train", "--bf16", "maybe"], "(`rlrt train --help` lists the options)"),
        # --dataset_options keys that have a flag of their own: the flag of this command
        (["train", "--dataset_options", '{"limit": 3}'], "drop it and use --dataset_limit (training problems) or "
                                                          "--eval_limit"),
        (["train", "--dataset_options", '{"seed": 3}'], "use --seed for the training order (rlrt compare: --seeds) "
                                                         "or --eval_dataset_seed"),
        (["eval", "--dataset_options", '{"seed": 3}'], "--dataset_options sets 'seed', which has its own flag: drop "
                                                        "it and use --dataset_seed."),
        (["eval", "--dataset_options", '{"size": 5}'], "sets 'size', which has its own flag: drop it and use --limit"),
        (["eval", "--dataset_options", '{"split": "test"}'], "use the dataset spec (e.g. chain:test)"),
        (["interventions", "--dataset_options", '{"limit": 2}'], "drop it and use --limit."),
        (["eval", "--strata_model", "base"], "--strata_model names the starting model inside a --strata-from file"),
    ],
)
def test_misspelled_flag_suggests_the_closest_name(capsys, argv, message):
    from rlrt.cli import main

    assert main(argv) == 2
    assert message in _error_line(capsys, argv[0])


def test_config_file_errors_name_the_file_and_key(tmp_path, capsys):
    from rlrt.cli import main

    config = tmp_path / "run.yaml"
    config.write_text("shaping: grpo\nmax_stepz: 3\n")
    assert main(["train", "--config", str(config)]) == 2
    assert f"unknown key 'max_stepz' in {config} (did you mean 'max_steps'?)" in _error_line(capsys, "train")
    config.write_text("shaping: [grpo\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "is not valid YAML" in _error_line(capsys, "train")


def test_unknown_command_suggests_the_closest(capsys):
    from rlrt.cli import main

    assert main(["trian"]) == 2
    captured = capsys.readouterr()
    assert not captured.out and captured.err == (  # one line (the whole help above it buried it)
        "rlrt: error: unknown command 'trian' (did you mean 'train'?); the commands are train, eval, inspect, "
        "report, interventions, compare (`rlrt --help`).\n")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--max_steps", "0"], "max_steps=0 would train no step"),
        (["train", "--eval_limit", "0"], "--eval_limit must be >= 1; got 0 (--eval_dataset none"),
        (["train", "--eval_samples", "-2"], "--eval_samples must be >= 1; got -2"),
        (["train", "--num_generations", "1"], "num_generations must be >= 2; got 1"),
        (["eval", "--num_samples", "0"], "--num_samples must be >= 1; got 0"),
        (["eval", "--limit", "0"], "--limit must be >= 1; got 0"),
        (["eval", "--max_new_tokens", "0"], "max_new_tokens and batch_size must be >= 1"),
    ],
)
def test_nonsense_counts_on_the_command_line(tmp_path, capsys, argv, message):
    from rlrt.cli import main

    assert main([*argv, "--output_dir", str(tmp_path / "out")]) == 2
    assert message in _error_line(capsys, argv[0])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["train", "eval", "inspect", "report"])
def test_output_dir_under_a_regular_file(tmp_path, capsys, command):
    from rlrt.cli import main

    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    assert main([command, "--output_dir", str(blocker / "run")]) == 2
    line = _error_line(capsys, command)
    assert f"--output_dir {blocker / 'run'} is under {blocker}, which is a file" in line and "choose another" in line


@pytest.mark.parametrize(("command", "marker", "owner"), [
    ("train", "compare.json", "rlrt compare"),  # a run trained into a comparison's folder (a new user did)
    ("train", "report.md", "rlrt report"),  # was: "finished at step 0", the report's summary.json read as the run's
    ("report", "compare_settings.json", "rlrt compare"),  # a report of other runs mixed into a comparison
    ("report", "metrics.jsonl", "rlrt train"),  # an unfinished run: a resume would read the report's summary.json
    ("compare", "metrics.jsonl", "rlrt train"),
])
def test_a_folder_owning_command_refuses_another_commands_folder(tmp_path, capsys, command, marker, owner):
    import json

    from rlrt.cli import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 0.0, "reward": 0.5}) + "\n")
    folder = tmp_path / "theirs"
    folder.mkdir()
    (folder / marker).write_text("{}")
    if marker == "report.md":  # a report's summary.json, which a resume used to read as the run's
        (folder / "summary.json").write_text('{"arguments": {}, "groups": []}')
    before = sorted(p.name for p in folder.iterdir())
    argv = {"train": ["train", "--max_steps", "1"], "report": ["report", "--runs", str(run), "--skip_shift", "true"],
            "compare": ["compare", "--arms", "grpo", "--quick", "true"]}[command]
    assert main([*argv, "--output_dir", str(folder)]) == 2
    line = _error_line(capsys, command)
    assert f"--output_dir {folder} holds the output of `{owner}` ({marker}): choose another --output_dir" in line
    assert sorted(p.name for p in folder.iterdir()) == before and (folder / marker).read_text() == "{}"


def test_a_run_folder_that_also_holds_a_report_says_to_move_the_report_not_the_run(tmp_path, capsys):
    """Choosing another --output_dir would abandon the run; the report's files are what must go."""
    from rlrt.cli import main

    run = tmp_path / "run"
    run.mkdir()
    for name in ("metrics.jsonl", "report.md", "summary.json"):
        (run / name).write_text("{}")
    assert main(["train", "--max_steps", "1", "--output_dir", str(run)]) == 2
    assert (f"--output_dir {run} also holds the output of `rlrt report` (report.md): move that command's files out "
            "of it to continue `rlrt train` there") in _error_line(capsys, "train")


def test_output_dir_that_cannot_be_created(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    from rlrt.cli import main

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert main(["train", "--output_dir", str(tmp_path / "locked" / "run")]) == 2
    line = _error_line(capsys, "train")
    assert "locked/run cannot be created (permission denied): choose a folder you can write to" in line


def test_empty_dataset_file_on_the_command_line(tmp_path, tiny_model_dir, capsys):
    from rlrt.cli import main

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["train", "--model", str(tiny_model_dir), "--dataset", str(empty), "--output_dir",
                 str(tmp_path / "run"), *TINY]) == 2
    captured = capsys.readouterr()
    assert "held-out evaluation is off" not in captured.out  # a refused run prints its one error line, no note
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"rlrt train: error: Dataset file {empty} is empty"), lines


def test_ctrl_c_during_eval_writes_the_finished_pairs(tmp_path, tiny_model_dir, capsys, monkeypatch):
    import rlrt.evaluation.evaluate as evaluate
    from rlrt.cli import main

    real = evaluate.evaluate_model
    calls = []

    stopped = []

    def interrupt_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2 and not stopped:  # the first run's second pair only
            stopped.append(1)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate, "evaluate_model", interrupt_second)
    out = tmp_path / "eval"
    argv = ["eval", "--model", str(tiny_model_dir), "--dataset", "addition:test", "addition:train", "--limit", "2",
            "--max_new_tokens", "2", "--num_samples", "1", "--output_dir", str(out)]
    assert main(argv) == 130
    line = [x for x in capsys.readouterr().err.splitlines() if x.startswith("rlrt eval:")]
    assert line == [f"rlrt eval: stopped by SIGINT; wrote the 1 finished checkpoint x dataset result(s) to "
                    f"{out / 'results.json'}. Run the same command again for the rest (the finished ones are "
                    "skipped)."]
    payload = json.loads((out / "results.json").read_text())
    assert payload["stopped_by"] == "SIGINT" and [r["dataset"] for r in payload["results"]] == ["addition:test"]
    assert payload["results"][0]["summary"]["problems"] == 2
    first = payload["results"][0]

    # The rerun the message promises: only the unfinished pair is sampled; the finished one is kept as it was.
    calls.clear()
    assert main(argv) == 0
    assert len(calls) == 1
    assert "addition:test already in" in capsys.readouterr().err
    payload = json.loads((out / "results.json").read_text())
    assert "stopped_by" not in payload and [r["dataset"] for r in payload["results"]] == ["addition:test",
                                                                                          "addition:train"]
    assert payload["results"][0] == first
    # Another dataset into the same folder is added beside the results there (the reported case: they were dropped).
    calls.clear()
    capsys.readouterr()
    other = [*argv[:argv.index("addition:test")], "chain:test", *argv[argv.index("--limit"):]]
    assert main(other) == 0 and len(calls) == 1
    payload = json.loads((out / "results.json").read_text())
    assert [r["dataset"] for r in payload["results"]] == ["addition:test", "addition:train", "chain:test"]
    assert payload["results"][0] == first
    # Other settings (here more samples) are refused in one line before any model loads; nothing is overwritten.
    before = (out / "results.json").read_text()
    calls.clear()
    capsys.readouterr()
    assert main([*argv[:-4], "--num_samples", "2", *argv[-2:]]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"rlrt eval: error: {out / 'results.json'} holds an evaluation with other settings (num_samples 1 "
                   f"there, 2 here): choose another --output_dir, or move {out / 'results.json'} away (nothing there "
                   "is overwritten)."), err
    assert not calls and (out / "results.json").read_text() == before


# ------------------------------------------------------------------------------------------------ resume


def _record(argv):
    from rlrt.cli import parse_command
    from rlrt.run import config_record

    (train_args, config), _ = parse_command("train", ["--output_dir", "unused", *argv])
    return config_record(train_args, config)


def test_resume_with_the_same_settings_changes_nothing(tmp_path):
    from rlrt.run import resume_changes

    argv = ["--shaping", "grpo", "--per_device_train_batch_size", "8", "--num_generations", "4"]
    assert resume_changes(_record(argv), _record(argv), tmp_path) == {}


def test_resume_with_another_shape_of_training_is_refused_by_name(tmp_path):
    from rlrt.run import resume_changes

    first = _record([])
    with pytest.raises(ValueError) as caught:
        resume_changes(first, _record(["--per_device_train_batch_size", "8", "--num_generations", "4",
                                       "--shaping", "grpo", "--model", "other", "--dataset", "rg:chain_sum",
                                       "--max_steps", "20"]), tmp_path)
    message = str(caught.value)
    for change in ("per_device_train_batch_size: 16 -> 8", "num_generations: 8 -> 4", "shaping: 'rlrt' -> 'grpo'",
                   "model: 'smollm2-135m' -> 'other'", "dataset: 'addition' -> 'rg:chain_sum'"):
        assert change in message
    assert "max_steps: " not in message and "another --output_dir" in message


def test_resume_may_change_logging_saving_and_length(tmp_path):
    from rlrt.run import resume_changes

    changed = resume_changes(_record([]), _record(["--max_steps", "20", "--logging_steps", "5", "--save_steps", "3",
                                                   "--eval_every", "4", "--report_to", "tensorboard",
                                                   "--disable_tqdm", "true"]), tmp_path)
    assert changed["rlrt.max_steps"] == [8, 20] and changed["rlrt.logging_steps"] == [1, 5]
    assert changed["train.eval_every"] == [0, 4] and changed["rlrt.disable_tqdm"][1] is True
    assert set(changed) == {"rlrt.max_steps", "rlrt.logging_steps", "rlrt.save_steps", "train.eval_every",
                            "rlrt.report_to", "rlrt.disable_tqdm"}


def test_code_record_names_the_commit_of_the_source_tree(tmp_path, monkeypatch):
    import subprocess
    from importlib import metadata

    from rlrt import provenance

    def git(*args, cwd=tmp_path / "repo"):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                              capture_output=True, text=True).stdout.strip()

    package = tmp_path / "repo" / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("x = 1\n")
    (tmp_path / "repo" / "notes.md").write_text("a\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "first")
    head = git("rev-parse", "HEAD")
    assert provenance.git_state(package) == {"commit": head, "uncommitted_changes": False}
    (tmp_path / "repo" / "notes.md").write_text("b\n")  # outside the source tree: not the code
    assert provenance.git_state(package)["uncommitted_changes"] is False
    (package / "__init__.py").write_text("x = 2\n")
    assert provenance.git_state(package) == {"commit": head, "uncommitted_changes": True}
    copy = tmp_path / "repo" / "venv" / "pkg"  # an installed copy inside another checkout is not its code
    copy.mkdir(parents=True)
    (copy / "__init__.py").write_text("x = 1\n")
    none = {"commit": None, "uncommitted_changes": None}
    assert provenance.git_state(copy) == none
    (tmp_path / "plain").mkdir()
    assert provenance.git_state(tmp_path / "plain") == none  # not a checkout

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(provenance.subprocess, "run", no_git)
    assert provenance.git_state(package) == none
    record = provenance.code_record(package)
    assert record["commit"] is None and record["rlrt"] == metadata.version("rlrt")
    assert record["packages"] == {name: metadata.version(name) for name in ("trl", "transformers", "torch")}


def test_config_record_holds_the_code_and_a_new_commit_is_no_settings_change(tmp_path):
    import subprocess

    import rlrt
    from rlrt.run import resume_changes

    first = _record([])
    source = Path(rlrt.__file__).parent
    checkout = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert first["code"]["commit"] == (checkout.stdout.strip() if checkout.returncode == 0 else None)
    assert set(first["code"]) == {"rlrt", "commit", "uncommitted_changes", "packages"}
    now = _record([])
    now["code"] = {**now["code"], "commit": "0" * 40, "uncommitted_changes": True, "rlrt": "9.9"}
    assert resume_changes(first, now, tmp_path) == {}


@pytest.mark.slow
def test_resume_refusal_and_record_end_to_end(tmp_path, tiny_model_dir, capsys):
    from rlrt.cli import main

    run = tmp_path / "run"
    base = ["train", "--model", str(tiny_model_dir), "--output_dir", str(run), "--reward_funcs",
            "rlrt.rewards:parity_reward", "--dataset_limit", "8", "--save_strategy", "steps", "--save_steps", "1",
            *TINY]
    assert main([*base, "--max_steps", "1"]) == 0
    original = (run / "config.json").read_text()
    capsys.readouterr()
    assert main([*base, "--max_steps", "2", "--shaping", "grpo"]) == 2
    assert "shaping: 'rlrt' -> 'grpo'" in _error_line(capsys, "train")
    assert (run / "config.json").read_text() == original
    assert main([*base, "--max_steps", "2", "--logging_steps", "2"]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["rlrt"]["max_steps"] == 1 and saved["rlrt"]["logging_steps"] == 1  # the first start's settings
    assert saved["resumes"] == [{**saved["resumes"][0], "step": 1,
                                 "changed": {"rlrt.max_steps": [1, 2], "rlrt.logging_steps": [1, 2]}}]
    assert saved["code"]["packages"]["trl"] and saved["resumes"][0]["code"]["packages"] == saved["code"]["packages"]
    card = (run / "README.md").read_text()  # TRL's model card, written with each checkpoint
    assert f"fine-tuned version of `{tiny_model_dir}`" in card and "huggingface.co/None" not in card


def test_chat_template_rejecting_the_system_role_fails_when_the_trainer_is_built(tmp_path, tiny_model_dir):
    from datasets import Dataset
    from transformers import AutoTokenizer

    from rlrt import RLRTConfig, RLRTTrainer
    from rlrt.rewards import parity_reward

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = ("{% for m in messages %}{% if m['role'] == 'system' %}"
                               "{{ raise_exception('System role not supported') }}{% endif %}"
                               "{{ m['content'] }}{% endfor %}")
    dataset = Dataset.from_list([{"prompt": [{"role": "system", "content": "Be brief."},
                                             {"role": "user", "content": f"q{i}"}], "answer": "1"} for i in range(4)])
    args = RLRTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, report_to="none")
    with pytest.raises(ValueError, match=r"chat template rejects .*System role not supported.*system_prompt"):
        RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward], args=args, train_dataset=dataset,
                    processing_class=tokenizer)


# ----------------------------------------------------------------------------------------- the first run


def test_live_lines_warnings_and_logs_go_above_the_progress_bar(monkeypatch):
    import io
    import logging
    import warnings
    from types import SimpleNamespace

    from rlrt.callbacks import LiveLineCallback

    screen = io.StringIO()  # stdout and stderr share one terminal
    monkeypatch.setattr("sys.stdout", screen)
    monkeypatch.setattr("sys.stderr", screen)
    callback = LiveLineCallback()
    state = SimpleNamespace(is_world_process_zero=True, is_local_process_zero=True, max_steps=2, global_step=1)
    callback.on_train_begin(SimpleNamespace(), state, None)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a library warning", UserWarning, stacklevel=2)
    logging.getLogger("rlrt.reliability").warning("an rlrt warning")
    callback.on_log(SimpleNamespace(), state, None, logs={"reward": 0.5})
    callback.on_train_end(SimpleNamespace(), state, None)
    text = screen.getvalue()
    for printed in ("UserWarning: a library warning", "an rlrt warning", "step 1/2 | reward 0.500"):
        line = next(x for x in text.split("\n") if printed in x)
        start = line.index(printed)
        shown = line[line.rfind("\r", 0, start) + 1 :]  # what a terminal shows after the bar was cleared
        assert "it/s" not in shown and "%|" not in shown, repr(line)
    assert __import__("warnings").showwarning.__name__ != "_warning_above_bar"  # restored after training


# ----------------------------------------------------------------------------- names: the closest valid one


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: __import__("rlrt").RLRTConfig(output_dir="x", shaping="rlrt_al"), "(did you mean 'rlrt_all'?)"),
        (lambda: __import__("rlrt").RLRTConfig(output_dir="x", teacher_weights="emaa"), "(did you mean 'ema'?)"),
        (lambda: __import__("rlrt").RLRTConfig(output_dir="x", loss_type="dapoo"), "(did you mean 'dapo'?)"),
        (lambda: load_task("additon"), "(did you mean 'addition'?)"),
        (lambda: load_task("rg:chain_summ"), "(did you mean 'chain_sum'?)"),
        (lambda: __import__("rlrt.run").run.load_reward_funcs(["acuracy"]), "(did you mean 'accuracy'?)"),
    ],
)
def test_misspelled_names_suggest_the_closest_valid_one(call, message):
    with pytest.raises(ValueError) as caught:
        call()
    assert message in str(caught.value)


def test_misspelled_local_file_option(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"problem": "a?", "answer": "1"}\n')
    with pytest.raises(ValueError, match=r"option 'question_colum' \(did you mean 'question_column'\?\)"):
        load_task(str(path), question_colum="problem")


def _train_loader(spec):
    from rlrt.run import load_reward_funcs

    return load_reward_funcs([spec])[0]


def _interventions_loader(spec):
    from rlrt.analysis.intervention_run import load_reward_function

    return load_reward_function(spec)


@pytest.mark.parametrize("load, flag", [(_train_loader, "--reward_funcs"), (_interventions_loader, "--reward_func")],
                         ids=["train", "interventions"])
def test_reward_file_with_an_error_is_one_line_naming_it(tmp_path, load, flag):
    broken = tmp_path / "broken.py"
    broken.write_text("def f(completions, **kw):\n    return [1.0 for c in completions\n")
    with pytest.raises(ValueError, match=r"broken\.py line \d+ has a syntax error.*\(from " + flag):
        load(f"{broken}:f")
    failing = tmp_path / "failing.py"
    failing.write_text("import no_such_module_h14\n")
    with pytest.raises(ValueError, match=r"importing .*failing\.py line 1 failed: ModuleNotFoundError"):
        load(f"{failing}:f")
    typo = tmp_path / "typo.py"
    typo.write_text("def parity(completions, **kw):\n    return [1.0] * len(completions)\n")
    with pytest.raises(ValueError, match=r"has no function 'pariti' \(did you mean 'parity'\?\)"):
        load(f"{typo}:pariti")
    with pytest.raises(ValueError, match=r"Unknown reward function 'acuracy' \(did you mean 'accuracy'\?\)"):
        load("acuracy")
    with pytest.raises(FileNotFoundError, match=r"missing\.py does not exist \(from " + flag):
        load(f"{tmp_path / 'missing.py'}:f")
    assert load(f"{typo}:parity")(completions=["a", "b"]) == [1.0, 1.0]
    # A valid file that Python's own machinery looks up by module name (the reported case: @dataclass with
    # postponed annotations failed to import).
    dataclass_file = tmp_path / "scored.py"
    dataclass_file.write_text("from __future__ import annotations\nfrom dataclasses import dataclass\n\n\n"
                              "@dataclass\nclass Score:\n    value: float = 1.0\n\n\n"
                              "def score(completions, **kw):\n    return [Score().value for _ in completions]\n")
    assert load(f"{dataclass_file}:score")(completions=["a"]) == [1.0]
    exits = tmp_path / "exits.py"  # argparse at module level: its usage line read as if rlrt refused its own flags
    exits.write_text("import argparse\nargparse.ArgumentParser().parse_args(['--nope'])\n")
    with pytest.raises(ValueError, match=r"importing .*exits\.py called sys\.exit\(2\) .*guard that with"):
        load(f"{exits}:f")


@pytest.mark.parametrize(
    "overrides, message",
    [(dict(top_p=0.0), "top_p must lie in"), (dict(top_p=1.5), "top_p must lie in"), (dict(beta=-0.1), "beta must"),
     (dict(epsilon=-0.2), "epsilon must"), (dict(top_k=-1), "top_k must"), (dict(num_iterations=0), "num_iterations")],
)
def test_nonsense_sampling_and_loss_values_are_refused(overrides, message):
    from rlrt import RLRTConfig

    with pytest.raises(ValueError, match=message):
        RLRTConfig(output_dir="unused", **overrides)


def test_numpy_rewards_are_numbers_and_their_non_finite_values_are_refused():
    from collections import Counter

    import numpy as np

    from rlrt.reliability import RewardFunctionError, guard_reward_function

    ok = guard_reward_function(lambda prompts, completions, **kw: [np.float32(0.5), np.float64(1.0)], "skip", Counter())
    assert ok(prompts=["p"] * 2, completions=["c"] * 2) == [0.5, 1.0]
    bad = guard_reward_function(lambda prompts, completions, **kw: [np.float32("inf"), 0.0], "skip", Counter())
    with pytest.raises(RewardFunctionError, match="returned inf for sample 0"):
        bad(prompts=["p"] * 2, completions=["c"] * 2)


def test_ctrl_c_in_any_command_is_one_line(tmp_path, monkeypatch, capsys):
    import rlrt.analysis.report as report
    from rlrt.cli import main

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "run_report", interrupted)
    assert main(["report", "--runs", "x", "--output_dir", str(tmp_path / "r")]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "rlrt report: interrupted" in err


def test_refused_input_leaves_no_empty_output_folder(tmp_path, capsys):
    from rlrt.cli import main

    out = tmp_path / "new" / "report"
    assert main(["report", "--runs", str(tmp_path / "not-a-run"), "--output_dir", str(out)]) == 2
    assert "not a run folder" in _error_line(capsys, "report") and not out.exists()


def test_model_path_that_is_not_a_model_is_one_line(tmp_path):
    from rlrt.models import resolve_model

    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"notes\.txt' is a file; pass the model's folder"):
        resolve_model(str(tmp_path / "notes.txt"))
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"has no config\.json, so it is not a saved model\. It holds checkpoints"):
        resolve_model(str(run))


def test_sigterm_during_eval_exits_143(tmp_path, tiny_model_dir, capsys, monkeypatch):
    import rlrt.evaluation.evaluate as evaluate
    from rlrt.cli import main

    def terminated(*args, **kwargs):
        raise KeyboardInterrupt("SIGTERM")  # what the handler installed during evaluation raises

    monkeypatch.setattr(evaluate, "evaluate_model", terminated)
    out = tmp_path / "eval"
    assert main(["eval", "--model", str(tiny_model_dir), "--limit", "1", "--output_dir", str(out)]) == 143
    assert "stopped by SIGTERM; wrote the 0 finished" in capsys.readouterr().err
    assert json.loads((out / "results.json").read_text())["stopped_by"] == "SIGTERM"


@pytest.mark.slow
def test_a_run_without_any_correct_rollout_warns_once(tmp_path, tiny_model_dir, tokenizer, caplog):
    from datasets import Dataset

    from rlrt import RLRTConfig, RLRTTrainer

    def never_correct(completions, **kw):
        return [0.0] * len(completions)

    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": f"q{i}"}], "answer": "1"} for i in range(8)])
    args = RLRTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, max_steps=3,
                      max_completion_length=4, report_to="none", save_strategy="no", bf16=False, disable_tqdm=True,
                      logging_steps=1, no_correct_warning_steps=2)
    trainer = RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[never_correct], args=args, train_dataset=dataset,
                          processing_class=tokenizer)
    with caplog.at_level("WARNING", logger="rlrt"):
        trainer.train()
    warned = [r.getMessage() for r in caplog.records if "no rollout has been correct" in r.getMessage()]
    assert len(warned) == 1 and "for 2 consecutive rollout batches" in warned[0]


def test_typo_of_the_embedded_model_name():
    from rlrt.models import resolve_model

    with pytest.raises(ValueError, match=r"Unknown model 'smolm2-135m' \(did you mean 'smollm2-135m'\?\)"):
        resolve_model("smolm2-135m")
    assert resolve_model("gpt2") == "gpt2"  # a bare hub id is left to the hub


def test_array_rewards_are_read_as_lists():
    from collections import Counter

    import numpy as np
    import torch

    from rlrt.reliability import guard_reward_function

    for array in (np.array([0.5, 1.0]), torch.tensor([0.5, 1.0])):
        guarded = guard_reward_function(lambda prompts, completions, array=array, **kw: array, "skip", Counter())
        assert guarded(prompts=["p"] * 2, completions=["c"] * 2) == [0.5, 1.0]


def _finished_run_without_checkpoint(run, argv):
    """A run folder as a finished 1-step default run leaves it: config.json and summary.json, no checkpoint."""
    run.mkdir()
    (run / "config.json").write_text(json.dumps(_record(argv)))
    (run / "summary.json").write_text(json.dumps({"steps": 1}))


def test_finished_run_without_a_checkpoint_says_so_and_names_changes_first(tmp_path):
    from rlrt.cli import parse_command
    from rlrt.run import RunAlreadyFinished, find_resume_checkpoint

    run = tmp_path / "base"
    _finished_run_without_checkpoint(run, ["--max_steps", "1"])

    def check(argv):
        (train_args, config), _ = parse_command("train", ["--output_dir", "unused", *argv])
        config.output_dir = str(run)
        record = _record(argv)
        record["rlrt"]["output_dir"] = "unused"
        return find_resume_checkpoint(train_args, config, record)

    with pytest.raises(ValueError) as more:
        check(["--max_steps", "2"])
    assert "finished at step 1 and no checkpoint was saved (save_strategy='no')" in str(more.value)
    assert "new --output_dir" in str(more.value) and "--save_strategy steps" in str(more.value)
    assert "already finished" not in str(more.value)
    with pytest.raises(ValueError, match="per_device_train_batch_size: 16 -> 8"):
        check(["--max_steps", "2", "--per_device_train_batch_size", "8"])
    with pytest.raises(ValueError, match="shaping: 'rlrt' -> 'grpo'"):
        check(["--max_steps", "1", "--shaping", "grpo"])
    with pytest.raises(RunAlreadyFinished, match="already finished at step 1"):
        check(["--max_steps", "1"])


@pytest.mark.slow
def test_continuing_a_finished_default_run_end_to_end(tmp_path, tiny_model_dir, capsys):
    from rlrt.cli import main

    run = tmp_path / "base"
    base = ["train", "--model", str(tiny_model_dir), "--output_dir", str(run), "--reward_funcs",
            "rlrt.rewards:parity_reward", "--dataset_limit", "8", *TINY]
    assert main([*base, "--max_steps", "1"]) == 0
    capsys.readouterr()
    assert main([*base, "--max_steps", "2"]) == 2
    assert "no checkpoint was saved (save_strategy='no')" in _error_line(capsys, "train")
    assert main([*base, "--max_steps", "1"]) == 0
    assert "already finished at step 1" in capsys.readouterr().out


def test_a_reward_that_never_returned_a_value_fails_a_run_shorter_than_the_limit():
    from rlrt.reliability import BrokenRewardWatch, RewardFunctionError

    watch = BrokenRewardWatch(limit=3)
    for _ in range(2):
        watch.update("ok", failed=0, samples=8, last_error=None)
        watch.update("f", failed=8, samples=8, last_error="KeyError: 'level'")
    with pytest.raises(RewardFunctionError, match=r"'f' failed on every sample of the run \(2 rollout batches; last "
                                                  r"error: KeyError: 'level'\)"):
        watch.check_run()
    flaky = BrokenRewardWatch(limit=3)
    flaky.update("f", failed=8, samples=8, last_error="x")
    flaky.update("f", failed=7, samples=8, last_error="x")  # one value in the run: flaky, not broken
    flaky.check_run()
    off = BrokenRewardWatch(limit=0)
    off.update("f", failed=8, samples=8, last_error="x")
    off.check_run()  # 0 disables


@pytest.mark.slow
def test_a_short_run_with_a_broken_reward_exits_1_with_its_summary_written(tmp_path, tiny_model_dir, capsys, caplog):
    from rlrt.cli import main

    rewards = tmp_path / "rewards.py"
    rewards.write_text("def broken(completions, **kw):\n    raise KeyError('level')\n")
    run = tmp_path / "run"
    code = main(["train", "--model", str(tiny_model_dir), "--output_dir", str(run), "--dataset_limit", "8",
                 "--reward_funcs", f"{rewards}:broken", "--max_steps", "2", *TINY])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    line = [x for x in err.splitlines() if x.startswith("rlrt train: error:")]
    assert len(line) == 1 and "'broken' failed on every sample of the run (2 rollout batches" in line[0]
    assert "KeyError" in line[0]
    # one line per failing batch (not one per sample), and no TRL row dump for Nones already reported
    logged = err + caplog.text
    failed = [x for x in logged.splitlines() if re.search(r"'broken' failed on \d+ of \d+ samples", x)]
    assert len(failed) == 2 and "failed on 4 of 4 samples (first on sample 0: KeyError: 'level')" in failed[0]
    assert "All reward functions returned None" not in logged
    assert (run / "summary.md").is_file() and (run / "final").is_dir()


def test_reasoning_gym_options_are_checked_before_the_task_is_built():
    with pytest.raises(ValueError, match=r"chain_sum's --dataset_options: unknown option 'min_term' \(did you mean "
                                         r"'min_terms'\?\); the options are \['min_terms', 'max_terms'"):
        load_task("rg:chain_sum", min_term=2)
    with pytest.raises(ValueError, match=r"reasoning-gym refused the options .* of task 'chain_sum': max_terms must "
                                         r"be >= min_terms; change --dataset_options"):
        load_task("rg:chain_sum", min_terms=5, max_terms=2)
    assert len(load_task("rg:chain_sum", limit=3, min_terms=2, max_terms=3)) == 3


def test_trl_all_none_dump_is_dropped_only_for_nones_the_guard_reported():
    import logging
    from collections import Counter
    from types import SimpleNamespace

    from rlrt.reliability import _ReportedNoneFilter

    class Trainer(SimpleNamespace):  # weak-referenceable
        pass

    trainer = Trainer(reward_errors=Counter(), _reward_errors_logged=Counter())
    keep = _ReportedNoneFilter(trainer)
    record = logging.LogRecord("trl.trainer.grpo_trainer", logging.WARNING, "", 0,
                               "[RANK 0] All reward functions returned None for these kwargs: {}", None, None)
    other = logging.LogRecord("trl.trainer.grpo_trainer", logging.WARNING, "", 0, "something else", None, None)
    assert keep.filter(record) and keep.filter(other)  # Nones without errors (a reward that abstains): TRL's warning
    trainer.reward_errors["broken"] = 4  # this step's errors, reported by the guard, not yet logged
    assert not keep.filter(record) and keep.filter(other)
    trainer._reward_errors_logged["broken"] = 4  # next step, no new errors
    assert keep.filter(record)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("gsm8k:validation", r"gsm8k has no 'validation' split; its splits are \['test', 'train'\]"),
        ("math500:dev", r"math500 has no 'dev' split; its splits are \['test'\]"),
        ("chain:validation", r"chain has the splits \['train', 'test'\]; got 'validation'"),
        ("addition:dev", r"addition has the splits \['train', 'test'\]; got 'dev'"),
        ("rg:chain_sum:validation", r"rg:chain_sum has the splits \['train', 'test'\]; got 'validation'"),
    ],
)
def test_a_split_a_source_lacks_lists_its_splits(monkeypatch, spec, message):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(ValueError, match=message):
        load_task(spec)


def test_python_load_task_takes_the_command_line_spelling_of_a_split(tmp_path):
    """``load_task("chain:test")`` used to be refused with "chain has the splits ['train', 'test']; got 'test'"."""
    test = load_task("chain:test", limit=3)
    assert test["prompt"] == load_task("chain", split="test", limit=3)["prompt"]
    assert test["prompt"] != load_task("chain", limit=3)["prompt"]
    assert load_task("addition:train", limit=2)["prompt"] == load_task("addition", limit=2)["prompt"]
    with pytest.raises(ValueError, match=r"'chain:test' names the split 'test' and split='train' another"):
        load_task("chain:test", split="train")
    path = tmp_path / "d.jsonl"
    path.write_text('{"question": "a?", "answer": "1"}\n')
    with pytest.raises(ValueError, match=r"local file, which has no 'test' split"):
        load_task(f"{path}:test")


def test_hub_preset_offline_is_one_line_exit_2_and_leaves_no_empty_folder(tmp_path, capsys, monkeypatch):
    import datasets

    from rlrt.cli import main

    def offline(*args, **kwargs):
        import logging

        assert not logging.getLogger("huggingface_hub.utils._http").isEnabledFor(logging.WARNING)  # no retry lines
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    out = tmp_path / "new" / "run"
    assert main(["train", "--dataset", "gsm8k:train", "--output_dir", str(out), "--eval_dataset", "none"]) == 2
    line = _error_line(capsys, "train")
    assert "gsm8k:train (openai/gsm8k) could not be downloaded" in line and "local .jsonl" in line
    assert not (tmp_path / "new").exists()


def test_a_refused_run_leaves_no_empty_auto_run_folder_and_keeps_existing_ones(tmp_path, capsys, monkeypatch):
    from rlrt.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    for _ in range(2):
        assert main(["train", "--dataset", str(empty), "--eval_dataset", "none"]) == 2
        assert "empty" in _error_line(capsys, "train")
    assert list((tmp_path / "runs").iterdir()) == []
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    assert main(["train", "--dataset", str(empty), "--output_dir", str(kept), "--eval_dataset", "none"]) == 2
    capsys.readouterr()
    assert (kept / "notes.txt").read_text() == "mine"
    existing_empty = tmp_path / "existing"
    existing_empty.mkdir()
    assert main(["train", "--dataset", str(empty), "--output_dir", str(existing_empty), "--eval_dataset", "none"]) == 2
    capsys.readouterr()
    assert existing_empty.is_dir()  # not created by this run: left alone


def test_a_run_refused_while_the_trainer_is_built_leaves_no_run_folder(tmp_path, tiny_model_dir, capsys, monkeypatch):
    # The reported case: rlsd on a file without worked solutions was refused, but runs/rlsd-<time>/config.json stayed.
    from rlrt.cli import main

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "nosol.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n"
                            for i in range(4)))
    argv = ["train", "--model", str(tiny_model_dir), "--dataset", str(data), "--eval_dataset", "none",
            "--shaping", "rlsd", "--max_steps", "1", "--bf16", "false"]
    assert main(argv) == 2
    assert "needs the 'solution' column filled" in _error_line(capsys, "train")
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_local_file_column_options_and_encoding_are_checked(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "1", "solution": "s"}) + "\n")
    with pytest.raises(ValueError, match=r"has no column 'soln' \(solution_column\) \(did you mean 'solution'\?\)"):
        load_local(path, solution_column="soln")  # it was dropped silently, and the file's solutions with it
    with pytest.raises(ValueError, match=r"^solution_column must be a column name \(a string\); got \['a'\]\.$"):
        load_local(path, solution_column=["a"])
    assert load_local(path)["solution"] == ["s"] and load_local(path, solution_column=None)["solution"] == [""]
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"question": "q", "answer": "5\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.jsonl is not UTF-8 text \(byte 0xe9 at offset \d+\): save it as "
                                         r"UTF-8\.$"):
        load_local(latin)


# ------------------------------------------------------------------------------------------------ did you mean


def test_closest_name_by_case_initials_and_spelling():
    from rlrt.text import closest, did_you_mean

    assert closest("RLRT", ["grpo", "rlrt"]) == "rlrt"
    assert closest("lr", ["learning_rate", "lr_scheduler_type", "logging_steps"]) == "learning_rate"
    assert closest("answer_formt", ["answer_format", "float_rounding"]) == "answer_format"
    assert closest("zzz", ["answer_format"]) is None
    assert did_you_mean("rlrt", ["rlrt"]) == ""  # a valid name is not "corrected" to itself


@pytest.mark.parametrize(("argv", "expected"), [
    (["--shaping", "RLRT"], "Unknown shaping mode 'RLRT' (did you mean 'rlrt'?)"),
    (["--lr", "1e-5"], "unknown flag --lr (did you mean --learning_rate?)"),
    (["--reward_options", '{"answer_formt": "boxed"}'],
     "--reward_options (MathRewardConfig): unknown option 'answer_formt' (did you mean 'answer_format'?)"),
    (["--shaping", "sdpo", "--sdpo_options", '{"distilation_weight": 0.5}'],
     "sdpo_options: SDPOConfig has no field 'distilation_weight' (did you mean 'distillation_weight'?)"),
    (["--dataset", "chain", "--dataset_options", '{"stepz": 3}'],
     "chain task (--dataset_options): unknown option 'stepz' (did you mean 'steps'?)"),
])
def test_unknown_names_get_the_closest_valid_one(argv, expected, tmp_path, capsys):
    from rlrt.cli import main

    assert main(["train", "--output_dir", str(tmp_path / "run"), *argv]) == 2
    assert expected in _error_line(capsys, "train")
    assert not (tmp_path / "run").exists()


def test_inspect_lists_only_the_shapings_it_takes(capsys):
    from rlrt.algorithms import VARIANTS
    from rlrt.cli import main

    assert main(["inspect", "--shaping", "rlrtt"]) == 2
    line = _error_line(capsys, "inspect")
    assert "'rlrtt' (did you mean 'rlrt'?)" in line and f"one of {list(VARIANTS)}" in line and "sdpo" not in line


@pytest.mark.parametrize(
    "argv, held_out",
    [
        ([], "addition:test"),
        (["--dataset", "chain"], "chain:test"),
        (["--dataset", "chain:train"], "chain:test"),
        (["--dataset", "rg:chain_sum"], "rg:chain_sum:test"),
        (["--dataset", "d.jsonl"], "none"),
        (["--dataset", "gsm8k:train"], "none"),
        (["--dataset", "d.jsonl", "--eval_dataset", "addition:test"], "addition:test"),  # set by the user: kept
    ],
)
def test_the_default_held_out_set_follows_the_training_dataset(capsys, argv, held_out):
    from rlrt.cli import parse_command
    from rlrt.run import config_record

    (train_args, config), _ = parse_command("train", ["--output_dir", "unused", *argv])
    assert train_args.eval_dataset == held_out
    assert config_record(train_args, config)["train"]["eval_dataset"] == held_out  # what config.json records
    assert not capsys.readouterr().out  # the note waits until the run is accepted (run_training prints it)
    if "--eval_dataset" not in argv and held_out == "none":
        assert train_args.heldout_note.startswith("held-out evaluation is off") and "pass --eval_dataset" in (
            train_args.heldout_note)
    else:
        assert train_args.heldout_note is None


def test_resume_refusal_names_the_settings_the_user_changed_not_derived_ones(tmp_path):
    from rlrt.run import resume_changes

    argv = ["--per_device_train_batch_size", "4", "--num_generations", "2"]
    with pytest.raises(ValueError) as caught:
        resume_changes(_record(argv), _record(["--per_device_train_batch_size", "8", "--num_generations", "2"]),
                       tmp_path)
    assert "per_device_train_batch_size: 4 -> 8" in str(caught.value)
    assert "generation_batch_size" not in str(caught.value).replace("per_device_train_batch_size", "")
    with pytest.raises(ValueError, match="generation_batch_size: 4 -> 8"):  # set by the user: named
        resume_changes(_record(argv), _record([*argv, "--generation_batch_size", "8"]), tmp_path)


def test_bad_row_messages_end_sentences_and_give_the_command_line_form(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"question": "q?", "answer": "1"}) + "\n" + json.dumps({"question": "q?", "answer": ""}))
    with pytest.raises(ValueError) as caught:
        load_local(data)
    message = str(caught.value)
    assert "row 1: column 'answer' is empty (rows count from 0). Fix the row" in message
    assert """--dataset_options '{"on_bad_rows": "skip"}'""" in message
    other = tmp_path / "o.jsonl"
    other.write_text(json.dumps({"problem": "q?", "answer": "1"}))
    with pytest.raises(ValueError, match=r"""--dataset_options '\{"question_column": "problem", "answer_column\""""):
        load_local(other)


def test_header_only_csv_says_it_has_no_rows(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("question,answer\n")
    with pytest.raises(ValueError) as caught:
        load_local(data)
    assert "has a header line but no rows" in str(caught.value) and "corresponds to no data" not in str(caught.value)


def test_empty_yaml_config_says_it_is_empty(tmp_path, capsys):
    from rlrt.cli import main

    config = tmp_path / "c.yaml"
    config.write_text("# nothing yet\n")
    assert main(["train", "--config", str(config)]) == 2
    line = _error_line(capsys, "train")
    assert "is empty" in line and "NoneType" not in line


def test_live_line_at_the_final_evaluation_shows_one_average():
    from types import SimpleNamespace

    from rlrt.callbacks import live_line

    logs = {"reward": 0.5, "heldout/avg@4": 0.25, "heldout/pass@1": 0.25, "heldout/pass@4": 0.5,
            "heldout/avg@2": 0.25}
    line = live_line(SimpleNamespace(global_step=8, max_steps=8), logs)
    assert "avg@4 0.250" in line and "avg@2" not in line and "pass@1 0.250 | pass@4 0.500" in line


# ------------------------------------------------------------------ data: file shapes, cell types, option types


@pytest.mark.parametrize(("name", "content", "message"), [
    ("d.json", "[]", r"d\.json holds no rows \(its columns: \[\]\): add rows"),
    ("d.jsonl", "{}\n{}\n", r"d\.jsonl holds no columns \(every row is an empty object\)"),
    ("d.json", "{}", r"d\.json holds no columns"),
])
def test_a_file_without_rows_or_columns_is_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as caught:
        load_local(path)
    assert "\n" not in str(caught.value)


def test_a_parquet_file_with_zero_rows_names_its_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"question": pa.array([], pa.string()), "answer": pa.array([], pa.string())}), path)
    with pytest.raises(ValueError, match=r"d\.parquet holds no rows \(its columns: \['question', 'answer'\]\)"):
        load_local(path)


def test_missing_columns_suggest_the_closest_column_not_the_first(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"id": 1, "Question": "q?", "gold": "1", "notes": ""}))
    with pytest.raises(ValueError) as caught:
        load_local(path)
    message = str(caught.value)
    assert "no column 'question' (did you mean 'Question'?)" in message and "; no column 'answer': map" in message
    assert """--dataset_options '{"question_column": "Question", "answer_column": "..."}'""" in message


def test_missing_answer_column_never_suggests_the_worked_solution_as_the_gold_answer(tmp_path):
    """A new user's file with question and solution columns was told to map answer_column to "solution"."""
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"question": "q?", "solution": "2 + 2 = 4, so \\boxed{4}"}))
    with pytest.raises(ValueError) as caught:
        load_local(path)
    message = str(caught.value)
    assert "; no column 'answer':" in message and "solution'?" not in message
    assert """--dataset_options '{"question_column": "question", "answer_column": "..."}'""" in message
    path.write_text(json.dumps({"question": "q?", "solution": "...", "final": "4"}))
    with pytest.raises(ValueError, match=r'"answer_column": "final"'):  # the one column left is still proposed
        load_local(path)


def test_csv_cells_are_read_as_written(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("question,answer,id,note\nq1?,True,007,\nq2?,False,010,NA\nq3?,NA,1,None\nq4?,None,2,x\n")
    dataset = load_local(path)
    assert dataset["answer"] == ["True", "False", "NA", "None"]
    assert dataset["id"] == ["007", "010", "1", "2"] and dataset["note"] == ["", "NA", "None", "x"]
    path.write_text("question,answer\nq1?,\n")
    with pytest.raises(ValueError, match=r"row 0: column 'answer' is empty"):
        load_local(path)
    path.write_bytes(b'question,id,answer\r\n"Line one\r\nline two?",1,4\r\n')  # Windows lines, a quoted break
    dataset = load_local(path)
    assert dataset["id"] == ["1"] and dataset["answer"] == ["4"]
    assert dataset["prompt"][0][0]["content"].startswith("Line one\r\nline two?\n")  # as written, \r\n kept


@pytest.mark.parametrize("name", ["d.jsonl", "d.json", "d.csv"])
def test_a_byte_order_mark_is_read_past(tmp_path, name):
    path = tmp_path / name
    rows = {"d.jsonl": '{"question": "q?", "answer": "1"}\n', "d.json": '[{"question": "q?", "answer": "1"}]',
            "d.csv": "question,answer\nq?,1\n"}[name]
    path.write_bytes(b"\xef\xbb\xbf" + rows.encode())
    assert load_local(path)["answer"] == ["1"]


def test_json_file_shapes(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"question": "q?", "answer": "1", "level": 2}, indent=2))  # one row, pretty-printed
    assert load_local(path)["level"] == [2]
    path.write_text(json.dumps({"question": ["a?", "b?"], "answer": ["1", "2"]}, indent=2))  # column lists
    assert load_local(path)["answer"] == ["1", "2"]
    path.write_text('{"question": "a?", "answer": "1"}\n{"question": "b?", "answer": "2"}\n')  # JSON Lines
    assert load_local(path)["answer"] == ["1", "2"]
    refused = [
        (json.dumps({"question": ["a?", "b?"], "answer": ["1"]}), r"column lists of different lengths \{'question': "
                                                                   r"2, 'answer': 1\}"),
        ('"just text"', r"holds a JSON str, not rows: a \.json file holds a list of row objects"),
        ('{\n  "question": "q?",\n  "answer": \n}', r"is not valid JSON \(line 4, column 1: Expecting value\); a "
                                                     r"\.json file holds a list of row objects .* an object of "
                                                     r"equal-length column lists"),
    ]
    for text, message in refused:
        path.write_text(text)
        with pytest.raises(ValueError, match=message) as caught:
            load_local(path)
        assert "\n" not in str(caught.value) and ".jsonl file holds" not in str(caught.value)


def test_a_pretty_printed_jsonl_file_is_told_to_be_json(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"question": "q?", "answer": "1"}, indent=2))
    with pytest.raises(ValueError, match=r"line 1 is not valid JSON .* this file is one JSON document: name it "
                                         r"\.json"):
        load_local(path)


@pytest.mark.parametrize(("options", "message"), [
    ({"instruction": 5}, r"prompt format option 'instruction' must be a string \(\"\" for none\); got int \(5\)"),
    ({"chat": "false"}, r"prompt format option 'chat' must be true or false .*; got str \('false'\)"),
    ({"system_prompt": ["Be brief."]}, r"prompt format option 'system_prompt' must be a string or null; got list"),
])
def test_prompt_format_options_are_type_checked(tmp_path, options, message):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"question": "q?", "answer": "1"}))
    with pytest.raises(ValueError, match=message):
        load_task(str(path), **options)


def test_prompt_format_examples_must_be_string_pairs():
    from rlrt.data import PromptFormat

    with pytest.raises(ValueError, match=r"option 'examples' must be a list of \(question, answer\) string pairs"):
        PromptFormat(examples=(("q", 1),))
    assert PromptFormat(examples=[["q", "a"]]).examples == [["q", "a"]]


@pytest.mark.parametrize("column", ["prompts", "completions", "completion", "completion_ids", "trainer_state",
                                    "log_extra", "log_metric", "environments"])
def test_a_column_named_like_a_trl_reward_keyword_is_refused(tmp_path, column):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"question": "q?", "answer": "1", column: "x"}))
    with pytest.raises(ValueError, match=rf"d\.jsonl has a column '{column}', a name TRL's GRPOTrainer gives reward "
                                         r"functions itself .*: rename that column"):
        load_local(path)


def test_a_trl_reward_keyword_column_mapped_as_the_question_is_used_not_kept(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"prompts": "q?", "answer": "1"}))
    dataset = load_local(path, question_column="prompts")
    assert dataset["question"] == ["q?"] and "prompts" not in dataset.column_names


def test_a_training_set_with_a_trl_reward_keyword_column_is_refused():
    from datasets import Dataset

    from rlrt.trainer import check_train_dataset

    dataset = Dataset.from_dict({"prompt": ["q?"], "answer": ["1"], "completions": ["x"]})
    with pytest.raises(ValueError, match=r"train_dataset has a column 'completions'.*dataset\.rename_column"):
        check_train_dataset(dataset)


def test_a_trl_reward_keyword_column_on_the_command_line(tmp_path, tiny_model_dir, capsys):
    from rlrt.cli import main

    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"question": "q?", "answer": "1", "prompts": "x"}))
    assert main(["train", "--model", str(tiny_model_dir), "--dataset", str(data), "--output_dir",
                 str(tmp_path / "run"), *TINY]) == 2
    assert "has a column 'prompts'" in _error_line(capsys, "train")


@pytest.mark.parametrize(("options", "message"), [
    ({"size": 0}, r"option 'size' \(how many problems to draw\) must be a positive integer; got 0"),
    ({"size": "10"}, r"option 'size' .* must be a positive integer; got '10'"),
    ({"size": 4, "min_terms": 5, "max_terms": 2}, r"refused the options \{'size': 4, 'min_terms': 5, 'max_terms': "
                                                   r"2\} of task 'chain_sum'"),
])
def test_reasoning_gym_size_is_named_when_refused(options, message):
    with pytest.raises(ValueError, match=message):
        load_task("rg:chain_sum", **options)
