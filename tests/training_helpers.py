"""Helpers shared by the trainer tests (``test_trainer.py``, ``test_gpu.py``); not a test module."""

from __future__ import annotations

import torch

from rlrt import RLRTConfig, RLRTTrainer
from rlrt.rewards import parity_reward


def make_config(tmp_path, **overrides) -> RLRTConfig:
    """A two-step run of 8 rollouts (2 groups of 4) of at most 10 tokens, fp32, nothing saved."""
    values = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=10,
        max_steps=2,
        learning_rate=5e-3,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        gradient_checkpointing=False,
        bf16=False,
        seed=0,
    )
    values.update(overrides)
    return RLRTConfig(**values)


def train(tiny_model_dir, tokenizer, dataset, config, **kwargs):
    """Train with ``parity_reward``; ``(trainer, number of changed parameter tensors, every logged key)``."""
    trainer = RLRTTrainer(
        model=str(tiny_model_dir), reward_funcs=[parity_reward], args=config, train_dataset=dataset,
        processing_class=tokenizer, **kwargs,
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    changed = sum(not torch.equal(before[n], after[n].detach()) for n in before)
    logged = {k for entry in trainer.state.log_history for k in entry}
    return trainer, changed, logged
