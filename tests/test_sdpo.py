"""The SDPO baseline (`--shaping sdpo`): TRL's SDPOTrainer behind rlrt's config, run folder, guards and resume."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, TrainerCallback

from rlrt import RLRTConfig, RLRTTrainer, build_trainer
from rlrt.baselines import SDPOBaselineTrainer, to_sdpo_config
from rlrt.cli import main
from rlrt.io import read_jsonl
from rlrt.reliability import COMPLETE_MARKER, last_complete_checkpoint
from rlrt.rewards import parity_reward

TINY_RUN = ["--shaping", "sdpo", "--dataset", "addition", "--dataset_limit", "8", "--per_device_train_batch_size",
            "8", "--num_generations", "4", "--max_completion_length", "8", "--eval_limit", "4", "--eval_samples", "2",
            "--bf16", "false", "--disable_tqdm", "true", "--reward_funcs", "rlrt.rewards:parity_reward"]


@pytest.fixture(scope="module")
def dataset():
    return Dataset.from_list([
        {"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}], "answer": str(2 * i)} for i in range(16)
    ])


def sdpo_config(path, **overrides):
    values = dict(output_dir=str(path), shaping="sdpo", per_device_train_batch_size=8, num_generations=4,
                  max_completion_length=8, max_steps=4, learning_rate=5e-3, logging_steps=1, report_to="none",
                  save_strategy="steps", save_steps=2, gradient_checkpointing=False, bf16=False, seed=3,
                  disable_tqdm=True, teacher_ema_rate=0.3)
    values.update(overrides)
    return RLRTConfig(**values)


# ------------------------------------------------------------------------------------------ configuration


def test_shared_fields_are_copied_and_sdpo_keeps_its_own_defaults(tmp_path):
    config = sdpo_config(tmp_path, learning_rate=3e-4, temperature=0.7, seed=5, epsilon=0.1, epsilon_high=0.3,
                         loss_type="bnpo", save_steps=3, save_total_limit=2, gradient_accumulation_steps=2,
                         max_completion_length=12, teacher_weights="frozen", teacher_ema_rate=0.2,
                         correctness_threshold=0.5, sdpo_options={"distillation_weight": 0.25,
                                                                  "distillation_mode": "full_logits"})
    sdpo = to_sdpo_config(config)
    copied = ("learning_rate", "temperature", "seed", "epsilon", "epsilon_high", "loss_type", "save_steps",
              "save_total_limit", "gradient_accumulation_steps", "max_completion_length", "num_generations",
              "per_device_train_batch_size", "max_steps", "output_dir", "bf16", "use_cpu", "disable_dropout",
              "steps_per_generation", "generation_batch_size", "top_p", "remove_unused_columns")
    assert {n: getattr(sdpo, n) for n in copied} == {n: getattr(config, n) for n in copied}
    assert (sdpo.learning_rate, sdpo.epsilon_high, sdpo.loss_type) == (3e-4, 0.3, "bnpo")
    assert sdpo.generation_batch_size == 16  # 8 per device x 2 accumulation steps
    assert (sdpo.teacher_model_kind, sdpo.teacher_update_rate, sdpo.success_reward_threshold) == ("base", 0.2, 0.5)
    assert (sdpo.distillation_weight, sdpo.distillation_mode) == (0.25, "full_logits")
    # Untouched SDPO-only fields keep SDPO's defaults.
    assert (sdpo.distillation_is_clip, sdpo.max_reprompt_len, sdpo.dont_reprompt_on_self_success) == (2.0, 10240, True)

    default = to_sdpo_config(sdpo_config(tmp_path, teacher_ema_rate=0.05))
    assert (default.teacher_model_kind, default.teacher_update_rate, default.distillation_weight) == ("ema", 0.05, 1.0)
    assert RLRTConfig(output_dir=str(tmp_path), shaping="grpo").teacher_weights == "live"


def test_sdpo_options_from_the_command_line_as_json(tmp_path):
    from trl import TrlParser

    from rlrt.run import TrainArguments

    parser = TrlParser((TrainArguments, RLRTConfig))
    _, config = parser.parse_args_and_config(["--output_dir", str(tmp_path), "--shaping", "sdpo", "--sdpo_options",
                                              '{"distillation_weight": 0.5, "max_reprompt_len": 2048}'])
    assert to_sdpo_config(config).distillation_weight == 0.5 and to_sdpo_config(config).max_reprompt_len == 2048


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"shaping_lambda": 0.3}, "shaping_lambda has no meaning"),
        ({"teacher_context": "reference", "sibling_selection": "first"}, "teacher_context, sibling_selection have"),
        ({"entropy_coef": 0.01}, "no option entropy_coef"),
        ({"beta": 0.04}, "no KL term"),
        ({"loss_type": "cispo"}, "not one of SDPOTrainer's"),
        ({"sdpo_options": {"teacher_model_kind": "base"}}, "set teacher_weights instead"),
        ({"sdpo_options": {"learning_rate": 1.0}}, "learning_rate is a shared option"),
        ({"sdpo_options": {"distilation_weight": 1.0}}, "no field 'distilation_weight'"),
        ({"teacher_weights": "copy"}, "teacher_weights='copy' is not valid"),
    ],
)
def test_bad_combinations_are_refused_with_one_line(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message) as error:
        sdpo_config(tmp_path, **overrides)
    assert "\n" not in str(error.value)


def test_sdpo_options_without_sdpo_and_sdpo_through_rlrt_trainer_are_refused(tmp_path, tiny_model_dir, dataset):
    with pytest.raises(ValueError, match="only applies to shaping='sdpo'"):
        RLRTConfig(output_dir=str(tmp_path), shaping="grpo", sdpo_options={"distillation_weight": 0.5})
    with pytest.raises(ValueError, match="rlrt.build_trainer"):
        RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward], args=sdpo_config(tmp_path),
                    train_dataset=dataset)
    with pytest.raises(TypeError, match="RLRTConfig\\(shaping='sdpo'"):
        SDPOBaselineTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward],
                            args=RLRTConfig(output_dir=str(tmp_path), shaping="grpo"), train_dataset=dataset)


def test_cli_refuses_before_loading_anything(tmp_path, capsys):
    code = main(["train", "--model", "./no/such/model", "--output_dir", str(tmp_path / "r"), *TINY_RUN,
                 "--sdpo_options", '{"distillation_weight": 2}'])
    err = capsys.readouterr().err
    assert code == 2 and "distillation_weight" in err and "[0, 1]" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------------------ training


@pytest.mark.slow
def test_cli_sdpo_writes_the_same_run_folder_as_grpo(tmp_path, tiny_model_dir):
    run = tmp_path / "run"
    code = main(["train", "--model", str(tiny_model_dir), "--max_steps", "2", "--output_dir", str(run),
                 "--learning_rate", "1e-2", "--save_strategy", "steps", "--save_steps", "2", *TINY_RUN])
    assert code == 0
    for name in ("config.json", "metrics.jsonl", "metrics.csv", "heldout.jsonl", "summary.json", "summary.md",
                 "final/model.safetensors", "final/tokenizer.json", f"checkpoint-2/{COMPLETE_MARKER}",
                 "checkpoint-2/rlrt_state.pt"):
        assert (run / name).is_file(), name
    metrics = [m for m in read_jsonl(run / "metrics.jsonl") if "reward" in m]
    assert [m["step"] for m in metrics] == [1, 2]
    for key in ("sdpo/distillation_loss", "self_distillation/reprompt_sample_fraction", "rewards/parity_reward/mean",
                "rewards/parity_reward/errors", "reward_std", "step_time", "completions/mean_length"):
        assert all(key in m for m in metrics), key
    assert all(m["reward"] == m["self_distillation/reward_mean"] for m in metrics)
    heldout = read_jsonl(run / "heldout.jsonl")
    assert [h["step"] for h in heldout] == [0, 2] and all(h["problems"] == 4 for h in heldout)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["shaping"] == "sdpo" and summary["steps"] == 2 and summary["reward_first"] == metrics[0]["reward"]
    saved = json.loads((run / "config.json").read_text())
    assert saved["rlrt"]["shaping"] == "sdpo" and saved["sdpo"]["teacher_model_kind"] == "ema"
    assert saved["sdpo"]["learning_rate"] == 1e-2 and saved["sdpo"]["distillation_weight"] == 1.0
    before = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    after = AutoModelForCausalLM.from_pretrained(run / "final").state_dict()
    assert any(not torch.equal(before[n], after[n]) for n in before), "SDPO did not change the weights"


def flaky_reward(prompts, completions, **kwargs):
    """Fails on completions whose length is a multiple of 3 (about a third of them)."""
    if any(len(c[0]["content"]) % 3 == 0 for c in completions):
        raise ZeroDivisionError("a bad completion")
    return [float(len(c[0]["content"]) % 2) for c in completions]


def test_a_failing_reward_function_is_guarded_as_in_rlrt(tmp_path, tiny_model_dir, tokenizer, dataset):
    args = sdpo_config(tmp_path, save_strategy="no", max_steps=2)
    trainer = build_trainer(str(tiny_model_dir), [flaky_reward], args, dataset, processing_class=tokenizer)
    assert isinstance(trainer, SDPOBaselineTrainer)
    trainer.train()
    errors = [e.get("rewards/flaky_reward/errors", 0) for e in trainer.state.log_history if "loss" in e]
    assert sum(errors) > 0 and trainer.reward_errors["flaky_reward"] == sum(errors)


class SignalAtStep(TrainerCallback):
    """Sends this process SIGINT while step ``step`` runs, as a user's Ctrl-C would."""

    def __init__(self, step):
        self.step = step

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step + 1 == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.slow
def test_sigint_checkpoint_then_exact_resume_with_the_ema_teacher(tmp_path, tiny_model_dir, tokenizer, dataset):
    def make(path):
        return build_trainer(str(tiny_model_dir), [parity_reward], sdpo_config(path), dataset,
                             processing_class=tokenizer)

    full = make(tmp_path / "full")
    full.train()

    stopped = make(tmp_path / "part")
    stopped.add_callback(SignalAtStep(2))
    stopped.train()
    checkpoint = last_complete_checkpoint(tmp_path / "part")
    assert stopped.interrupted_by == "SIGINT" and stopped.state.global_step == 2 and checkpoint.name == "checkpoint-2"
    state = torch.load(checkpoint / "rlrt_state.pt", weights_only=False)
    ema_at_2 = stopped.accelerator.unwrap_model(stopped.teacher_model).state_dict()
    assert all(torch.equal(state["sdpo_teacher"][n], ema_at_2[n]) for n in ema_at_2)

    resumed = make(tmp_path / "part")
    resumed.train(resume_from_checkpoint=str(checkpoint))
    full_params, resumed_params = params(full.model), params(resumed.model)
    assert all(torch.equal(full_params[n], resumed_params[n]) for n in full_params)
    full_teacher, resumed_teacher = params(full.teacher_model), params(resumed.teacher_model)
    assert all(torch.equal(full_teacher[n], resumed_teacher[n]) for n in full_teacher)
    losses = {e["step"]: e["loss"] for e in full.state.log_history if "loss" in e}
    resumed_losses = {e["step"]: e["loss"] for e in resumed.state.log_history if "loss" in e}
    assert resumed_losses[4] == losses[4] and resumed_losses[3] == losses[3]


@pytest.mark.slow
def test_cli_resume_auto_continues_an_sdpo_run(tmp_path, tiny_model_dir, capsys):
    run = tmp_path / "run"
    base = ["train", "--model", str(tiny_model_dir), "--output_dir", str(run), "--eval_dataset", "none",
            "--save_strategy", "steps", "--save_steps", "1", "--save_total_limit", "1", *TINY_RUN]
    assert main(base + ["--max_steps", "2"]) == 0
    assert main(base + ["--max_steps", "3"]) == 0
    assert f"resuming from {run / 'checkpoint-2'} (step 2 of 3)" in capsys.readouterr().out
    assert [m["step"] for m in read_jsonl(run / "metrics.jsonl") if "reward" in m] == [1, 2, 3]
    assert [p.name for p in run.glob("checkpoint-*")] == ["checkpoint-3"]
    assert main(base + ["--max_steps", "3"]) == 0
    assert "already finished at step 3" in capsys.readouterr().out


@pytest.mark.slow
def test_lora_ema_teacher_adapter_survives_resume(tmp_path, tiny_model_dir, tokenizer, dataset):
    from peft import LoraConfig

    def make(path):
        lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
        return build_trainer(str(tiny_model_dir), [parity_reward], sdpo_config(path, max_steps=2, save_steps=1),
                             dataset, processing_class=tokenizer, peft_config=lora)

    full = make(tmp_path / "full")
    full.train()
    resumed = make(tmp_path / "part")
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-1"))
    shadow_full = full._ema_adapter_callback().shadow_weights
    shadow_resumed = resumed._ema_adapter_callback().shadow_weights
    assert shadow_full and all(torch.equal(shadow_full[k], shadow_resumed[k]) for k in shadow_full)
    assert any(v.abs().sum() > 0 for v in shadow_full.values())
    full_params, resumed_params = params(full.model), params(resumed.model)
    assert all(torch.equal(full_params[n], resumed_params[n]) for n in full_params)
