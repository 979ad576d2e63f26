"""Bad input and edge cases (issue 14): every input gets the right result or one clear line.

Each test holds the right value for one reported case of a kind of fault; the trainer tests use the tiny random
model of ``conftest.py`` and ``parity_reward``.
"""

from __future__ import annotations

import json

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
        warnings.warn("`gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
        warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
        warnings.warn("something else is deprecated", FutureWarning)
        warnings.warn("`gradient_checkpointing` is deprecated", UserWarning)
    assert [(w.category, str(w.message)) for w in caught] == [
        (FutureWarning, "something else is deprecated"), (UserWarning, "`gradient_checkpointing` is deprecated")]


def test_pyproject_license_is_an_spdx_string():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
