"""Dataset loaders, prompt formatting, bad rows, and the default task's split."""

from __future__ import annotations

import json

import pytest

from rlrt.data import (
    DEFAULT_INSTRUCTION,
    BadRowError,
    PromptFormat,
    addition_task,
    build_dataset,
    format_prompt,
    load_local,
    load_reasoning_gym,
    load_task,
)


def test_format_prompt_variants():
    assert format_prompt("What is 1+1?") == [{"role": "user", "content": "What is 1+1?\n" + DEFAULT_INSTRUCTION}]
    assert format_prompt("Q {x}", PromptFormat(instruction="", chat=False)) == "Q {x}"
    fmt = PromptFormat(system_prompt="S", examples=(("q1", "a1"),))
    assert [m["role"] for m in format_prompt("Q", fmt)] == ["system", "user", "assistant", "user"]
    with pytest.raises(ValueError, match="chat=True"):
        PromptFormat(system_prompt="S", chat=False)


def test_local_jsonl_with_column_mapping(tmp_path):
    path = tmp_path / "data.jsonl"
    rows = ({"problem": f"P{i} $\\{{x\\}}$", "gold": i, "sol": f"S{i}"} for i in range(3))
    path.write_text("\n".join(json.dumps(row) for row in rows))
    ds = load_local(path, question_column="problem", answer_column="gold", solution_column="sol")
    assert ds["answer"] == ["0", "1", "2"] and ds["solution"] == ["S0", "S1", "S2"]
    assert ds[0]["prompt"][-1]["content"].startswith("P0 $\\{x\\}$")
    with pytest.raises(ValueError, match="question_column"):
        load_local(path)


def test_local_csv_and_parquet(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"question": ["a?", "b?"], "answer": ["1", "2"]})
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    assert load_local(tmp_path / "d.csv")["answer"] == ["1", "2"]
    assert load_local(tmp_path / "d.parquet")["solution"] == ["", ""]
    with pytest.raises(ValueError, match="Unsupported"):
        load_local(tmp_path / "d.csv.txt") if (tmp_path / "d.csv.txt").write_text("x") else None


def test_bad_rows_name_row_and_column():
    rows = [{"question": "ok", "answer": "1"}, {"question": "  ", "answer": "2"}, {"question": "q", "answer": None},
            {"question": 5, "answer": "1"}, {"question": "q"}]
    with pytest.raises(BadRowError, match=r"row 1: column 'question' is empty"):
        build_dataset(rows)
    dataset, report = build_dataset(rows, on_bad_rows="skip")
    assert len(dataset) == 1 and report.skipped == 4 and report.kept == 1
    with pytest.raises(ValueError, match="no usable rows"):
        build_dataset([{"question": "", "answer": "1"}], on_bad_rows="skip")


def test_reasoning_gym_tasks_offline():
    chain = load_reasoning_gym("chain_sum", size=5, seed=1, min_terms=2, max_terms=2)
    assert len(chain) == 5 and all(a.lstrip("-").isdigit() for a in chain["answer"])
    gsm = load_reasoning_gym("gsm_symbolic", size=2, seed=1)
    assert all(len(s) > 20 for s in gsm["solution"])  # answer_cot becomes the reference solution
    assert load_reasoning_gym("basic_arithmetic", size=3, seed=0)["question"] == load_reasoning_gym(
        "basic_arithmetic", size=3, seed=0)["question"]
    with pytest.raises(ValueError, match="reasoning-gym"):
        load_reasoning_gym("no_such_task", size=1, seed=0)


def test_default_task_split_is_disjoint_and_fixed():
    train, test = addition_task("train"), addition_task("test")
    assert len(train) == 260 and len(test) == 64
    assert not set(train["question"]) & set(test["question"])
    assert addition_task("test")["question"] == test["question"]
    assert addition_task("train", seed=1)["question"] != train["question"]  # the seed reorders training only
    row = train[0]
    a, b = (int(x) for x in row["question"].removeprefix("What is ").rstrip("?").split(" + "))
    assert row["answer"] == str(a + b) and "\\boxed{" + row["answer"] + "}" in row["solution"]


def test_load_task_dispatch(tmp_path):
    assert len(load_task("addition", split="test", limit=5)) == 5
    assert len(load_task("rg:chain_sum", limit=4)) == 4
    train, test = load_task("rg:chain_sum", limit=20), load_task("rg:chain_sum", split="test", limit=20)
    assert train["question"] != test["question"]
    with pytest.raises(ValueError, match="Unknown dataset"):
        load_task("nonexistent-dataset")


def test_load_task_options_and_prompt_format():
    ds = load_task("rg:chain_sum", limit=3, min_terms=2, max_terms=2, instruction="", system_prompt="Be brief.")
    assert ds[0]["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert ds[0]["prompt"][-1]["content"].endswith("=")  # no instruction suffix
    plain = load_task("rg:basic_arithmetic", limit=2, chat=False)
    assert isinstance(plain[0]["prompt"], str) and plain[0]["prompt"].endswith(DEFAULT_INSTRUCTION)
