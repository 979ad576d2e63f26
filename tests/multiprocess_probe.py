"""Run by test_multiprocess.py under `torchrun --nproc_per_node 2` (CPU, gloo): train two RLRT steps and dump,
per rank and step, what the trainer saw and decided, so the test can compare it with a single-process computation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from datasets import Dataset

import rlrt.step as step_module
from rlrt import RLRTConfig, RLRTTrainer
from rlrt.rewards import parity_reward


class ProbeTrainer(RLRTTrainer):
    records: list = []

    def _teacher_fields(self, inputs, output):
        captured = {}
        real_choose = step_module.choose_contexts

        def spy(rows, group_size, correct, completions, **kwargs):
            contexts = real_choose(rows, group_size, correct, completions, **kwargs)
            captured.update(rows=list(rows), correct=list(correct), completions=list(completions),
                            contexts=contexts, seed=kwargs["seed"], step=kwargs["step"])
            return contexts

        step_module.choose_contexts = spy
        try:
            fields = super()._teacher_fields(inputs, output)
        finally:
            step_module.choose_contexts = real_choose
        prompts, _, rewards_per_func = self._rollout_cache
        self.records.append({
            **captured,
            "rank": self.accelerator.process_index,
            "prompts": [p[-1]["content"] for p in prompts],
            "rewards": rewards_per_func[:, 0].tolist(),
            "advantages": output["advantages"].tolist(),
            "has_teacher": fields["has_teacher"].tolist(),
            "context_frac": self._metrics["train"]["rlrt/context_frac"][-1],
        })
        return fields


def main(out_dir: str, model_dir: str) -> None:
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}], "answer": str(2 * i)}
                                 for i in range(8)])
    args = RLRTConfig(output_dir=out_dir, per_device_train_batch_size=4, num_generations=4, max_completion_length=8,
                      max_steps=2, learning_rate=1e-3, logging_steps=1, report_to="none", save_strategy="no",
                      gradient_checkpointing=False, bf16=False, seed=5, disable_tqdm=True)
    trainer = ProbeTrainer(model=model_dir, reward_funcs=[parity_reward], args=args, train_dataset=dataset)
    trainer.train()
    logged = [{k: v for k, v in e.items() if k.startswith("rlrt/")} for e in trainer.state.log_history if "loss" in e]
    path = Path(out_dir) / f"rank{trainer.accelerator.process_index}.json"
    path.write_text(json.dumps({"records": trainer.records, "logged": logged,
                                "world": trainer.accelerator.num_processes}))
    torch.distributed.barrier() if torch.distributed.is_initialized() else None


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
