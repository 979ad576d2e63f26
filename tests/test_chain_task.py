"""The built-in ``chain`` task: splits, determinism, answers recomputed from the question, the difficulty knob."""

from __future__ import annotations

import ast
import operator
import re

import pytest

from rlrt.data import ChainOptions, chain_task, load_task
from rlrt.data.chain import HELD_OUT_SIZE, TRAIN_SIZE, chain_problems

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _evaluate(question: str) -> int:
    """The value of ``What is <expr>?`` by the usual precedence rules (independent of the task's generator)."""
    expression = re.fullmatch(r"What is (.+)\?", question).group(1)

    def walk(node):
        if isinstance(node, ast.BinOp):
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        assert isinstance(node, ast.Constant) and isinstance(node.value, int)
        return node.value

    return walk(ast.parse(expression, mode="eval").body)


def test_splits_are_disjoint_sized_and_fixed():
    train, test = chain_task("train"), chain_task("test")
    assert len(test) == HELD_OUT_SIZE and HELD_OUT_SIZE < len(train) <= TRAIN_SIZE
    assert len(set(train["question"])) == len(train) and len(set(test["question"])) == len(test)
    assert not set(train["question"]) & set(test["question"])
    example = test[0]["prompt"][1]["content"]  # the worked example is in no split
    assert example not in set(train["question"]) | set(test["question"])
    assert chain_task("test", seed=5)["question"] == test["question"]  # the held-out split ignores the seed
    assert chain_task("train")["question"] == train["question"]
    reordered = chain_task("train", seed=1)["question"]
    assert reordered != train["question"] and sorted(reordered) == sorted(train["question"])
    assert chain_task("test", limit=7)["question"] == test["question"][:7]


@pytest.mark.parametrize("options", [{}, {"steps": 4, "max_operand": 30}, {"steps": 3, "operations": "+-*"},
                                     {"steps": 1, "max_operand": 99, "operations": "*"}])
def test_answers_and_solutions_are_right(options):
    steps = ChainOptions(**options).steps
    for row in chain_task("test", **options):
        assert row["answer"] == str(_evaluate(row["question"]))
        assert len(re.findall(r" [-+*] ", row["question"])) == steps
        equations = re.findall(r"(\d+) ([-+*]) (\d+) = (\d+)\.", row["solution"])
        assert len(equations) == steps
        for a, op, b, c in equations:  # every step is right and no running value goes negative
            assert _OPS[{"+": ast.Add, "-": ast.Sub, "*": ast.Mult}[op]](int(a), int(b)) == int(c) >= 0
        assert equations[-1][3] == row["answer"] and row["solution"].endswith(f"\\boxed{{{row['answer']}}}.")
        system, example_q, example_a, question = row["prompt"]
        assert system["role"] == "system" and "\\boxed{N}" in system["content"]
        assert example_a["content"].count("=") == steps and question["content"] == row["question"]


@pytest.mark.parametrize("operations", ["-*", "+", "*", "+-"])
def test_only_the_given_operations_appear(operations):
    options = ChainOptions(steps=4, max_operand=9, operations=operations)
    example, held_out, train = chain_problems(options)
    used = {op for problem in (example, *held_out, *train) for op in problem.ops}
    assert used == set(operations)  # each appears, none other (a '-' at 0 becomes '+', or '*' without '+')


def test_difficulty_knob_changes_the_problems():
    base = chain_task("test")["question"]
    longer = chain_task("test", steps=4)["question"]
    wider = chain_task("test", max_operand=50)["question"]
    assert not set(base) & set(longer)
    assert all(q.count(" + ") + q.count(" - ") == 4 for q in longer)
    assert max(int(n) for q in wider for n in re.findall(r"\d+", q)) > ChainOptions().max_operand >= max(
        int(n) for q in base for n in re.findall(r"\d+", q))
    assert all("*" not in q for q in base) and any("*" in q for q in chain_task("test", operations="+*")["question"])


def test_load_task_and_options_reach_the_task():
    assert load_task("chain", split="test", limit=3)["question"] == chain_task("test", limit=3)["question"]
    assert load_task("chain", split="test", limit=3, steps=3)["question"] == chain_task("test", 3, steps=3)[
        "question"]


@pytest.mark.parametrize("options, message", [
    ({"steps": 0}, "option 'steps' must be an integer from 1 to 8; got 0"),
    ({"steps": "3"}, "option 'steps' must be an integer"),
    ({"steps": True}, "option 'steps' must be an integer"),
    ({"max_operand": 1}, "option 'max_operand' must be an integer from 2 to 999"),
    ({"operations": "+/"}, "option 'operations' must be a non-empty string"),
    ({"operations": ""}, "option 'operations' must be a non-empty string"),
    ({"operations": "-"}, r"option 'operations' cannot be '-' alone: a chain that reaches 0 cannot go on"),
    ({"step": 3}, r"unknown option 'step' \(did you mean 'steps'\?\); the options are \['steps', 'max_operand', "
                    r"'operations', 'min_steps'\]"),
    ({"steps": 1, "max_operand": 5}, "give only .* distinct problems .* raise 'steps' or 'max_operand'"),
    ({"system_prompt": "Be brief."}, r"chain is a built-in task \(its prompt format is fixed\) and takes no"),
])
def test_bad_options_give_one_clear_line(options, message):
    with pytest.raises(ValueError, match=message) as error:
        load_task("chain", split="test", **options)
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_train_and_eval_use_the_difficulty_on_the_held_out_split(tmp_path, tiny_model_dir, monkeypatch):
    """`rlrt train --dataset chain --dataset_options` evaluates on chain:test at the same difficulty; `rlrt eval
    --dataset_options` too."""
    import json

    from rlrt.cli import main
    from rlrt.data import registry

    calls, load = [], registry.load_task
    monkeypatch.setattr(registry, "load_task", lambda spec, **kw: calls.append((spec, kw)) or load(spec, **kw))
    code = main(["train", "--model", str(tiny_model_dir), "--output_dir", str(tmp_path / "run"), "--max_steps", "1",
                 "--dataset", "chain", "--dataset_options", '{"steps": 3}', "--dataset_limit", "4",
                 "--eval_dataset", "chain:test", "--eval_limit", "2", "--eval_samples", "1",
                 "--per_device_train_batch_size", "4", "--num_generations", "4", "--max_completion_length", "4",
                 "--bf16", "false", "--disable_tqdm", "true"])
    assert code == 0
    assert [(spec, kw["split"], kw.get("steps")) for spec, kw in calls] == [("chain", None, 3), ("chain", "test", 3)]
    assert main(["eval", "--model", str(tiny_model_dir), "--dataset", "chain:test", "--dataset_options",
                 '{"steps": 3}', "--limit", "2", "--num_samples", "1", "--max_new_tokens", "2",
                 "--output_dir", str(tmp_path / "eval")]) == 0
    problems = json.loads((tmp_path / "eval" / "results.json").read_text())["results"][0]["problems"]
    assert [p["answer"] for p in problems] == chain_task("test", limit=2, steps=3)["answer"]


def test_bad_split():
    with pytest.raises(ValueError, match="Unknown split 'dev' of the chain task"):
        chain_task("dev")


def _calibration_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "chain_task_accuracy.py"
    spec = importlib.util.spec_from_file_location("chain_task_accuracy", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_calibration_heldout_pass_resumes_and_counts_strata(tmp_path, monkeypatch):
    """benchmarks/chain_task_accuracy.py: chunks shared by two workers, resumed without resampling, strata by hand."""
    import argparse
    import json
    from pathlib import Path

    script = _calibration_script()
    sampled = []

    def fake_measure(model, tokenizer, dataset, samples, max_new_tokens, batch_size, seed=0):
        # problem i gets 0, 5 or 25 correct of 32: strata never, <60% (15.6 %), >=60% (78 %)
        indices = [chain_task("test")["question"].index(q) for q in dataset["question"]]
        sampled.extend(indices)
        rows = [[1.0] * (0, 5, 25)[i % 3] + [0.0] * (samples - (0, 5, 25)[i % 3]) for i in indices]
        return {"sampling": {}, "summary": {}, "seconds": 2.0 * len(indices),
                "problems": [{"answer": a, "correct": r} for a, r in zip(dataset["answer"], rows)],
                "lengths": [[10] * samples for _ in indices]}

    monkeypatch.setattr(script, "measure", fake_measure)
    out = tmp_path / "cal.json"
    args = argparse.Namespace(samples=32, chunk=2, workers=2, worker=0, max_problems=9, max_new_tokens=48,
                              batch_size=64, out=str(out))
    section, rows = script.heldout(None, None, args)
    assert sorted(sampled) == [0, 1, 4, 5, 8] and section["problems"] == 5 and not section["complete"]
    section, rows = script.heldout(None, None, argparse.Namespace(**{**vars(args), "worker": 1}))
    assert sorted(sampled) == list(range(9)) and [r["index"] for r in rows] == list(range(9))
    assert section["strata"] == {"never": 3, "<60%": 3, ">=60%": 3}
    assert section["summary"]["avg@32"] == pytest.approx((0 + 5 + 25) / 3 / 32)
    assert section["per_problem_correct"] == [0, 5, 25] * 3 and section["sequences_per_second"] == 16.0
    script.heldout(None, None, args)  # all done: nothing is sampled again
    assert len(sampled) == 9 and len(Path(f"{out}.partial.jsonl").read_text().splitlines()) == 9
    assert json.loads(Path(f"{out}.partial.jsonl").read_text().splitlines()[0])["samples"] == 32


def test_calibration_from_compare_start_evaluation(tmp_path):
    """The held-out section read from compare's partial start evaluation: strata from the first 32 of 64 samples."""
    import json

    partial = tmp_path / "results.partial.jsonl"
    records = [{"first": first, "chunk": 4, "samples": 64, "seed": 1000 + first,
                "problems": [{"answer": "1", "correct": [1] * c + [0] * (64 - c)} for c in counts]}
               for first, counts in ((4, [0, 12, 24, 40]), (0, [0, 0, 33, 64]))]
    partial.write_text("".join(json.dumps(r) + "\n" for r in records))
    section = _calibration_script().from_start(partial)
    # first 32 samples: correct counts 0, 0, 32, 32 then 0, 12, 24, 32
    assert section["per_problem_correct"] == [0, 0, 32, 32, 0, 12, 24, 32]
    assert section["strata"] == {"never": 3, "<60%": 1, ">=60%": 4} and not section["complete"]
    assert section["summary"]["avg@32"] == pytest.approx((32 + 32 + 12 + 24 + 32) / 32 / 8)
    assert section["summary_all_samples"]["avg@64"] == pytest.approx((33 + 64 + 12 + 24 + 40) / 64 / 8)
    # The command writes a note that says what the section holds (a stale "partial" note once misled a reader).
    out = tmp_path / "accuracy.json"
    out.write_text(json.dumps({"heldout_note": "partial: the first 16 of 128 held-out problems."}))
    assert _calibration_script().main(["from_start", "--start", str(partial), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["heldout_note"] == (
        f"from {partial}: 8 held-out problems (partial: rerun from_start once the evaluation finishes)")


def test_calibration_from_a_start_file_of_several_models_names_its_own_flag(tmp_path):
    """The benchmark has no --strata_model: its message names --start and --model, and --model chooses."""
    import json

    start = tmp_path / "results.json"
    start.write_text(json.dumps({"strata_samples": 2, "results": [
        {"model": m, "dataset": "chain:test", "problems": [{"answer": "1", "correct": c}]}
        for m, c in (("a", [1, 1]), ("b", [0, 0]))]}))
    with pytest.raises(ValueError, match=rf"--start {start} holds several models on chain:test \(a, b\): pass --model"):
        _calibration_script().from_start(start, 2)
    assert _calibration_script().from_start(start, 2, "b")["per_problem_correct"] == [0]


def test_min_steps_mixes_lengths_and_leaves_fixed_length_sets_unchanged():
    from rlrt.data.chain import ChainOptions, chain_problems

    fixed = chain_problems(ChainOptions(steps=3))
    assert chain_problems(ChainOptions(steps=3, min_steps=3)) == fixed  # the same problems as without min_steps
    example, held_out, train = chain_problems(ChainOptions(steps=3, min_steps=1))
    assert len(example.ops) == 3  # the worked example shows the longest chain
    lengths = {len(p.ops) for p in held_out + train}
    assert lengths == {1, 2, 3}
    with pytest.raises(ValueError, match="'min_steps' must be an integer from 1 to steps"):
        ChainOptions(steps=2, min_steps=3)
