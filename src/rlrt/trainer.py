"""``RLRTTrainer``: TRL's ``GRPOTrainer`` with teacher-shaped token advantages.

The trainer only orchestrates; the math is in ``rlrt.algorithms`` and the teacher in ``rlrt.teacher``.
Three TRL seams are used (pinned to ``trl==1.16.0`` and covered by ``tests/test_trl_seam.py``):

* ``_calculate_rewards`` -- to keep the gathered per-function rewards and the local completions;
* ``_generate_and_score_completions`` -- after GRPO's own work, choose teacher contexts and score the rows
  that need it (``teacher_logps``, ``has_teacher``, ``correct`` travel in the batch dict, so TRL's buffering
  and shuffling split them with the rest);
* ``_compute_loss`` -- replace ``advantages (B,)`` by shaped ``(B, T)`` token advantages, which TRL's
  surrogate already accepts. When no rollout-time student log-probs exist (on-policy, no vLLM), the
  loss-time forward's detached log-probs are used: RLRT then costs no extra student forward pass.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from collections import Counter
from typing import Any

import torch
from accelerate.utils import gather_object
from transformers import TrainerCallback
from transformers.trainer import TRAINING_ARGS_NAME
from trl import GRPOTrainer

from .algorithms.shaping import lambda_at_step, rows_needing_teacher, shape_advantages, shaping_metrics
from .config import RLRTConfig
from .data.loaders import answer_problem
from .reliability import (
    COMPLETE_MARKER,
    BrokenRewardWatch,
    GracefulStop,
    NonFiniteGuard,
    NoCorrectWatch,
    guard_reward_function,
    rotate_checkpoints,
)
from .text import completion_text
from .teacher import (
    TeacherWeights,
    choose_contexts,
    score_teacher,
    tokenize_teacher_prompts,
)

RLRT_STATE_FILE = "rlrt_state.pt"


class RLRTTrainer(GRPOTrainer):
    """GRPO with RLRT token shaping; the constructor is ``GRPOTrainer``'s, ``args`` an [`RLRTConfig`].

    Example::

        trainer = RLRTTrainer(model="path/to/model", reward_funcs=[accuracy_reward],
                              args=RLRTConfig(output_dir="out", shaping="rlrt"), train_dataset=dataset)
        trainer.train()
    """

    _tag_names = ["trl", "grpo", "rlrt"]
    _name = "RLRT"

    def __init__(self, model, reward_funcs, args: RLRTConfig | None = None, train_dataset=None, **kwargs):
        if args is None:
            args = RLRTConfig(output_dir="rlrt-output")
        if not isinstance(args, RLRTConfig):
            raise TypeError(
                f"RLRTTrainer needs args=RLRTConfig(...), got {type(args).__name__}. RLRTConfig accepts every "
                "GRPOConfig field: replace GRPOConfig with RLRTConfig."
            )
        _check_dataset_columns(args, train_dataset)
        _check_tokenizer(kwargs.get("processing_class"), train_dataset)
        self.reward_errors: Counter[str] = Counter()
        self._reward_errors_logged: Counter[str] = Counter()
        self.reward_last_errors: dict[str, str] = {}
        self.broken_reward_watch = BrokenRewardWatch(args.max_failed_reward_steps)
        self.no_correct_watch = NoCorrectWatch(args.no_correct_warning_steps)
        reward_funcs = [
            guard_reward_function(f, args.reward_errors, self.reward_errors, self.reward_last_errors)
            if _is_plain_callable(f) else f
            for f in (reward_funcs if isinstance(reward_funcs, list) else [reward_funcs])
        ]
        super().__init__(model=model, reward_funcs=reward_funcs, args=args, train_dataset=train_dataset, **kwargs)
        self.nonfinite_guard = NonFiniteGuard(self, args.max_nonfinite_steps)
        self.add_callback(self.nonfinite_guard)
        self.graceful_stop = GracefulStop(self.accelerator) if args.checkpoint_on_signal else None
        if self.graceful_stop is not None:
            self.add_callback(self.graceful_stop)
        self.variant = args.variant
        self._correctness_index = self._resolve_correctness_index(args.correctness_reward)
        self._rollout_cache: tuple | None = None
        self.teacher_weights: TeacherWeights | None = None
        if self.variant.direction != 0:
            self._check_teacher_weights_supported()
            self.teacher_weights = TeacherWeights(
                self.accelerator.unwrap_model(self.model), args.teacher_weights, args.teacher_ema_rate
            )
            if args.teacher_weights == "ema":
                self.add_callback(_TeacherEMACallback(self))

    # ------------------------------------------------------------------------------------------ setup

    def _resolve_correctness_index(self, name: str | None) -> int:
        if name is None:
            return 0
        if name not in self.reward_func_names:
            raise ValueError(
                f"correctness_reward={name!r} is not one of the reward functions {self.reward_func_names}; "
                "set it to one of those names (or None for the first)."
            )
        return self.reward_func_names.index(name)

    @property
    def shards_parameters(self) -> bool:
        """ZeRO-3 or FSDP: every forward pass is a collective that all ranks must join."""
        zero3 = self.is_deepspeed_enabled and self.accelerator.state.deepspeed_plugin.zero_stage == 3
        return bool(zero3 or self.is_fsdp_enabled)

    def _check_teacher_weights_supported(self) -> None:
        """frozen/EMA swap whole parameters, which ZeRO-3 and FSDP shard: refuse early (LoRA+frozen is fine)."""
        if self.args.teacher_weights == "live" or (self.args.teacher_weights == "frozen" and self.is_peft_model):
            return
        if self.shards_parameters:
            raise ValueError(
                f"teacher_weights={self.args.teacher_weights!r} keeps and swaps full parameters, which ZeRO-3/FSDP "
                "shard. Use teacher_weights='live', or train LoRA adapters with teacher_weights='frozen'."
            )

    @property
    def is_peft_model(self) -> bool:
        return hasattr(self.accelerator.unwrap_model(self.model), "peft_config")

    @property
    def current_lambda(self) -> float:
        """``lam`` at the current optimizer step (after the optional linear decay)."""
        return lambda_at_step(self.args.shaping_lambda, self.state.global_step, self.args.shaping_lambda_decay_steps)

    # --------------------------------------------------------------------------------- TRL seam: rollout

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._rollout_cache = (prompts, completions, rewards_per_func)
        # Errors of this step summed over all processes (a collective: every rank calls it every step).
        names = self.reward_func_names
        local = [self.reward_errors[n] - self._reward_errors_logged[n] for n in names] + [len(prompts)]
        total = self.accelerator.reduce(torch.tensor(local, dtype=torch.float32, device=self.accelerator.device), "sum")
        *errors, samples = total.tolist()
        for name, count in zip(names, errors):
            self._metrics["train" if self.model.training else "eval"][f"rewards/{name}/errors"].append(count)
            self._reward_errors_logged[name] = self.reward_errors[name]
            if self.model.training:
                self.broken_reward_watch.update(name, count, samples, self.reward_last_errors.get(name))
        if self.model.training:  # rewards_per_func is gathered: every rank sees the same value
            gate = torch.nan_to_num(rewards_per_func[:, self._correctness_index], nan=-math.inf)
            self.no_correct_watch.update(bool((gate >= self.args.correctness_threshold).any()))
        return rewards_per_func

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        if self.variant.direction != 0 and self.model.training:
            output.update(self._teacher_fields(inputs, output))
        self._rollout_cache = None
        return output

    def _teacher_fields(self, inputs: list[dict[str, Any]], output: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Contexts, the reward gate and ``log P_T`` for this process's rows (see the module docstring)."""
        args = self.args
        device = self.accelerator.device
        prompts, completions, rewards_per_func = self._rollout_cache
        local = len(prompts)
        offset = self.accelerator.process_index * local
        gate_rewards = rewards_per_func[:, self._correctness_index]
        correct_all = (torch.nan_to_num(gate_rewards, nan=-math.inf) >= args.correctness_threshold).cpu()
        texts_all = gather_object([completion_text(c) for c in completions])
        rows = list(range(offset, offset + local))
        contexts = choose_contexts(
            rows,
            self.num_generations,
            correct_all.tolist(),
            texts_all,
            source=args.teacher_context,
            references=[x.get("solution") for x in inputs],
            answers=[x.get("answer") for x in inputs],
            fallback=args.teacher_context_fallback,
            selection=args.sibling_selection,
            seed=args.seed,
            step=self.state.global_step,
        )
        correct = correct_all[offset : offset + local].to(device)
        has_context = torch.tensor([c is not None for c in contexts], device=device)
        need = rows_needing_teacher(output["advantages"], correct, has_context, args.shaping)

        started = time.perf_counter()
        selected = need.nonzero(as_tuple=True)[0].tolist()
        teacher_prompt_ids = tokenize_teacher_prompts(
            self.processing_class,
            [prompts[i] for i in selected],
            [contexts[i] for i in selected],
            args.teacher_prompt_template,
            args.max_teacher_prompt_length,
            self.chat_template_kwargs,
        )
        with self.teacher_weights.apply(self.accelerator.unwrap_model(self.model)):
            teacher_logps = score_teacher(
                self._teacher_logps_fn,
                teacher_prompt_ids,
                output["completion_ids"],
                output["completion_mask"],
                need,
                self._tokenizer.pad_token_id,
                args.teacher_batch_size or args.per_device_train_batch_size,
            )
        if self.shards_parameters:
            self._match_teacher_forward_count(int(need.sum()), args.teacher_batch_size or args.per_device_train_batch_size)
        seconds = time.perf_counter() - started

        counts = torch.tensor(
            [float(has_context.sum()), float(need.sum()), float(local), seconds], dtype=torch.float32, device=device
        )
        totals = self.accelerator.reduce(counts, reduction="sum")
        metrics = self._metrics["train"]
        metrics["rlrt/context_frac"].append((totals[0] / totals[2]).item())
        metrics["rlrt/teacher_rows_frac"].append((totals[1] / totals[2]).item())
        metrics["rlrt/teacher_seconds"].append((totals[3] / self.accelerator.num_processes).item())
        return {"teacher_logps": teacher_logps, "has_teacher": need, "correct": correct}

    def _match_teacher_forward_count(self, rows: int, batch_size: int) -> None:
        """Under ZeRO-3/FSDP, run 1-row dummy forwards so every rank makes as many teacher forwards as the busiest."""
        chunks = torch.tensor(float(math.ceil(rows / batch_size)), device=self.accelerator.device)
        most = int(self.accelerator.reduce(chunks, reduction="max").item())
        if most > chunks.item():
            pad = self._tokenizer.pad_token_id
            dummy = torch.full((1, 2), pad, dtype=torch.long, device=self.accelerator.device)
            with self.teacher_weights.apply(self.accelerator.unwrap_model(self.model)):
                for _ in range(most - int(chunks.item())):
                    self._teacher_logps_fn(dummy, torch.ones_like(dummy), 1, 1)

    def _teacher_logps_fn(self, input_ids, attention_mask, logits_to_keep, batch_size):
        logps, _, _ = self._get_per_token_logps_and_entropies(
            self.model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size
        )
        return logps

    # ------------------------------------------------------------------------------------ TRL seam: loss

    def _compute_loss(self, model, inputs):
        loss = self._shaped_loss(model, inputs)
        if self.model.training:
            self.nonfinite_guard.note_loss(loss)
        return loss

    def _shaped_loss(self, model, inputs):
        if "teacher_logps" not in inputs:
            return super()._compute_loss(model, inputs)
        inputs = dict(inputs)
        student = None
        if self.args.student_logps == "rollout":
            student = inputs.get("old_per_token_logps")
            if student is None:
                student = inputs.get("sampling_per_token_logps")
        if student is not None:
            inputs["advantages"] = self._shaped_advantages(inputs, student)
            return super()._compute_loss(model, inputs)

        # On-policy without rollout-time log-probs: shape with the loss-time forward (detached), no extra pass.
        # TRL's _compute_loss runs that forward before it reads inputs["advantages"] (checked by the seam test).
        loss_forward = self._get_per_token_logps_and_entropies

        def forward_then_shape(*args, **kwargs):
            logps, entropies, aux_loss = loss_forward(*args, **kwargs)
            inputs["advantages"] = self._shaped_advantages(inputs, logps.detach())
            return logps, entropies, aux_loss

        self._get_per_token_logps_and_entropies = forward_then_shape
        try:
            return super()._compute_loss(model, inputs)
        finally:
            del self._get_per_token_logps_and_entropies

    def _shaped_advantages(self, inputs: dict[str, Any], student_logps: torch.Tensor) -> torch.Tensor:
        mask = inputs["completion_mask"]
        if "tool_mask" in inputs:
            mask = mask * inputs["tool_mask"]
        lam = self.current_lambda
        common = dict(
            advantages=inputs["advantages"],
            student_logps=student_logps,
            teacher_logps=inputs["teacher_logps"],
            correct=inputs["correct"],
            has_teacher=inputs["has_teacher"],
            mask=mask,
            mode=self.args.shaping,
            lam=lam,
            eps_w=self.args.shaping_eps_w,
            clamp=self.args.log_ratio_clamp,
        )
        if self.model.training:
            self._log_shaping_metrics(shaping_metrics(**common), lam)
        return shape_advantages(**common)

    def _log_shaping_metrics(self, stats: dict[str, tuple[float, float]], lam: float) -> None:
        """Reduce ``(value, count)`` statistics over processes exactly and append them as ``rlrt/<name>``."""
        names = sorted(stats)
        values = torch.tensor([[stats[n][0], stats[n][1]] for n in names], dtype=torch.float64)
        gathered = self.accelerator.gather(values.to(self.accelerator.device).unsqueeze(0)).view(-1, len(names), 2)
        metrics = self._metrics["train"]
        for j, name in enumerate(names):
            value, count = gathered[:, j, 0], gathered[:, j, 1]
            valid = count > 0
            if not valid.any():
                continue
            if name.endswith("_min"):
                metrics[f"rlrt/{name}"].append(value[valid].min().item())
            elif name.endswith("_max"):
                metrics[f"rlrt/{name}"].append(value[valid].max().item())
            else:
                metrics[f"rlrt/{name}"].append((value[valid].sum() / count[valid].sum()).item())
        metrics["rlrt/lambda"].append(lam)


    # ------------------------------------------------------------------------------------ checkpoints

    def _save_checkpoint(self, model, trial):
        """TRL's checkpoint plus the RLRT state; a marker file written last makes it count as complete."""
        run_dir = self._get_output_dir(trial=trial)
        output_dir = os.path.join(run_dir, f"checkpoint-{self.state.global_step}")
        # HF rotates old checkpoints away before our marker exists; rotate ourselves once the new one is complete.
        limit, self.args.save_total_limit = self.args.save_total_limit, None
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.args.save_total_limit = limit
        if self.args.should_save:
            args_file = os.path.join(output_dir, TRAINING_ARGS_NAME)
            if os.path.isfile(args_file):  # it was written with the limit switched off: record the real arguments
                torch.save(self.args, args_file)
            state = {
                "teacher_weights": self.teacher_weights.state_dict() if self.teacher_weights is not None else None,
                "nonfinite_steps": self.nonfinite_guard.skipped,
                "reward_errors": dict(self.reward_errors),
            }
            torch.save(state, os.path.join(output_dir, RLRT_STATE_FILE))
            with open(os.path.join(output_dir, COMPLETE_MARKER), "w") as f:
                f.write(f"{self.state.global_step}\n")
            rotate_checkpoints(run_dir, limit, protect=self.state.best_model_checkpoint)

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        path = os.path.join(checkpoint, RLRT_STATE_FILE) if checkpoint else None
        if path and os.path.isfile(path):
            state = torch.load(path, map_location="cpu", weights_only=False)
            if self.teacher_weights is not None and state.get("teacher_weights"):
                self.teacher_weights.load_state_dict(state["teacher_weights"])
            self.nonfinite_guard.skipped = state.get("nonfinite_steps", 0)
            self.reward_errors.update(state.get("reward_errors", {}))
            self._reward_errors_logged.update(state.get("reward_errors", {}))

    @property
    def interrupted_by(self) -> str | None:
        """The signal that stopped the last ``train()`` early, if any."""
        return self.graceful_stop.received if self.graceful_stop is not None else None


class _TeacherEMACallback(TrainerCallback):
    """Moves the EMA teacher toward the policy after every optimizer step."""

    def __init__(self, trainer: RLRTTrainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        trainer = self.trainer
        trainer.teacher_weights.update(trainer.accelerator.unwrap_model(trainer.model))


def _is_plain_callable(func) -> bool:
    return callable(func) and not isinstance(func, torch.nn.Module) and not inspect.iscoroutinefunction(func)


def _check_tokenizer(tokenizer, dataset) -> None:
    """A chat dataset needs a chat template; padding needs a pad token (EOS is used when there is none)."""
    if tokenizer is None or isinstance(tokenizer, str):
        return
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    if dataset is not None and hasattr(dataset, "__getitem__") and len(dataset) > 0:
        prompt = dataset[0].get("prompt") if isinstance(dataset[0], dict) else None
        if isinstance(prompt, list) and not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                "The dataset's prompts are chat messages but the tokenizer has no chat template. Use an "
                "instruction-tuned model's tokenizer, set tokenizer.chat_template, or give plain-text prompts."
            )
    if getattr(tokenizer, "pad_token", None) is None:
        if getattr(tokenizer, "eos_token", None) is None:
            raise ValueError("The tokenizer has neither a pad token nor an EOS token: set tokenizer.pad_token.")
        tokenizer.pad_token = tokenizer.eos_token


def _check_dataset_columns(args: RLRTConfig, dataset) -> None:
    """Fail before any work when the teacher context needs a dataset column that is missing."""
    columns = getattr(dataset, "column_names", None)
    if columns is None:
        return
    if hasattr(dataset, "__len__") and len(dataset) == 0:
        raise ValueError("train_dataset is empty: check the file, the split and any row filtering (on_bad_rows).")
    if "prompt" not in columns:
        raise ValueError(
            f"train_dataset needs a 'prompt' column (chat messages or text); it has {list(columns)}. Rename your "
            "question column or build the dataset with rlrt.data (build_dataset / load_local with question_column=...)."
        )
    if "answer" in columns:
        for row, value in enumerate(dataset["answer"]):
            problem = answer_problem(value)
            if problem:
                raise ValueError(
                    f"train_dataset row {row}, column 'answer': {problem}. Fix or drop the row (rlrt.data's loaders "
                    "skip such rows with on_bad_rows='skip'); rename the column if your own reward reads it otherwise."
                )
    if args.variant.direction == 0:
        return
    needed = {args.teacher_context, args.teacher_context_fallback} & {"reference", "answer"}
    column_for = {"reference": "solution", "answer": "answer"}
    for source in sorted(needed):
        column = column_for[source]
        if column not in columns:
            raise ValueError(
                f"shaping={args.shaping!r} with teacher context {source!r} needs a {column!r} column in the "
                f"training dataset, which has {list(columns)}. Add the column (or map yours to it), or choose "
                "teacher_context='sibling'."
            )
