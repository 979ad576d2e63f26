"""One RLRT step, two callers: a training step and `rlrt inspect` on the same rollouts compute the same contexts,
the same log P_T and the same multipliers, for every variant and the options that change them."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import rlrt.trainer as trainer_module
from rlrt import RLRTConfig, RLRTTrainer
from rlrt.analysis.inspect_run import InspectArguments, build_rollouts, inspect_config, inspect_rollouts
from rlrt.models import load_model
from rlrt.rewards import parity_reward
from rlrt.step import Rollouts, choose_teacher_rows, rlrt_step

STEP_OPTIONS = ("shaping", "shaping_lambda", "shaping_eps_w", "log_ratio_clamp", "teacher_context",
                "teacher_context_fallback", "sibling_selection", "teacher_prompt_template", "max_teacher_prompt_length",
                "temperature", "seed", "num_generations", "shaping_lambda_decay_steps", "correctness_threshold")


def _training_step(tmp_path, tiny_model_dir, tokenizer, dataset, monkeypatch, options):
    """One optimizer step; what the trainer's hooks computed, recorded at the step API."""
    generation, loss = [], []
    real_score, real_shape = trainer_module.score_with_teacher, trainer_module.shape_rollouts

    def record_score(rollouts, *args, **kwargs):
        out = real_score(rollouts, *args, **kwargs)
        generation.append((rollouts, out))
        return out

    def record_shape(advantages, student_logps, teacher_logps, *args, **kwargs):
        shaping, lam = real_shape(advantages, student_logps, teacher_logps, *args, **kwargs)
        loss.append((teacher_logps, shaping, lam))
        return shaping, lam

    monkeypatch.setattr(trainer_module, "score_with_teacher", record_score)
    monkeypatch.setattr(trainer_module, "shape_rollouts", record_shape)
    config = RLRTConfig(output_dir=str(tmp_path), per_device_train_batch_size=8, num_generations=4,
                        max_completion_length=10, max_steps=1, learning_rate=5e-3, logging_steps=1, report_to="none",
                        save_strategy="no", gradient_checkpointing=False, bf16=False, **options)
    trainer = RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward], args=config,
                          train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    return config, generation, loss


VARIANT_CASES = [
    ("grpo", {}),
    ("rlrt", {}),
    ("rlrt_all", {}),
    ("teacher_up", {}),
    ("rlsd", {}),
    ("rlrt", {"temperature": 0.7, "log_ratio_clamp": 0.05, "sibling_selection": "shortest",
              "teacher_context_fallback": "answer", "shaping_lambda": 0.9, "shaping_eps_w": 0.3, "seed": 3}),
    ("rlsd", {"teacher_context": "answer", "temperature": 1.3}),
]


@pytest.mark.slow
@pytest.mark.parametrize("shaping, options", VARIANT_CASES, ids=lambda v: v if isinstance(v, str) else None)
def test_training_step_and_inspector_agree(tmp_path, tiny_model_dir, tokenizer, dataset, monkeypatch, shaping,
                                           options):
    options = {"seed": 0, **options, "shaping": shaping}
    config, generation, loss = _training_step(tmp_path, tiny_model_dir, tokenizer, dataset, monkeypatch, options)

    # The inspector builds its RLRTConfig from its own flags: the same values as training for every step option.
    flags = {f.name for f in dataclasses.fields(InspectArguments)}
    args = InspectArguments(model=str(tiny_model_dir), num_samples=4, max_new_tokens=10,
                            **{k: v for k, v in options.items() if k in flags})
    inspector_config = inspect_config(args)
    for name in STEP_OPTIONS:
        assert getattr(inspector_config, name) == getattr(config, name), name

    if shaping == "grpo":
        assert generation == [] and loss == []  # training never runs the teacher for the baseline
        return
    (rollouts, (teacher, _, teacher_logps)), = generation
    mask = rollouts.completion_mask.bool()
    inspected = build_rollouts(
        tokenizer, list(rollouts.prompts), [ids[m].tolist() for ids, m in zip(rollouts.completion_ids, mask)],
        rollouts.rewards.tolist(), rollouts.group_size, advantages=rollouts.advantages,
        references=rollouts.references, answers=rollouts.answers,
    )
    model = load_model(str(tiny_model_dir))  # the weights the rollouts were scored with (before the update)
    result, described = inspect_rollouts(model, tokenizer, inspected, inspector_config)

    assert result.teacher.contexts == teacher.contexts
    assert torch.equal(result.teacher.rows, teacher.rows) and teacher.rows.any()
    torch.testing.assert_close(result.teacher_logps, teacher_logps, atol=2e-5, rtol=0)
    assert [r["context"] for r in described] == teacher.contexts

    # The loss-time shaping saw the rows shuffled (TRL's buffer): match them back by their teacher log-probs.
    (loss_teacher_logps, shaping_result, lam), = loss
    assert lam == result.lam
    for j in range(loss_teacher_logps.shape[0]):
        k = next(i for i in range(teacher_logps.shape[0]) if torch.equal(teacher_logps[i], loss_teacher_logps[j]))
        torch.testing.assert_close(result.shaping.multiplier[k], shaping_result.multiplier[j], atol=1e-4, rtol=0)
        tokens = described[k]["tokens"]
        width = len(tokens)
        torch.testing.assert_close(torch.tensor([t["multiplier"] for t in tokens]),
                                   shaping_result.multiplier[j, :width], atol=1e-4, rtol=0)
    if options.get("log_ratio_clamp") == 0.05:
        shaped = result.shaping.multiplier[result.shaping.shaped.unsqueeze(1) & mask]
        assert (shaped != 1.0).any() and (shaped - 1.0).abs().max() <= 0.9 * (torch.exp(torch.tensor(0.05)) - 1) + 1e-6


def _tiny_rollouts(mask_rows=()):
    """Two groups of 3; group 0 mixed, group 1 all wrong."""
    mask = torch.ones(6, 4, dtype=torch.long)
    for row in mask_rows:
        mask[row] = 0
    return Rollouts(
        prompts=["p0"] * 3 + ["p1"] * 3, completion_ids=torch.arange(24).view(6, 4) % 7 + 1, completion_mask=mask,
        advantages=torch.tensor([1.0, 1.0, -2.0, 0.0, 0.0, 0.0]), rewards=torch.tensor([1.0, 1.0, 0.0, 0, 0, 0]),
        completion_texts=["a", "bb", "c", "d", "e", "f"], group_size=3,
    )


def test_rows_whose_mask_is_all_zero_are_not_sent_to_the_teacher():
    config = RLRTConfig(output_dir="unused", per_device_train_batch_size=6, num_generations=3, report_to="none",
                        bf16=False, shaping="rlrt")
    full = choose_teacher_rows(_tiny_rollouts(), config)
    assert full.rows.tolist() == [True, True, False, False, False, False]
    truncated = choose_teacher_rows(_tiny_rollouts(mask_rows=[0]), config)
    assert truncated.contexts[0] == "bb"  # still has a context ...
    assert truncated.rows.tolist() == [False, True, False, False, False, False]  # ... but is not scored


def test_all_truncated_batch_runs_no_teacher_forward_and_counts_nothing(tokenizer):
    config = RLRTConfig(output_dir="unused", per_device_train_batch_size=6, num_generations=3, report_to="none",
                        bf16=False, shaping="rlrt_all")
    calls = []

    def logps_fn(input_ids, attention_mask, logits_to_keep, batch_size):
        calls.append(input_ids.shape)
        return torch.zeros(input_ids.shape[0], logits_to_keep)

    result = rlrt_step(_tiny_rollouts(mask_rows=range(6)), config, tokenizer, logps_fn,
                       student_logps=torch.zeros(6, 4))
    assert calls == [] and not result.teacher.rows.any()
    assert result.shaping.stats["shaped_frac"] == (0.0, 6.0) and result.shaping.stats["teacher_frac"] == (0.0, 6.0)
    assert torch.equal(result.shaping.multiplier, torch.ones(6, 4))


def test_inspector_config_follows_the_variant_and_refuses_sdpo():
    assert inspect_config(InspectArguments(shaping="rlsd")).teacher_context == "reference"  # training's default
    assert inspect_config(InspectArguments(shaping="rlrt")).teacher_context == "sibling"
    with pytest.raises(ValueError, match="sdpo does not use"):
        inspect_config(InspectArguments(shaping="sdpo"))
