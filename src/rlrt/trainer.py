"""``RLRTTrainer``: TRL's ``GRPOTrainer`` with teacher-shaped token advantages.

The trainer only orchestrates: the step itself (contexts, ``log P_T``, shaping, statistics) is ``rlrt.step``, the
math ``rlrt.algorithms``, the teacher ``rlrt.teacher``.

The TRL seam, pinned to ``trl==1.16.0`` and ``transformers==5.24.0`` and checked member by member in
``tests/test_trl_seam.py``. Private methods overridden (six, here and in ``rlrt.reliability.ReliableTrainerMixin``):

* ``GRPOTrainer._calculate_rewards`` -- keeps the gathered per-function rewards and the local completions (and
  counts reward-function errors, in the mixin);
* ``GRPOTrainer._generate_and_score_completions`` -- after GRPO's own work, ``step.score_with_teacher`` chooses the
  contexts and scores the rows that need it; ``teacher_logps``, ``has_teacher``, ``correct`` travel in the batch
  dict, so TRL's ``_prepare_inputs`` buffers, shuffles and splits them with the rest;
* ``GRPOTrainer._compute_loss`` -- replaces ``advantages (B,)`` by ``step.shape_rollouts``' ``(B, T)`` token
  advantages, which TRL's surrogate already accepts. When no rollout-time student log-probs exist (on-policy, no
  vLLM), ``_get_per_token_logps_and_entropies`` is swapped on the instance for that one call so that the loss-time
  forward's detached log-probs are used: RLRT then costs no extra student forward pass;
* ``Trainer._save_checkpoint`` (mixin) -- TRL's checkpoint plus the run state and a completion marker; it switches
  ``args.save_total_limit`` off during TRL's save, rewrites ``training_args.bin`` with the real value and rotates
  only complete checkpoints;
* ``Trainer._load_optimizer_and_scheduler`` (mixin) -- restores that state (teacher snapshot, counters) on resume.
* ``Trainer._issue_warnings_after_load`` (mixin) -- drops tied weights (``lm_head.weight`` of a tied-embedding model)
  from the "missing keys" warning on resume.

Private members called or read: ``_get_per_token_logps_and_entropies`` (the teacher forward),
``Trainer._get_output_dir``, ``GRPOTrainer._tokenizer`` (pad id), and ``GRPOTrainer._metrics``, written only through
``ReliableTrainerMixin.log_metric``. Public TRL attributes read: ``num_generations``, ``reward_func_names``,
``chat_template_kwargs``, ``processing_class``, ``accelerator``, ``is_deepspeed_enabled``/``is_fsdp_enabled``. The
public ``compute_loss`` is wrapped by the mixin (non-finite loss guard), and the public ``create_model_card`` by
``RLRTTrainer`` (it names a base model in a local folder, where TRL writes a link to ``huggingface.co/None``).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import gather_object
from transformers import TrainerCallback
from trl import GRPOTrainer

from .algorithms.shaping import lambda_at_step
from .config import RLRTConfig
from .data.loaders import answer_problem, check_column_names
from .models import DEFAULT_MODEL_ALIASES
from .reliability import ReliableTrainerMixin
from .step import Rollouts, correct_rollouts, score_with_teacher, shape_rollouts, teacher_batch_size
from .teacher import TeacherWeights, tokenize_teacher_prompts
from .text import completion_text

BROKEN_BASE_LINK = "[None](https://huggingface.co/None)"  # TRL's model card for a base model in a local folder


def base_model_link(name: str) -> str:
    """The base model as a model card names it: a hub id (``org/name``, not a local folder) as its hub link, the
    embedded model as ``smollm2-135m`` with what it is, any other name or path in backticks; ``"an unnamed
    model"`` for ``""``."""
    if not name:
        return "an unnamed model"
    if name.lower() in DEFAULT_MODEL_ALIASES:
        return f"`{name}` (rlrt's embedded SmolLM2-135M-Instruct, dequantized from a Q4_1 GGUF)"
    if name.count("/") == 1 and not name.startswith((".", "/", "~")) and not Path(name).expanduser().exists():
        return f"[{name}](https://huggingface.co/{name})"
    return f"`{name}`"


class RLRTTrainer(ReliableTrainerMixin, GRPOTrainer):
    """GRPO with RLRT token shaping; the constructor is ``GRPOTrainer``'s, ``args`` an [`RLRTConfig`].

    Example::

        trainer = RLRTTrainer(model="path/to/model", reward_funcs=[accuracy_reward],
                              args=RLRTConfig(output_dir="out", shaping="rlrt"), train_dataset=dataset)
        trainer.train()
    """

    _tag_names = ["trl", "grpo", "rlrt"]
    _name = "RLRT"
    base_model_name: str | None = None  # the model as the user named it (`rlrt train --model`), for the model card

    def __init__(self, model, reward_funcs, args: RLRTConfig | None = None, train_dataset=None, **kwargs):
        if args is None:
            args = RLRTConfig(output_dir="rlrt-output")
        if not isinstance(args, RLRTConfig):
            raise TypeError(
                f"RLRTTrainer needs args=RLRTConfig(...), got {type(args).__name__}. RLRTConfig accepts every "
                "GRPOConfig field: replace GRPOConfig with RLRTConfig."
            )
        if args.shaping == "sdpo":
            raise ValueError(
                "shaping='sdpo' trains with TRL's SDPOTrainer, not RLRTTrainer: build it with "
                "rlrt.build_trainer(model, reward_funcs, args, train_dataset) or rlrt.baselines.SDPOBaselineTrainer."
            )
        _check_dataset_columns(args, train_dataset)
        check_tokenizer(kwargs.get("processing_class"), train_dataset)
        reward_funcs = self._guard_reward_funcs(reward_funcs, args)
        super().__init__(model=model, reward_funcs=reward_funcs, args=args, train_dataset=train_dataset, **kwargs)
        self._install_guards(args)
        self.variant = args.variant
        self._correctness_index = self._resolve_correctness_index(args.correctness_reward)
        self._rollout_cache: tuple | None = None
        self.teacher_weights: TeacherWeights | None = None
        if self.variant.direction != 0:
            self._check_teacher_weights_supported()
            self._check_teacher_prompts_fit(train_dataset)
            self.teacher_weights = TeacherWeights(
                self.accelerator.unwrap_model(self.model), args.teacher_weights, args.teacher_ema_rate
            )
            if args.teacher_weights == "ema":
                self.add_callback(_TeacherEMACallback(self))

    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None,
                          tags: str | list[str] | None = None) -> None:
        """TRL's model card (``README.md`` in ``output_dir``, written with every checkpoint), naming the base model.

        TRL links the base model on the hub from ``config._name_or_path``; for a local folder (the embedded model,
        a run's ``final/``) it writes ``fine-tuned version of [None](https://huggingface.co/None)``. That link
        becomes ``base_model_link(base_model_name or the folder)``."""
        super().create_model_card(model_name=model_name, dataset_name=dataset_name, tags=tags)
        card = Path(self.args.output_dir) / "README.md"
        if not self.is_world_process_zero() or not card.is_file():
            return
        text = card.read_text()
        if BROKEN_BASE_LINK in text:
            name = self.base_model_name or self.accelerator.unwrap_model(self.model).config.name_or_path
            card.write_text(text.replace(BROKEN_BASE_LINK, base_model_link(name)))

    # ------------------------------------------------------------------------------------------ setup

    def _check_teacher_prompts_fit(self, dataset, longest: int = 16) -> None:
        """Refuse before any rollout a training prompt whose teacher prompt exceeds ``max_teacher_prompt_length``
        even with an empty context (``tokenize_teacher_prompts`` would raise mid-run, the first time that row had
        a teacher). Checks the ``longest`` prompts by characters, which order token counts closely enough."""
        columns = getattr(dataset, "column_names", None)
        if not columns or "prompt" not in columns:
            return
        prompts = dataset["prompt"]
        order = sorted(range(len(prompts)), key=lambda i: len(str(prompts[i])), reverse=True)[:longest]
        for row in order:
            try:
                tokenize_teacher_prompts(self.processing_class, [prompts[row]], [""], self.args.teacher_prompt_template,
                                         self.args.max_teacher_prompt_length, self.chat_template_kwargs)
            except ValueError as err:
                raise ValueError(f"train_dataset row {row} (rows count from 0): {err}") from None

    def _resolve_correctness_index(self, name: str | None) -> int:
        if name is None:
            return 0
        if name not in self.reward_func_names:
            raise ValueError(
                f"correctness_reward={name!r} is not one of the reward functions {self.reward_func_names}; "
                "set it to one of those names (or None for the first)."
            )
        return self.reward_func_names.index(name)

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
        return rewards_per_func

    def _any_correct(self, rewards_per_func: torch.Tensor) -> bool:
        return bool(correct_rollouts(rewards_per_func[:, self._correctness_index],
                                     self.args.correctness_threshold).any())

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        if self.variant.direction != 0 and self.model.training:
            output.update(self._teacher_fields(inputs, output))
        self._rollout_cache = None
        return output

    def _teacher_fields(self, inputs: list[dict[str, Any]], output: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Contexts, the reward gate and ``log P_T`` for this process's rows: ``step.score_with_teacher``."""
        args = self.args
        device = self.accelerator.device
        prompts, completions, rewards_per_func = self._rollout_cache
        local = len(prompts)
        mask = output["completion_mask"]
        if "tool_mask" in output:
            mask = mask * output["tool_mask"]
        rollouts = Rollouts(
            prompts=prompts,
            completion_ids=output["completion_ids"],
            completion_mask=mask,
            advantages=output["advantages"],
            rewards=rewards_per_func[:, self._correctness_index],
            completion_texts=gather_object([completion_text(c) for c in completions]),
            group_size=self.num_generations,
            offset=self.accelerator.process_index * local,
            references=[x.get("solution") for x in inputs],
            answers=[x.get("answer") for x in inputs],
        )
        started = time.perf_counter()
        with self.teacher_weights.apply(self.accelerator.unwrap_model(self.model)):
            teacher, _, teacher_logps = score_with_teacher(
                rollouts, args, self.processing_class, self._teacher_logps_fn, self.state.global_step,
                self.chat_template_kwargs, pad_id=self._tokenizer.pad_token_id,
            )
        if self.shards_parameters:
            self._match_teacher_forward_count(int(teacher.rows.sum()), teacher_batch_size(args))
        seconds = time.perf_counter() - started

        counts = torch.tensor(
            [float(teacher.has_context.sum()), float(teacher.rows.sum()), float(local), seconds],
            dtype=torch.float32, device=device,
        )
        totals = self.accelerator.reduce(counts, reduction="sum")
        self.log_metric("rlrt/context_frac", (totals[0] / totals[2]).item())
        self.log_metric("rlrt/teacher_rows_frac", (totals[1] / totals[2]).item())
        self.log_metric("rlrt/teacher_seconds", (totals[3] / self.accelerator.num_processes).item())
        return {"teacher_logps": teacher_logps, "has_teacher": teacher.rows, "correct": teacher.correct}

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
        return self._shaped_loss(model, inputs)  # the mixin's compute_loss notes a non-finite loss

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
        """``(B, T)`` token advantages of one micro-batch: ``step.shape_rollouts``, its statistics logged."""
        mask = inputs["completion_mask"]
        if "tool_mask" in inputs:
            mask = mask * inputs["tool_mask"]
        shaping, lam = shape_rollouts(
            inputs["advantages"], student_logps, inputs["teacher_logps"], inputs["correct"], inputs["has_teacher"],
            mask, self.args, self.state.global_step,
        )
        if self.model.training:
            self._log_shaping_metrics(shaping.stats, lam)
        return shaping.token_advantages

    def _log_shaping_metrics(self, stats: dict[str, tuple[float, float]], lam: float) -> None:
        """Reduce ``(value, count)`` statistics over processes exactly and append them as ``rlrt/<name>``."""
        names = sorted(stats)
        values = torch.tensor([[stats[n][0], stats[n][1]] for n in names], dtype=torch.float64)
        gathered = self.accelerator.gather(values.to(self.accelerator.device).unsqueeze(0)).view(-1, len(names), 2)
        for j, name in enumerate(names):
            value, count = gathered[:, j, 0], gathered[:, j, 1]
            valid = count > 0
            if not valid.any():
                continue
            if name.endswith("_min"):
                self.log_metric(f"rlrt/{name}", value[valid].min().item())
            elif name.endswith("_max"):
                self.log_metric(f"rlrt/{name}", value[valid].max().item())
            else:
                self.log_metric(f"rlrt/{name}", (value[valid].sum() / count[valid].sum()).item())
        self.log_metric("rlrt/lambda", lam)

    # ------------------------------------------------------------------------------------ checkpoints

    def _checkpoint_state(self) -> dict:
        state = super()._checkpoint_state()
        state["teacher_weights"] = self.teacher_weights.state_dict() if self.teacher_weights is not None else None
        return state

    def _restore_checkpoint_state(self, state: dict) -> None:
        super()._restore_checkpoint_state(state)
        if self.teacher_weights is not None and state.get("teacher_weights"):
            self.teacher_weights.load_state_dict(state["teacher_weights"])


class _TeacherEMACallback(TrainerCallback):
    """Moves the EMA teacher toward the policy after every optimizer step."""

    def __init__(self, trainer: RLRTTrainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        trainer = self.trainer
        trainer.teacher_weights.update(trainer.accelerator.unwrap_model(trainer.model))


def check_tokenizer(tokenizer, dataset) -> None:
    """A chat dataset needs a chat template that accepts its prompts (the first one is rendered now, so that e.g. a
    template rejecting the system role fails here and not at the first step); padding needs a pad token (EOS is
    used when there is none)."""
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
        if isinstance(prompt, list):
            try:
                tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            except Exception as err:  # noqa: BLE001 -- jinja raises its own types; one line names the cause
                roles = sorted({m.get("role") for m in prompt if isinstance(m, dict)})
                hint = (" Drop the system prompt (dataset_options {\"system_prompt\": null}) or use a model whose "
                        "template has a system turn." if "system" in roles else "")
                raise ValueError(
                    f"The tokenizer's chat template rejects the dataset's first prompt (roles {roles}): "
                    f"{type(err).__name__}: {err}.{hint}"
                ) from None
    if getattr(tokenizer, "pad_token", None) is None:
        if getattr(tokenizer, "eos_token", None) is None:
            raise ValueError("The tokenizer has neither a pad token nor an EOS token: set tokenizer.pad_token.")
        tokenizer.pad_token = tokenizer.eos_token


def check_train_dataset(dataset) -> None:
    """Fail before any work (``ValueError``) on an empty training set, one without a ``prompt`` column, an unusable
    ``answer``, or a column named like a keyword argument TRL gives reward functions itself (``prompts``...)."""
    columns = getattr(dataset, "column_names", None)
    if columns is None:
        return
    if hasattr(dataset, "__len__") and len(dataset) == 0:
        raise ValueError("train_dataset is empty: check the file, the split and any row filtering (on_bad_rows).")
    if "prompt" not in columns:
        raise ValueError(
            f"train_dataset needs a 'prompt' column (chat messages or text); it has {list(columns)}. Rename your "
            "question column or build the dataset with rlrt.data (build_dataset / load_local with question_column=...; "
            """rlrt train: --dataset_options '{"question_column": "..."}')."""
        )
    check_column_names(columns, "train_dataset", " (datasets: dataset.rename_column(old, new))")
    if "answer" in columns:
        for row, value in enumerate(dataset["answer"]):
            problem = answer_problem(value)
            if problem:
                raise ValueError(
                    f"train_dataset row {row}, column 'answer': {problem} (rows count from 0). Fix or drop the row "
                    "(rlrt.data's loaders skip such rows with on_bad_rows='skip'; rlrt train: --dataset_options "
                    """'{"on_bad_rows": "skip"}'); rename the column if your own reward reads it otherwise."""
                )


def _check_dataset_columns(args: RLRTConfig, dataset) -> None:
    """Fail before any work when the teacher context needs a dataset column that is missing."""
    check_train_dataset(dataset)
    columns = getattr(dataset, "column_names", None)
    if columns is None or args.variant.direction == 0:
        return
    needed = {args.teacher_context, args.teacher_context_fallback} & {"reference", "answer"}
    column_for = {"reference": "solution", "answer": "answer"}
    for source in sorted(needed):
        column = column_for[source]
        other = ("choose teacher_context='sibling'" if source == args.teacher_context
                 else "drop teacher_context_fallback")
        if column not in columns:
            raise ValueError(
                f"shaping={args.shaping!r} with teacher context {source!r} needs a {column!r} column in the "
                f"training dataset, which has {list(columns)}. Add the column (or map yours to it), or {other}."
            )
        if not any(str(value or "").strip() for value in dataset[column]):
            # rlrt.data's loaders write an empty solution where a source has none: every row would get no teacher
            # and the run would be plain GRPO, with only rlrt/context_frac = 0 to say so.
            raise ValueError(
                f"shaping={args.shaping!r} with teacher context {source!r} needs the {column!r} column filled, and "
                f"no row of the training dataset has one: use a dataset with worked solutions (map your column to "
                f"{column!r}), or {other}."
            )
