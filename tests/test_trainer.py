"""End-to-end RLRTTrainer runs on a tiny local model, one per variant and option."""

from __future__ import annotations

import pytest
import torch

import rlrt.step as step_module
from rlrt import RLRTTrainer
from rlrt.rewards import parity_reward
from training_helpers import make_config, train

SHAPING_METRICS = ("rlrt/gated_frac", "rlrt/teacher_frac", "rlrt/weight_mean", "rlrt/multiplier_mean",
                   "rlrt/clip_low_frac", "rlrt/clip_high_frac", "rlrt/log_ratio_mean", "rlrt/self_driven_frac",
                   "rlrt/teacher_seconds", "rlrt/context_frac")


@pytest.mark.slow
@pytest.mark.parametrize("shaping", ["grpo", "rlrt", "rlrt_all", "teacher_up", "rlsd"])
def test_every_variant_trains(tmp_path, tiny_model_dir, tokenizer, dataset, shaping):
    trainer, changed, logged = train(tiny_model_dir, tokenizer, dataset, make_config(tmp_path, shaping=shaping))
    assert changed > 0
    if shaping == "grpo":
        assert not any(k.startswith("rlrt/") for k in logged)
    else:
        assert set(SHAPING_METRICS) <= logged
        shaped = [e["rlrt/shaped_frac"] for e in trainer.state.log_history if "rlrt/shaped_frac" in e]
        assert any(v > 0 for v in shaped), "no row was ever reweighted"
    if shaping == "rlsd":
        lambdas = [e["rlrt/lambda"] for e in trainer.state.log_history if "rlrt/lambda" in e]
        assert lambdas == [0.5, pytest.approx(0.49)]  # linear decay to 0 over 50 steps


@pytest.mark.slow
def test_shaping_reaches_the_loss(tmp_path, tiny_model_dir, tokenizer, dataset):
    """rlrt with lam = 0 trains exactly like grpo; with lam = 0.5 it does not."""
    def final(shaping, lam):
        config = make_config(tmp_path / f"{shaping}{lam}", shaping=shaping, shaping_lambda=lam)
        trainer, _, _ = train(tiny_model_dir, tokenizer, dataset, config)
        return torch.cat([p.detach().flatten() for p in trainer.model.parameters()])

    grpo = final("grpo", 0.5)
    assert torch.equal(final("rlrt", 0.0), grpo)
    assert not torch.equal(final("rlrt", 0.5), grpo)


@pytest.mark.slow
def test_teacher_prompt_holds_a_sibling_never_the_row_itself(tmp_path, tiny_model_dir, tokenizer, dataset, monkeypatch):
    calls = []
    real_choose, real_tokenize = step_module.choose_contexts, step_module.tokenize_teacher_prompts

    def spy_choose(rows, group_size, correct, completions, **kwargs):
        contexts = real_choose(rows, group_size, correct, completions, **kwargs)
        calls.append({"rows": list(rows), "correct": list(correct), "completions": list(completions),
                      "contexts": contexts})
        return contexts

    def spy_tokenize(tok, prompts, solutions, *args, **kwargs):
        ids = real_tokenize(tok, prompts, solutions, *args, **kwargs)
        calls[-1]["teacher_texts"] = [tok.decode(x) for x in ids]
        calls[-1]["solutions"] = list(solutions)
        return ids

    monkeypatch.setattr(step_module, "choose_contexts", spy_choose)
    monkeypatch.setattr(step_module, "tokenize_teacher_prompts", spy_tokenize)
    train(tiny_model_dir, tokenizer, dataset, make_config(tmp_path, shaping="rlrt"))
    checked = 0
    for call in calls:
        completions, correct = call["completions"], call["correct"]
        for row, context in zip(call["rows"], call["contexts"]):
            if context is None:
                continue
            group = range(row - row % 4, row - row % 4 + 4)
            donors = [j for j in group if j != row and correct[j] and completions[j] == context]
            assert donors, "the context is not a correct sibling's completion"
            if completions[row] != context:
                checked += 1
        for text, solution in zip(call["teacher_texts"], call["solutions"]):
            assert "Correct solution:\n\n" + solution in text
    assert checked > 0


@pytest.mark.slow
def test_lora_with_frozen_teacher(tmp_path, tiny_model_dir, tokenizer, dataset):
    from peft import LoraConfig

    config = make_config(tmp_path, shaping="rlrt", teacher_weights="frozen")
    trainer, changed, logged = train(
        tiny_model_dir, tokenizer, dataset, config, peft_config=LoraConfig(r=4, target_modules=["q_proj", "v_proj"])
    )
    assert changed > 0 and trainer.teacher_weights.uses_adapters
    assert "rlrt/weight_mean" in logged


@pytest.mark.slow
@pytest.mark.parametrize("shaping", ["rlrt_all", "rlsd"])
def test_lora_with_live_teacher(tmp_path, tiny_model_dir, tokenizer, dataset, shaping):
    from peft import LoraConfig

    config = make_config(tmp_path, shaping=shaping)
    _, changed, logged = train(
        tiny_model_dir, tokenizer, dataset, config, peft_config=LoraConfig(r=4, target_modules=["q_proj", "v_proj"])
    )
    assert changed > 0 and "rlrt/weight_mean" in logged


@pytest.mark.slow
def test_ema_teacher_lags_the_policy(tmp_path, tiny_model_dir, tokenizer, dataset):
    config = make_config(tmp_path, shaping="rlrt", teacher_weights="ema", teacher_ema_rate=0.5)
    trainer, changed, _ = train(tiny_model_dir, tokenizer, dataset, config)
    initial = RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward], args=config,
                          train_dataset=dataset, processing_class=tokenizer)
    name = "model.layers.0.self_attn.q_proj.weight"
    start = dict(initial.model.named_parameters())[name].detach()
    policy = dict(trainer.model.named_parameters())[name].detach()
    ema = trainer.teacher_weights.snapshot[name]
    # Two steps with tau = 0.5: the EMA lies strictly between the start and the policy, nearer the policy.
    assert not torch.equal(ema, start) and not torch.equal(ema, policy)
    assert (ema - policy).norm() < (start - policy).norm()


@pytest.mark.slow
def test_rollout_logps_with_several_iterations(tmp_path, tiny_model_dir, tokenizer, dataset):
    """num_iterations = 2 makes TRL keep old-policy log-probs, which 'rollout' then uses as log P_S."""
    for source in ("rollout", "current"):
        config = make_config(tmp_path / source, shaping="rlrt", num_iterations=2, student_logps=source)
        _, changed, logged = train(tiny_model_dir, tokenizer, dataset, config)
        assert changed > 0 and "rlrt/weight_mean" in logged


def test_rlsd_without_solution_column_says_what_to_do(tmp_path, tiny_model_dir, tokenizer, dataset):
    with pytest.raises(ValueError, match="'solution' column"):
        RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward],
                    args=make_config(tmp_path, shaping="rlsd"),
                    train_dataset=dataset.remove_columns("solution"), processing_class=tokenizer)


def test_rlsd_on_a_dataset_without_any_solution_is_refused(tmp_path, tiny_model_dir, tokenizer, dataset):
    # The reported case: rlrt.data's loaders write "" where a source has no worked solution (a local file without
    # the column, most rg: tasks), so the column exists and every row would silently train as plain GRPO.
    empty = dataset.map(lambda row: {"solution": ""})
    with pytest.raises(ValueError, match=r"needs the 'solution' column filled, and no row of the training dataset "
                                         r"has one: .* or choose teacher_context='sibling'"):
        RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward],
                    args=make_config(tmp_path, shaping="rlsd"), train_dataset=empty, processing_class=tokenizer)
    with pytest.raises(ValueError, match=r"teacher context 'reference' needs the 'solution' column filled.*or drop "
                                         r"teacher_context_fallback\.$"):
        RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward], train_dataset=empty,
                    args=make_config(tmp_path, shaping="rlrt", teacher_context_fallback="reference"),
                    processing_class=tokenizer)
    some = dataset.map(lambda row, i: {"solution": row["solution"] if i == 0 else ""}, with_indices=True)
    RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward],  # rows without one get no teacher
                args=make_config(tmp_path, shaping="rlsd"), train_dataset=some, processing_class=tokenizer)


def test_grpo_config_is_refused_with_a_fix(tmp_path, tiny_model_dir, tokenizer, dataset):
    from trl import GRPOConfig

    with pytest.raises(TypeError, match="RLRTConfig"):
        RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward],
                    args=GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False),
                    train_dataset=dataset, processing_class=tokenizer)


def test_unknown_correctness_reward(tmp_path, tiny_model_dir, tokenizer, dataset):
    with pytest.raises(ValueError, match="parity_reward"):
        RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward],
                    args=make_config(tmp_path, correctness_reward="accuracy"),
                    train_dataset=dataset, processing_class=tokenizer)


def test_sharded_ranks_make_the_same_number_of_teacher_forwards(tmp_path, tiny_model_dir, tokenizer, dataset):
    """Under ZeRO-3/FSDP a rank with fewer teacher rows pads with dummy forwards (each forward is a collective)."""
    trainer = RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward], args=make_config(tmp_path),
                          train_dataset=dataset, processing_class=tokenizer)
    calls = []
    real = trainer._teacher_logps_fn
    trainer._teacher_logps_fn = lambda *a: calls.append(a[0].shape) or real(*a)
    trainer.accelerator.reduce = lambda tensor, reduction: tensor + 2 if reduction == "max" else tensor
    trainer._match_teacher_forward_count(rows=3, batch_size=2)  # 2 chunks here, 4 on the busiest rank
    assert calls == [(1, 2), (1, 2)]


@pytest.mark.slow
def test_rows_the_loss_ignores_are_not_scored_or_counted(tmp_path, tiny_model_dir, tokenizer, dataset):
    """Every completion truncated and masked (mask_truncated_completions): no teacher forward, nothing counted as
    scored or shaped. The same run without the masking scores rows, so the check can fail."""
    def run(mask_truncated):
        config = make_config(tmp_path / str(mask_truncated), shaping="rlrt_all", max_completion_length=3, max_steps=1,
                             mask_truncated_completions=mask_truncated)
        trainer = RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward], args=config,
                              train_dataset=dataset, processing_class=tokenizer)
        forwards = []
        real = trainer._teacher_logps_fn
        trainer._teacher_logps_fn = lambda *a: forwards.append(a[0].shape[0]) or real(*a)
        trainer.train()
        (logged,) = [e for e in trainer.state.log_history if "rlrt/teacher_rows_frac" in e]
        return forwards, logged

    forwards, logged = run(mask_truncated=True)
    assert logged["completions/clipped_ratio"] == 1.0  # the random tiny model never stops within 3 tokens
    assert forwards == [] and logged["rlrt/teacher_rows_frac"] == 0.0 and logged["rlrt/shaped_frac"] == 0.0
    forwards, logged = run(mask_truncated=False)
    assert sum(forwards) > 0 and logged["rlrt/teacher_rows_frac"] > 0 and logged["rlrt/shaped_frac"] > 0


def test_a_prompt_too_long_for_the_teacher_is_refused_before_any_rollout(tmp_path, tiny_model_dir, tokenizer,
                                                                         dataset):
    # The reported case: the first time such a row got a teacher, the run stopped with a ValueError mid-training.
    longest = max(range(len(dataset)), key=lambda i: len(str(dataset[i]["prompt"])))
    message = (rf"^train_dataset row {longest} \(rows count from 0\): The teacher prompt needs \d+ tokens without its "
               r"context, more than max_teacher_prompt_length=16")
    with pytest.raises(ValueError, match=message):
        RLRTTrainer(model=str(tiny_model_dir), reward_funcs=[parity_reward],
                    args=make_config(tmp_path, shaping="rlrt", max_teacher_prompt_length=16), train_dataset=dataset,
                    processing_class=tokenizer)
