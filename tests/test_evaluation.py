"""pass@k, avg@k and the evaluation report."""

from __future__ import annotations

import json
import re
from math import comb

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlrt.evaluation import SamplingConfig, pass_at_k, summarize, write_results
from rlrt.evaluation.metrics import k_values


def test_pass_at_k_by_hand():
    assert pass_at_k(4, 0, 1) == 0.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(4, 3, 2) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


@given(st.integers(1, 20).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_matches_the_combinatorial_definition(args):
    n, c, k = args
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))
    assert pass_at_k(n, c, 1) == pytest.approx(c / n)


def test_summarize_drops_unscorable_problems():
    summary = summarize([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [None, None, None, None]])
    assert summary["problems"] == 2 and summary["unscorable"] == 1
    assert summary["avg@4"] == pytest.approx((0.25 + 1.0) / 2)
    assert summary["pass@2"] == pytest.approx((0.5 + 1.0) / 2)
    assert k_values(8) == [1, 2, 4, 8] and k_values(6) == [1, 2, 4, 6]


def test_results_files(tmp_path):
    results = [{"model": "m", "dataset": "d", "summary": {"problems": 2, "avg@2": 0.5, "pass@1": 0.5, "pass@2": 0.75}}]
    json_path, md_path = write_results(results, SamplingConfig(max_new_tokens=8), tmp_path)
    payload = json.loads(json_path.read_text())
    assert payload["sampling"]["max_new_tokens"] == 8 and payload["results"][0]["summary"]["pass@2"] == 0.75
    table = md_path.read_text()
    assert "| m | d | 2 | 50.0 | 50.0 | 75.0 |" in table


def test_sampling_config_validation():
    with pytest.raises(ValueError):
        SamplingConfig(top_p=0.0)


def _prompts_sharing_a_few_shot_prefix():
    shot = [{"role": "system", "content": "Answer with a number. Example: 2 + 2 = 4."},
            {"role": "user", "content": "What is 1 + 1?"}, {"role": "assistant", "content": "2"}]
    return [shot + [{"role": "user", "content": q}] for q in ("What is 3 + 4?", "What is 10 - 7 + 2?", "Is 5 > 2?")]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_shared_prefix_generation_matches_plain_generation(tiny_model_dir, tokenizer, temperature):
    """Computing the shared prompt prefix once (cache copied to every row, padding in the middle) gives the
    completions plain left-padded generation gives: the same tokens greedily, and the same samples for the same
    seed (fp32, so both paths compute the same logits up to rounding)."""
    from transformers import AutoModelForCausalLM

    from rlrt.evaluation.sampling import SamplingConfig, sample_completion_ids, shared_prefix_length

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    prompts = _prompts_sharing_a_few_shot_prefix()
    sampling = SamplingConfig(max_new_tokens=12, temperature=temperature, batch_size=5, seed=3, bf16=False)
    shared = sample_completion_ids(model, tokenizer, prompts, 3, sampling)
    plain = sample_completion_ids(model, tokenizer, prompts, 3, sampling, share_prefix=False)
    assert shared == plain
    assert all(len(c) > 0 for per_prompt in shared for c in per_prompt)
    rows = [tokenizer(tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True),
                      add_special_tokens=False)["input_ids"] for p in prompts]
    assert shared_prefix_length(rows) > 8  # the few-shot prefix really is shared (and computed once)


def _spy_generate(model, seen):
    original = model.generate

    def generate(*args, **kwargs):
        cache = kwargs.get("cache")
        seen.append(None if cache is None else (cache.get_seq_length(), kwargs["input_ids"].shape))
        return original(*args, **kwargs)

    model.generate = generate


def test_the_prefix_cache_reaches_generate_with_the_shared_tokens(tiny_model_dir, tokenizer):
    from transformers import AutoModelForCausalLM

    from rlrt.evaluation.sampling import SamplingConfig, sample_completion_ids, shared_prefix_length

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    prompts = _prompts_sharing_a_few_shot_prefix()
    rows = [tokenizer(tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True),
                      add_special_tokens=False)["input_ids"] for p in prompts]
    seen = []
    _spy_generate(model, seen)
    sample_completion_ids(model, tokenizer, prompts, 2, SamplingConfig(max_new_tokens=3, batch_size=6, bf16=False))
    # one batch of the 3 prompts x 2 samples: the cache holds their shared tokens, copied to all 6 rows
    assert seen == [(shared_prefix_length(rows), (6, max(len(r) for r in rows)))]
    seen.clear()
    sample_completion_ids(model, tokenizer, prompts, 2, SamplingConfig(max_new_tokens=3, batch_size=6, bf16=False),
                          share_prefix=False)
    assert seen == [None]


def test_a_sliding_window_model_generates_without_a_shared_prefix(tokenizer):
    """Padding between prefix and row would take sliding-window slots: such models use plain left padding."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    from rlrt.evaluation.sampling import _UNSHAREABLE, SamplingConfig, sample_completion_ids

    torch.manual_seed(0)
    model = MistralForCausalLM(MistralConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, sliding_window=16, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id)).eval()
    prompts = _prompts_sharing_a_few_shot_prefix()
    seen = []
    _spy_generate(model, seen)
    sampling = SamplingConfig(max_new_tokens=6, temperature=0.0, batch_size=4, bf16=False)
    shared = sample_completion_ids(model, tokenizer, prompts, 2, sampling)
    assert seen == [None, None] and model in _UNSHAREABLE  # no cache passed; no second prefix forward either
    assert shared == sample_completion_ids(model, tokenizer, prompts, 2, sampling, share_prefix=False)


def test_shared_prefix_length_by_hand():
    from rlrt.evaluation.sampling import shared_prefix_length

    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2  # every row keeps its last token to feed the model
    assert shared_prefix_length([[7], [7, 8]]) == 0 and shared_prefix_length([]) == 0


# ---- rlrt eval --strata-from: which result of the file, and a subset of its problems ---------------------------


def test_canonical_spec_spells_one_split_one_way(tmp_path, monkeypatch):
    from rlrt.data.registry import canonical_spec

    assert canonical_spec("chain") == canonical_spec("chain:train") == "chain:train"
    assert canonical_spec("default:test") == canonical_spec("addition:test") == "addition:test"
    assert canonical_spec("rg:chain_sum") == "rg:chain_sum:train" and canonical_spec("math500") == "math500:test"
    assert canonical_spec("chain:test") != canonical_spec("addition:test")
    assert canonical_spec("chain:test") != canonical_spec("chain")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.jsonl").write_text('{"question": "1+1?", "answer": "2"}\n')
    assert canonical_spec("data/x.jsonl") == canonical_spec("./data/x.jsonl") == str(tmp_path / "data" / "x.jsonl")
    assert canonical_spec(str(tmp_path / "data" / "x.jsonl")) == canonical_spec("data/../data/x.jsonl")


def _start(dataset, answers, correct=None):
    correct = correct or [[0, 1]] * len(answers)
    result = {"problems": [{"answer": a, "correct": c} for a, c in zip(answers, correct)]}
    return {**({"dataset": dataset} if dataset is not None else {}), **result}


def test_strata_from_results_takes_the_evaluated_dataset_or_refuses():
    from rlrt.evaluation.strata import strata_from_results

    with pytest.raises(ValueError) as err:  # the reported case: a file for addition:test, evaluating chain:test
        strata_from_results({"results": [_start("addition:test", ["30"])]}, "chain:test")
    assert str(err.value).startswith("the --strata-from file holds an evaluation of addition:test, not chain:test: ")
    assert "--dataset chain:test" in str(err.value) and "problem 0" not in str(err.value)
    with pytest.raises(ValueError, match="holds evaluations of addition:test, chain, not chain:test"):
        strata_from_results({"results": [_start("addition:test", ["1"]), _start("chain", ["2"])]}, "chain:test")
    # Another spelling of the same split is the same dataset; of several results, the evaluated dataset's is taken.
    payload = {"results": [_start("addition:test", ["1"]), _start("default:train", ["2"]), _start("chain", ["3"])]}
    assert strata_from_results(payload, "addition:train")[2] == ["2"]
    assert strata_from_results(payload, "chain:train")[2] == ["3"]
    # The file's only result, naming no dataset: nothing contradicts it (the answers are checked next).
    assert strata_from_results({"results": [_start(None, ["7"])]}, "chain:test")[2] == ["7"]
    with pytest.raises(ValueError, match="holds an evaluation of addition:test, not chain:test"):
        strata_from_results({"results": [_start(None, ["7"]), _start("addition:test", ["8"])]}, "chain:test")


def test_strata_of_an_evaluation_on_the_first_problems_of_the_start():
    from rlrt.evaluation.strata import strata_from_results, strata_summary

    start = {"strata_samples": 2, "results": [_start("d", ["1", "2", "3", "4"], [[0, 0], [1, 0], [1, 1], [0, 0]])]}
    counts, samples, answers = strata_from_results(start, "d")
    problems = [{"answer": a, "correct": [1.0, 1.0]} for a in "123"]  # --limit 3 of the start's 4
    table = strata_summary(problems, counts, samples, answers)
    assert {k: v["problems"] for k, v in table["strata"].items()} == {"never": 1, "<60%": 1, ">=60%": 1}
    with pytest.raises(ValueError, match="has 4 problems and this one 5: evaluate the same dataset with --limit 4 or "
                                         "less"):
        strata_summary(problems + [{"answer": a, "correct": [1.0]} for a in "45"], counts, samples, answers)
    with pytest.raises(ValueError, match=r"problem 1 of the --strata-from evaluation has the answer '2' and this one "
                                         r"'9' \(this evaluation's 2 problems must be the first 2 of its 4\)"):
        strata_summary([problems[0], {"answer": "9", "correct": [1.0]}], counts, samples, answers)


def test_eval_limit_takes_the_first_problems_of_the_strata_file(tmp_path, tiny_model_dir, capsys, monkeypatch):
    from rlrt.cli import main
    from rlrt.data.registry import load_task

    answers = load_task("addition", split="test", limit=6)["answer"]
    start = tmp_path / "start.json"
    start.write_text(json.dumps({"strata_samples": 2, "results": [_start(
        "default:test", answers, [[0, 0], [1, 0], [1, 1], [1, 1], [0, 0], [0, 0]])]}))
    out = tmp_path / "eval"
    argv = ["eval", "--model", str(tiny_model_dir), "--dataset", "addition:test", "--limit", "3", "--num_samples",
            "2", "--max_new_tokens", "4", "--bf16", "false", "--output_dir", str(out), "--strata-from", str(start)]
    assert main(argv) == 0
    result = json.loads((out / "results.json").read_text())["results"][0]
    assert [p["answer"] for p in result["problems"]] == answers[:3]
    assert {k: v["problems"] for k, v in result["strata"]["strata"].items()} == {"never": 1, "<60%": 1, ">=60%": 1}
    import rlrt.models

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the --strata-from check")

    monkeypatch.setattr(rlrt.models, "load_model", no_model)
    capsys.readouterr()
    other = argv[:argv.index("--dataset") + 1] + ["chain:test"] + argv[argv.index("--dataset") + 2:]
    assert main(other) == 2
    err = capsys.readouterr().err
    assert "the --strata-from file holds an evaluation of default:test, not chain:test" in err
    assert "problem 0" not in err


def test_strata_from_a_file_with_several_models_needs_the_starting_model():
    from rlrt.evaluation.strata import start_result, strata_from_results

    payload = {"results": [{**_start("chain:test", ["1"]), "model": "base"},
                           {**_start("chain:test", ["2"]), "model": "runs/rlrt/checkpoint-60"}]}
    with pytest.raises(ValueError, match=r"holds several models on chain:test \(base, runs/rlrt/checkpoint-60\): "
                                         r"pass --strata_model"):
        strata_from_results(payload, "chain:test")
    assert strata_from_results(payload, "chain:test", "runs/rlrt/checkpoint-60")[2] == ["2"]
    assert start_result(payload, "chain:test", "base")["problems"][0]["answer"] == "1"
    with pytest.raises(ValueError, match=r"no evaluation of other on chain:test; it holds \['base', "):
        start_result(payload, "chain:test", "other")
    # One model on the dataset, others elsewhere: no name needed.
    one = {"results": [payload["results"][0], {**_start("addition:test", ["3"]), "model": "x"}]}
    assert strata_from_results(one, "chain:test")[2] == ["1"]


def test_strata_from_refuses_a_generated_set_drawn_with_another_seed(tmp_path):
    from rlrt.evaluation.evaluate import EvalArguments, read_start_strata

    start = tmp_path / "start.json"
    start.write_text(json.dumps({"results": [{**_start("rg:chain_sum:test", ["5"]), "dataset_seed": 7}]}))
    args = EvalArguments(dataset=["rg:chain_sum:test"], strata_from=str(start))
    with pytest.raises(ValueError, match=r"drew rg:chain_sum:test with dataset seed 7 and this one with 0: pass "
                                         r"--dataset_seed 7"):
        read_start_strata(args)
    args = EvalArguments(dataset=["rg:chain_sum:test"], strata_from=str(start), dataset_seed=7)
    assert read_start_strata(args)["rg:chain_sum:test"][2] == ["5"]
    # A built-in held-out split is fixed: its seed does not matter.
    start.write_text(json.dumps({"results": [{**_start("chain:test", ["5"]), "dataset_seed": 7}]}))
    assert read_start_strata(EvalArguments(dataset=["chain:test"], strata_from=str(start)))["chain:test"][2] == ["5"]


@pytest.mark.parametrize("key", ["seed", "limit", "split"])
def test_dataset_options_refuse_keys_that_have_their_own_flag(key):
    from rlrt.data.registry import parse_dataset_options

    with pytest.raises(ValueError, match=f"--dataset_options sets '{key}', which has its own flag: drop it and use"):
        parse_dataset_options(json.dumps({key: 1, "steps": 3}))


def test_eval_dataset_seed_draws_the_generated_set_of_that_seed(tmp_path, tiny_model_dir, capsys):
    from rlrt.cli import main
    from rlrt.data.registry import load_task

    out = tmp_path / "eval"
    argv = ["eval", "--model", str(tiny_model_dir), "--dataset", "rg:chain_sum:test", "--limit", "3",
            "--num_samples", "1", "--max_new_tokens", "2", "--bf16", "false", "--output_dir", str(out),
            "--dataset_seed", "3"]
    assert main(argv) == 0
    result = json.loads((out / "results.json").read_text())["results"][0]
    drawn = load_task("rg:chain_sum", split="test", limit=3, seed=3)["answer"]
    assert [p["answer"] for p in result["problems"]] == list(drawn) != list(
        load_task("rg:chain_sum", split="test", limit=3, seed=0)["answer"])
    assert result["dataset_seed"] == 3
    assert main([*argv[:-2], "--dataset_options", '{"seed": 3}']) == 2
    assert "--dataset_options sets 'seed', which has its own flag" in capsys.readouterr().err


def test_previous_results_keep_or_refuse_in_one_line(tmp_path):
    from rlrt.evaluation.evaluate import EvalArguments, previous_results

    args = EvalArguments(dataset_options='{"steps":3}', output_dir=str(tmp_path))
    path = tmp_path / "results.json"
    assert previous_results(tmp_path, args.sampling(), args.settings()) == []
    entry = {"model": "m", "dataset": "chain:test", "summary": {}, "problems": []}
    settings = {**args.settings(), "dataset_options": '{"steps": 3}'}  # other spacing: the same options
    del settings["dataset_seed"]  # a file written before --dataset_seed existed: seed 0
    path.write_text(json.dumps({"sampling": args.sampling().to_dict(), "settings": settings, "results": [entry]}))
    assert previous_results(tmp_path, args.sampling(), args.settings()) == [entry]
    seeded = EvalArguments(dataset_options='{"steps":3}', dataset_seed=5)
    with pytest.raises(ValueError, match=r"other settings \(dataset_seed 0 there, 5 here\): choose another "
                                         r"--output_dir, or move .* away \(nothing there is overwritten\)\.$"):
        previous_results(tmp_path, seeded.sampling(), seeded.settings())
    for bad in ([1, 2], {"results": [1]}, {"results": [{"model": "m"}]}, {"results": [], "settings": [1]},
                {"results": "x"}, {"results": [], "settings": {}}, {}):
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match="is not a results.json of rlrt eval: choose another --output_dir"):
            previous_results(tmp_path, args.sampling(), args.settings())
    path.write_text(json.dumps({"sampling": {"seed": 0}, "results": [entry]}))  # compare's start, an older eval
    with pytest.raises(ValueError, match="records no evaluation settings"):
        previous_results(tmp_path, args.sampling(), args.settings())


def test_strata_markdown_tables_per_set_of_edges_with_json_keys():
    from rlrt.evaluation.strata import strata_markdown

    def result(model, labels, edges):
        strata = {label: {"problems": 1, "avg": 0.5, "pass": {"1": 0.5, "2": 0.75}} for label in labels}
        return {"model": model, "dataset": "d", "strata": {"strata": strata, "start_samples": 2, "edges": edges}}

    text = strata_markdown([result("a", ["never", "<60%", ">=60%"], [0.6]),
                            result("b", ["never", "<10%", ">=10%"], [0.1])])
    assert "(edges [0.6])" in text and "(edges [0.1])" in text
    assert "| a | d | never | 50.0 | 75.0 |" in text and "| b | d | <10% | 50.0 | 75.0 |" in text


def test_strata_from_file_of_another_layout_is_one_line(tmp_path):
    from rlrt.evaluation.evaluate import EvalArguments, read_start_strata

    start = tmp_path / "start.json"
    for text, message in [("{not json", "is not valid JSON"), ("[1]", "is not a results.json (a JSON object"),
                          ('{"results": [{"dataset": "chain:test", "problems": [{"answer": "1"}]}]}',
                           "is not a results.json of rlrt eval or rlrt compare (unexpected layout")]:
        start.write_text(text)
        with pytest.raises(ValueError, match=r"^--strata-from .*" + re.escape(message)):
            read_start_strata(EvalArguments(dataset=["chain:test"], strata_from=str(start)))


def test_a_size_option_still_takes_only_the_first_limit_problems():
    from rlrt.data.registry import load_task

    five = load_task("rg:chain_sum", split="test", size=5)
    three = load_task("rg:chain_sum", split="test", limit=3, size=5)
    assert len(five) == 5 and list(three["answer"]) == list(five["answer"])[:3]


def test_strata_from_a_start_sampled_under_other_settings_is_noted():
    """A new user's start was sampled with 24 new tokens and the evaluation with 48: the strata were used without a
    word, though part of the "gain" was the longer cap. One note line names what differs."""
    from rlrt.evaluation.evaluate import strata_sampling_note
    from rlrt.evaluation.sampling import SamplingConfig

    mine = SamplingConfig(max_new_tokens=48, temperature=1.0, seed=7, batch_size=8).to_dict()
    same = {**mine, "seed": 1000, "batch_size": 64, "bf16": True}  # these do not change what accuracy means
    assert strata_sampling_note(same, mine) is None and strata_sampling_note(None, mine) is None
    assert strata_sampling_note({"max_new_tokens": 48}, mine) is None  # an older file records fewer keys
    assert strata_sampling_note({**same, "max_new_tokens": 24, "temperature": 0.7}, mine) == (
        "the --strata-from evaluation sampled under other settings (max_new_tokens 24 there, 48 here; temperature "
        "0.7 there, 1.0 here): its strata and the start's scores mix in the settings' own effect; pass the same "
        "flags to compare like with like.")


def test_read_start_strata_prints_the_sampling_note(tmp_path, capsys):
    import json

    from rlrt.evaluation.evaluate import EvalArguments, read_start_strata

    start = tmp_path / "results.json"
    start.write_text(json.dumps({"sampling": {"max_new_tokens": 48, "temperature": 1.0, "top_p": 1.0, "top_k": 0},
                                 "results": [{"model": "m", "dataset": "addition:test",
                                              "problems": [{"answer": "3", "correct": [1, 0]}]}]}))
    args = EvalArguments(dataset=["addition:test"], strata_from=str(start), output_dir=str(tmp_path / "out"))
    assert read_start_strata(args)["addition:test"][:2] == ([1], 2)
    assert capsys.readouterr().err == (
        "rlrt eval: note: the --strata-from evaluation sampled under other settings (max_new_tokens 48 there, "
        f"{args.max_new_tokens} here): its strata and the start's scores mix in the settings' own effect; pass the "
        "same flags to compare like with like.\n")
    read_start_strata(EvalArguments(dataset=["addition:test"], strata_from=str(start), max_new_tokens=48,
                                    output_dir=str(tmp_path / "out")))
    assert not capsys.readouterr().err
