"""Exact resume, interruption by signal, non-finite steps, bad inputs and failing reward functions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from datasets import Dataset
from transformers import TrainerCallback

from rlrt import RLRTConfig, RLRTTrainer
from rlrt.io import read_jsonl
from rlrt.reliability import (
    COMPLETE_MARKER,
    NonFiniteStepError,
    RewardFunctionError,
    complete_checkpoints,
    last_complete_checkpoint,
    rotate_checkpoints,
)
from rlrt.rewards import parity_reward

COMPARED = ("loss", "reward", "rlrt/weight_mean", "rlrt/multiplier_mean", "rlrt/lambda", "entropy")


@pytest.fixture(scope="module")
def dataset():
    return Dataset.from_list([
        {"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}], "answer": str(2 * i), "solution": f"{2 * i}"}
        for i in range(16)
    ])


def config(path, **overrides):
    values = dict(output_dir=str(path), per_device_train_batch_size=8, num_generations=4, max_completion_length=8,
                  max_steps=4, learning_rate=5e-3, logging_steps=1, report_to="none", save_strategy="steps",
                  save_steps=2, gradient_checkpointing=False, bf16=False, seed=3, disable_tqdm=True,
                  teacher_weights="ema", teacher_ema_rate=0.3, shaping_lambda_decay_steps=4)
    values.update(overrides)
    return RLRTConfig(**values)


def make_trainer(tiny_model_dir, tokenizer, dataset, args, reward=parity_reward):
    return RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[reward], args=args, train_dataset=dataset,
                       processing_class=tokenizer)


class StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def params(trainer):
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters()}


def step_logs(trainer):
    return {e["step"]: {k: e[k] for k in COMPARED if k in e} for e in trainer.state.log_history if "loss" in e}


@pytest.mark.slow
def test_exact_resume(tmp_path, tiny_model_dir, tokenizer, dataset):
    full = make_trainer(tiny_model_dir, tokenizer, dataset, config(tmp_path / "full"))
    full.train()

    part = make_trainer(tiny_model_dir, tokenizer, dataset, config(tmp_path / "part"))
    part.add_callback(StopAt(2))
    part.train()
    checkpoint = last_complete_checkpoint(tmp_path / "part")
    assert checkpoint is not None and checkpoint.name == "checkpoint-2"

    resumed = make_trainer(tiny_model_dir, tokenizer, dataset, config(tmp_path / "part"))
    resumed.train(resume_from_checkpoint=str(checkpoint))

    full_params, resumed_params = params(full), params(resumed)
    assert all(torch.equal(full_params[n], resumed_params[n]) for n in full_params)
    for name, tensor in full.teacher_weights.snapshot.items():
        assert torch.equal(tensor, resumed.teacher_weights.snapshot[name])
    full_logs, resumed_logs = step_logs(full), step_logs(resumed)
    assert set(resumed_logs) == {1, 2, 3, 4}  # steps 1-2 come back from the checkpoint's trainer state
    for step in (1, 2, 3, 4):
        assert resumed_logs[step] == full_logs[step]
    assert resumed_logs[4]["rlrt/lambda"] == pytest.approx(0.5 * (1 - 3 / 4))


def test_incomplete_checkpoint_is_ignored(tmp_path):
    for step, complete in ((2, True), (4, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / COMPLETE_MARKER).write_text(str(step))
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-2"]


def test_rotation_keeps_complete_checkpoints_and_never_deletes_before_a_new_one_is_complete(tmp_path):
    def make(step, complete):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / COMPLETE_MARKER).write_text(str(step))

    for step, complete in ((2, True), (4, False), (6, True), (8, True), (10, False)):
        make(step, complete)
    deleted = rotate_checkpoints(tmp_path, limit=1)
    # checkpoint-10 is still being written (or its writer crashed after the newest complete one): kept.
    assert sorted(p.name for p in deleted) == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-8"]
    assert rotate_checkpoints(tmp_path, limit=None) == []

    make(12, True)
    removed = rotate_checkpoints(tmp_path, limit=2, protect=tmp_path / "checkpoint-8")
    assert [p.name for p in removed] == ["checkpoint-10"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-12", "checkpoint-8"]


@pytest.mark.slow
def test_trainer_rotates_only_after_the_new_checkpoint_is_complete(tmp_path, tiny_model_dir, tokenizer, dataset,
                                                                   monkeypatch):
    import rlrt.reliability as reliability_module

    seen = []
    real = reliability_module.rotate_checkpoints

    def spy(run_dir, limit, protect=None):
        seen.append([p.name for p in complete_checkpoints(run_dir)])
        return real(run_dir, limit, protect)

    monkeypatch.setattr(reliability_module, "rotate_checkpoints", spy)
    make_trainer(tiny_model_dir, tokenizer, dataset, config(tmp_path, save_total_limit=1, save_steps=1,
                                                          max_steps=3)).train()
    # At each rotation the previous checkpoint still exists and the new one is already complete.
    assert seen == [["checkpoint-1"], ["checkpoint-1", "checkpoint-2"], ["checkpoint-2", "checkpoint-3"]]
    assert [p.name for p in tmp_path.glob("checkpoint-*")] == ["checkpoint-3"]
    assert (tmp_path / "checkpoint-3" / COMPLETE_MARKER).is_file()
    saved_args = torch.load(tmp_path / "checkpoint-3" / "training_args.bin", weights_only=False)
    assert saved_args.save_total_limit == 1


@pytest.mark.slow
def test_nonfinite_step_is_skipped_then_the_run_stops(tmp_path, tiny_model_dir, tokenizer, dataset):
    class NaNAtStep(RLRTTrainer):
        poison_steps: set[int] = set()

        def _shaped_loss(self, model, inputs):
            loss = super()._shaped_loss(model, inputs)
            return loss * float("nan") if self.state.global_step + 1 in self.poison_steps else loss

    snapshots = {}

    class Snapshot(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            snapshots[state.global_step] = torch.cat([p.detach().flatten().clone() for p in model.parameters()])

    args = config(tmp_path / "nan", save_strategy="no", max_steps=3, max_nonfinite_steps=1, teacher_weights="live")
    trainer = NaNAtStep(model=str(tiny_model_dir), reward_funcs=[parity_reward], args=args, train_dataset=dataset,
                        processing_class=tokenizer)
    trainer.poison_steps = {2}
    trainer.add_callback(Snapshot())
    trainer.train()
    assert torch.equal(snapshots[1], snapshots[2]), "the poisoned step changed the weights"
    assert not torch.equal(snapshots[2], snapshots[3]) and torch.isfinite(snapshots[3]).all()
    logged = [e.get("rlrt/nonfinite_steps") for e in trainer.state.log_history if "loss" in e]
    assert logged == [None, 1.0, None]

    args = config(tmp_path / "nan2", save_strategy="no", max_steps=3, max_nonfinite_steps=0, teacher_weights="live")
    trainer = NaNAtStep(model=str(tiny_model_dir), reward_funcs=[parity_reward], args=args, train_dataset=dataset,
                        processing_class=tokenizer)
    trainer.poison_steps = {1, 2, 3}
    with pytest.raises(NonFiniteStepError, match="max_nonfinite_steps=0"):
        trainer.train()


def flaky_reward(prompts, completions, **kwargs):
    """Fails on completions whose length is a multiple of 3 (about a third of them)."""
    if any(len(c[0]["content"]) % 3 == 0 for c in completions):
        raise ZeroDivisionError("a bad completion")
    return [float(len(c[0]["content"]) % 2) for c in completions]


@pytest.mark.slow
def test_reward_function_failure_skips_samples_or_stops_in_strict_mode(tmp_path, tiny_model_dir, tokenizer, dataset):
    args = config(tmp_path / "skip", save_strategy="no", max_steps=2, teacher_weights="live")
    trainer = make_trainer(tiny_model_dir, tokenizer, dataset, args, reward=flaky_reward)
    trainer.train()
    errors = [e.get("rewards/flaky_reward/errors", 0) for e in trainer.state.log_history if "loss" in e]
    assert sum(errors) > 0 and trainer.reward_errors["flaky_reward"] == sum(errors)

    strict = config(tmp_path / "strict", save_strategy="no", max_steps=2, reward_errors="raise", teacher_weights="live")
    with pytest.raises(RewardFunctionError, match="flaky_reward"):
        make_trainer(tiny_model_dir, tokenizer, dataset, strict, reward=flaky_reward).train()


@pytest.mark.parametrize(
    "reward, message",
    [
        (lambda prompts, completions, **kw: [1.0], "returned 1 values"),
        (lambda prompts, completions, **kw: ["yes"] * len(completions), "rewards must be floats"),
        (lambda prompts, completions, **kw: 1.0, "must return a list"),
    ],
)
def test_malformed_reward_results_name_the_function(tmp_path, tiny_model_dir, tokenizer, dataset, reward, message):
    args = config(tmp_path / "bad", save_strategy="no", max_steps=1, teacher_weights="live")
    with pytest.raises(RewardFunctionError, match=message):
        make_trainer(tiny_model_dir, tokenizer, dataset, args, reward=reward).train()


def test_bad_inputs_fail_before_training(tmp_path, tiny_model_dir, tokenizer, dataset):
    args = config(tmp_path / "x", save_strategy="no", teacher_weights="live")
    with pytest.raises(ValueError, match="empty"):
        make_trainer(tiny_model_dir, tokenizer, dataset.select([]), args)
    with pytest.raises(ValueError, match="'prompt' column"):
        make_trainer(tiny_model_dir, tokenizer, dataset.rename_column("prompt", "question"), args)
    no_template = tokenizer.__class__.from_pretrained(tiny_model_dir)
    no_template.chat_template = None
    with pytest.raises(ValueError, match="chat template"):
        make_trainer(tiny_model_dir, no_template, dataset, args)


def _wait_for(predicate, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_and_the_run_resumes(tmp_path, tiny_model_dir):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "rlrt", "train", "--model", str(tiny_model_dir), "--output_dir", str(run),
               "--reward_funcs", "rlrt.rewards:parity_reward", "--max_steps", "40",
               "--per_device_train_batch_size", "8",
               "--num_generations", "4", "--max_completion_length", "8", "--eval_dataset", "none", "--bf16", "false",
               "--disable_tqdm", "true", "--dataset_limit", "16"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert _wait_for(lambda: len(read_jsonl(run / "metrics.jsonl")) >= 2, 240), "training did not start"
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, output[-2000:]
    assert "Run the same command again to resume" in output
    checkpoint = last_complete_checkpoint(run)
    assert checkpoint is not None
    stopped_at = json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]
    assert 2 <= stopped_at < 40
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "rlrt_state.pt"):
        assert (checkpoint / name).is_file(), name

    resumed = subprocess.run(command[:-4] + ["--max_steps", str(stopped_at + 2), "--dataset_limit", "16"],
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert f"resuming from {checkpoint}" in resumed.stdout
    steps = [m["step"] for m in read_jsonl(run / "metrics.jsonl") if "loss" in m]
    assert steps == list(range(1, stopped_at + 3))

    again = subprocess.run(command[:-4] + ["--max_steps", str(stopped_at + 2), "--dataset_limit", "16"], env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already" in again.stdout


def test_write_json_is_strict_and_atomic(tmp_path, monkeypatch):
    import json
    import math

    from rlrt.io import finite_or_none, write_json

    path = write_json(tmp_path / "r.json", {"avg": math.nan, "ratio": [1.0, math.inf, -math.inf], "n": 3}, indent=1)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"avg": None, "ratio": [1.0, None, None], "n": 3}
    assert finite_or_none((0.5, {"x": math.nan})) == [0.5, {"x": None}]
    # A write that fails midway keeps the file that was there, and leaves no partial file in its place.
    monkeypatch.setattr(json, "dumps", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        write_json(path, {"avg": 0.1})
    assert json.loads(path.read_text())["n"] == 3


def test_refuse_other_arguments_keeps_a_result_of_other_flags(tmp_path):
    import json

    from rlrt.io import refuse_other_arguments

    path = tmp_path / "inspect.json"
    refuse_other_arguments(path, {"limit": 2})  # nothing there yet
    path.write_text(json.dumps({"arguments": {"limit": 2, "seed": 0, "output_dir": "a"}, "problems": []}))
    refuse_other_arguments(path, {"limit": 2, "seed": 0, "output_dir": "b"})  # a rerun (same flags) may overwrite
    with pytest.raises(ValueError, match=r"holds a result of other arguments \(limit 2 there, 4 here\): choose "
                                         r"another --output_dir, or move .* away \(nothing there is overwritten\)"):
        refuse_other_arguments(path, {"limit": 4, "seed": 0})
    path.write_text("not json")
    with pytest.raises(ValueError, match="is not a result of this command"):
        refuse_other_arguments(path, {"limit": 2})


@pytest.mark.parametrize(("command", "file"), [("inspect", "inspect.json"), ("interventions", "interventions.json")])
def test_sampling_commands_refuse_to_overwrite_a_result_of_other_flags(command, file, tmp_path, capsys, monkeypatch):
    import json

    import rlrt.models
    from rlrt.cli import main

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the output folder was checked")

    monkeypatch.setattr(rlrt.models, "load_model", no_model)
    out = tmp_path / command
    out.mkdir()
    (out / file).write_text(json.dumps({"arguments": {"limit": 7}}))
    before = (out / file).read_text()
    assert main([command, "--limit", "2", "--output_dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out / file} holds a result of other arguments (" in err and "limit 7 there, 2 here" in err
    assert (out / file).read_text() == before


def test_a_reward_without_kwargs_is_refused_before_any_rollout():
    from collections import Counter

    from rlrt.reliability import guard_reward_function

    def strict(prompts, completions):
        return [1.0] * len(completions)

    with pytest.raises(ValueError, match=r"^Reward function 'strict' takes \(prompts, completions\), but TRL calls it "
                                         r"with the keywords .*: add \*\*kwargs \(def strict\(prompts, completions, "
                                         r"\*\*kwargs\)\)\.$"):
        guard_reward_function(strict, "skip", Counter())

    class Scorer:  # a callable object is inspected through its __call__
        def __call__(self, completions, **kwargs):
            return [0.0] * len(completions)

    assert guard_reward_function(Scorer(), "skip", Counter())(prompts=["p"], completions=["c"]) == [0.0]
    with pytest.raises(ValueError, match=r"^Reward function 'Scorer' is a class: pass an instance of it"):
        guard_reward_function(Scorer, "skip", Counter())


def test_a_run_that_mostly_ran_into_the_length_cap_says_so(tmp_path, capsys):
    """A new user's quick compare on the chain task cut every completion at 24 tokens and showed all zeros without a
    word: the summary (and stderr) now says what to raise, from TRL's completions/clipped_ratio."""
    from rlrt.config import RLRTConfig
    from rlrt.reliability import cut_completions_warning
    from rlrt.run import write_summary

    assert cut_completions_warning(None, 48) is None and cut_completions_warning(float("nan"), 48) is None
    assert cut_completions_warning(0.49, 48) is None
    assert cut_completions_warning(0.5, 24, " of grpo-s0's last steps") == (
        "warning: 50 % of the training completions of grpo-s0's last steps were cut at max_completion_length=24 "
        "(a cut completion has no final answer and is graded wrong): raise --max_completion_length.")

    config = RLRTConfig(output_dir=str(tmp_path), max_completion_length=24, report_to="none")
    logs = [{"step": 1, "reward": 0.0, "completions/clipped_ratio": 1.0},
            {"step": 2, "reward": 0.0, "completions/clipped_ratio": 0.75},
            {"step": 2, "train_runtime": 1.0}]  # TRL's closing record: not a training step
    summary = write_summary(tmp_path, logs, 1.0, config)
    assert summary["clipped_ratio"] == 0.875
    assert "- warning: 88 % of the training completions were cut at max_completion_length=24" in (
        tmp_path / "summary.md").read_text()
    assert capsys.readouterr().err.startswith("rlrt train: warning: 88 % of the training completions")

    logs = [{"step": 1, "reward": 0.5, "completions/clipped_ratio": 0.25}, {"step": 2, "reward": 0.5}]
    assert write_summary(tmp_path, logs, 1.0, config)["clipped_ratio"] == 0.25
    assert "warning" not in (tmp_path / "summary.md").read_text() and not capsys.readouterr().err
