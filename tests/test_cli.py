"""`rlrt train` and `rlrt eval`: run folders, config files, overrides, errors, and the real embedded model."""

from __future__ import annotations

import json

import pytest

from rlrt.cli import main
from rlrt.io import read_jsonl

TINY_RUN = ["--dataset", "addition", "--dataset_limit", "8", "--per_device_train_batch_size", "8",
            "--num_generations", "4", "--max_completion_length", "8", "--eval_limit", "4", "--eval_samples", "2",
            "--bf16", "false", "--disable_tqdm", "true"]


@pytest.fixture
def parity_reward_file(tmp_path):
    """A reward a random tiny model earns about half the time, so groups mix correct and wrong rollouts."""
    path = tmp_path / "parity_reward.py"
    path.write_text("def parity(completions, **kw):\n"
                    "    return [float(len(c[0]['content']) % 2 == 0) for c in completions]\n")
    return f"{path}:parity"


@pytest.mark.slow
def test_train_writes_a_complete_run_folder(tmp_path, tiny_model_dir, parity_reward_file):
    run = tmp_path / "run"
    code = main(["train", "--model", str(tiny_model_dir), "--max_steps", "2", "--output_dir", str(run),
                 "--learning_rate", "1e-3", "--reward_funcs", parity_reward_file, "accuracy", *TINY_RUN])
    assert code == 0
    for name in ("config.json", "metrics.jsonl", "metrics.csv", "heldout.jsonl", "summary.json", "summary.md",
                 "final/model.safetensors", "final/tokenizer.json"):
        assert (run / name).is_file(), name
    metrics = [m for m in read_jsonl(run / "metrics.jsonl") if "reward" in m]
    assert [m["step"] for m in metrics] == [1, 2]
    assert all("rlrt/gated_frac" in m and "rlrt/teacher_seconds" in m for m in metrics)
    assert all("rewards/parity/mean" in m and "rewards/accuracy_reward/mean" in m for m in metrics)
    heldout = read_jsonl(run / "heldout.jsonl")
    assert [h["step"] for h in heldout] == [0, 2] and all(h["problems"] == 4 and "pass@2" in h for h in heldout)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["shaping"] == "rlrt" and summary["reward_first"] == metrics[0]["reward"]
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "step" in header and "rlrt/weight_mean" in header


@pytest.mark.slow
def test_yaml_config_and_flag_override(tmp_path, tiny_model_dir):
    config = tmp_path / "run.yaml"
    config.write_text(f"model: {tiny_model_dir}\nshaping: grpo\nmax_steps: 1\neval_dataset: none\n"
                      f"output_dir: {tmp_path / 'run'}\n")
    assert main(["train", "--config", str(config), "--shaping", "teacher_up", *TINY_RUN]) == 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["rlrt"]["shaping"] == "teacher_up" and saved["rlrt"]["max_steps"] == 1
    assert saved["train"]["model"] == str(tiny_model_dir)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "./no/such/model"], "does not exist"),
        (["--dataset", "no-such-dataset"], "Unknown dataset"),
        (["--shaping_lambda", "2"], "shaping_lambda must lie in"),
        (["--reward_funcs", "nope"], "Unknown reward function"),
        (["--reward_funcs", "reasoning_gym"], "Use --reward_funcs accuracy"),
        (["--reward_options", '{"bogus": 1}'], "unknown option 'bogus'; the options are ['answer_format'"),
        (["--dataset_options", "[1]"], "must be a JSON object"),
        (["--dataset_options", "{bad"], "--dataset_options is not valid JSON"),
        (["--dataset", "chain", "--dataset_options", '{"steps": 0}'], "option 'steps' must be an integer from 1 to 8"),
    ],
)
def test_clear_errors(tmp_path, tiny_model_dir, capsys, args, message):
    base = ["train", "--model", str(tiny_model_dir), "--output_dir", str(tmp_path / "r"), *TINY_RUN]
    assert main(base + args) == 2
    assert message in capsys.readouterr().err


def test_missing_reward_file(tmp_path, tiny_model_dir, capsys):
    code = main(["train", "--model", str(tiny_model_dir), "--output_dir", str(tmp_path / "r"),
                 "--reward_funcs", f"{tmp_path}/absent.py:f", *TINY_RUN])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_help_and_unknown_command(capsys):
    assert main(["--help"]) == 0 and "rlrt train" in capsys.readouterr().out
    assert main(["frobnicate"]) == 2


@pytest.mark.slow
def test_real_embedded_model_trains_and_evaluates(tmp_path):
    """The default path, offline: the embedded SmolLM2-135M, one RLRT step, then `rlrt eval` on the result."""
    run = tmp_path / "run"
    code = main(["train", "--max_steps", "1", "--output_dir", str(run), "--per_device_train_batch_size", "8",
                 "--num_generations", "4", "--max_completion_length", "16", "--eval_limit", "4",
                 "--eval_samples", "1", "--disable_tqdm", "true"])
    assert code == 0
    metrics = [m for m in read_jsonl(run / "metrics.jsonl") if "reward" in m]
    assert len(metrics) == 1 and 0.0 <= metrics[0]["reward"] <= 1.0
    out = tmp_path / "eval"
    assert main(["eval", "--model", "smollm2-135m", str(run / "final"), "--dataset", "addition:test",
                 "--limit", "4", "--num_samples", "2", "--max_new_tokens", "16", "--output_dir", str(out)]) == 0
    payload = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in payload["results"]] == ["smollm2-135m", str(run / "final")]
    for result in payload["results"]:
        assert result["summary"]["problems"] == 4 and 0.0 <= result["summary"]["pass@2"] <= 1.0
        assert all(len(p["completions"]) == 2 for p in result["problems"])
    assert payload["sampling"]["max_new_tokens"] == 16
    assert "| smollm2-135m | addition:test | 4 |" in (out / "results.md").read_text()


@pytest.mark.slow
def test_rg_dataset_trains_and_evaluates_with_reasoning_gym_s_scorer(tmp_path, tiny_model_dir, capsys):
    """TRL hands the rg_* columns to accuracy_reward; held-out evaluation on an rg: set grades the same way."""
    out = tmp_path / "rg"
    code = main(["train", "--model", str(tiny_model_dir), "--output_dir", str(out), *TINY_RUN, "--max_steps", "1",
                 "--dataset", "rg:spell_backward", "--eval_dataset", "rg:spell_backward:test"])
    assert code == 0
    assert "reasoning-gym's own scorer for spell_backward" in capsys.readouterr().out
    assert (out / "heldout.jsonl").is_file() and (out / "summary.json").is_file()


def test_every_command_option_has_a_help_text_and_shows_its_default(capsys):
    import dataclasses
    import importlib

    from trl import GRPOConfig

    from rlrt import cli

    assert all(name in cli.__doc__.splitlines()[0] for name in cli.COMMANDS)
    inherited = {f.name for f in dataclasses.fields(GRPOConfig)}  # TRL's own fields carry TRL's help
    for name, module in cli.COMMANDS.items():
        for cls in importlib.import_module(module).COMMAND_ARGUMENTS:
            own = [f for f in dataclasses.fields(cls) if f.init and not (issubclass(cls, GRPOConfig)
                                                                           and f.name in inherited)]
            missing = [f.name for f in own if not f.metadata.get("help")]
            assert not missing, f"rlrt {name}: {cls.__name__} fields without help: {missing}"
        if name == "train":
            continue  # hundreds of TRL options; its own fields are checked above
        with pytest.raises(SystemExit):
            cli.parse_command(name, ["--help"])
        entries = capsys.readouterr().out.split("options:", 1)[1].split("\n  --")[1:]  # one per option
        shown = {entry.split()[0].rstrip(","): " ".join(entry.split()) for entry in entries}
        for cls in importlib.import_module(module).COMMAND_ARGUMENTS:
            for f in dataclasses.fields(cls):
                if f.init:
                    assert "(default:" in shown[f.name], f"rlrt {name} --{f.name}: no default shown"
